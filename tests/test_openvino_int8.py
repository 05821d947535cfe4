"""INT8 through NNCF and OpenVINO, the measured choice of layers kept fp32, and the INT8 tolerance."""
from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
import torch

import effnet
import effnet.cli as cli
import effnet.deploy.paths as paths
from effnet.arch import get_network, scale
from effnet.deploy.paths import Tolerance
from effnet.weights import save_model
from effnet.weights.meta import Preprocessing


@pytest.fixture
def tiny_model():
    desc = scale(get_network("efficientnet_lite0"), width=0.25, depth=0.3, image_size=32, name="tiny_lite0")
    torch.manual_seed(0)
    model = effnet.create_model(desc, num_classes=4).eval()
    torch.nn.init.normal_(model.classifier.weight, 0.0, 0.5)
    model.preprocessing = Preprocessing(resolution=32)
    return model


def images(n, size=32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, size, size), dtype=np.float32)


def test_nncf_int8_runs_close_to_fp32_at_any_batch_and_size_and_keeps_the_chosen_layers_fp32(tiny_model, tmp_path):
    pytest.importorskip("nncf")
    ov = pytest.importorskip("openvino")
    run = paths.build_runner(tiny_model, "openvino_int8", tmp_path, images(48), validation=images(16, seed=1),
                             target=1.01)  # unreachable: every step of the ladder is measured
    info = run.int8
    assert [s["fp32_layers"] for s in info["ladder"]] == list(paths.FLOAT_LAYERS)
    assert info["fp32_layers"] in paths.FLOAT_LAYERS and info["ladder_images"] == 16
    best = max(s["agreement"] for s in info["ladder"])
    assert next(s for s in info["ladder"] if s["fp32_layers"] == info["fp32_layers"])["agreement"] == best
    graph = ov.Core().read_model(info["file"])
    assert any(op.get_type_name() == "FakeQuantize" for op in graph.get_ops())  # INT8, not fp32
    assert graph.get_rt_info(["effnet", "model"]).astype(str) == "tiny_lite0"  # runs alone: carries its metadata
    x = images(16, seed=2)  # drawn as the calibration images were
    want = tiny_model(torch.from_numpy(x)).detach().numpy()
    got = run(x)
    assert got.shape == want.shape and not np.array_equal(got, want)
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.9  # quantised, yet the same function
    assert run(images(3, size=40, seed=4)[:, :, :, :36]).shape == (3, 4)  # another batch size and resolution


def test_the_fp32_layers_named_are_the_ones_nncf_leaves_unquantised(tiny_model, tmp_path):
    pytest.importorskip("nncf")
    ov = pytest.importorskip("openvino")
    from effnet.deploy.export import export_onnx
    from effnet.deploy.openvino_int8 import quantize_openvino
    from effnet.deploy.quantize import first_convolutions

    fp32 = export_onnx(tiny_model, tmp_path / "fp32.onnx", example_size=32)
    keep = first_convolutions(onnx.load(str(fp32)).graph, 2)
    out, kept = quantize_openvino(fp32, tmp_path / "q.xml", images(8), keep)
    assert kept == 2
    ops = {op.get_friendly_name(): op for op in ov.Core().read_model(str(out)).get_ops()}

    def weight_quantised(name):
        conv = ops.get(f"{name}/WithoutBiases") or ops[name]
        producers = [conv.input(i).get_source_output().get_node().get_type_name() for i in range(conv.get_input_size())]
        return "FakeQuantize" in producers
    assert not any(weight_quantised(n) for n in keep)
    third = first_convolutions(onnx.load(str(fp32)).graph, 3)[-1]
    assert weight_quantised(third)
    with pytest.raises(ValueError, match="to keep in fp32, but 0 found"):
        quantize_openvino(fp32, tmp_path / "r.xml", images(8), ["/no/such/Conv"])


def test_the_ladder_stops_at_the_fewest_fp32_layers_that_reach_the_target():
    ref = lambda x: x.reshape(len(x), -1)[:, :4]  # noqa: E731
    flips = {0: 6, 1: 2, 2: 0, 4: 0, 8: 0}  # images each step gets wrong per batch of 8 (16 images: two batches)
    built = []

    def quantize(k):
        built.append(k)

        def run(x):
            out = ref(x).copy()
            out[:flips[k]] = out[:flips[k], ::-1] * 0 + np.eye(4)[(ref(x)[:flips[k]].argmax(1) + 1) % 4] * 1e3
            return out
        return run, f"model-{k}"
    x = images(16, size=4)
    run = paths.int8_ladder(quantize, ref, x, target=0.95)
    assert built == [0, 1, 2] and run.int8["fp32_layers"] == 2 and run.int8["ladder"][1]["agreement"] == 12 / 16
    built.clear()
    flips.update({2: 1, 4: 1, 8: 1})
    run = paths.int8_ladder(quantize, ref, x, target=1.0)  # never reached: the best, the fewest layers on a tie
    assert built == list(paths.FLOAT_LAYERS) and run.int8["fp32_layers"] == 2


def test_without_labels_int8_needs_its_own_agreement_and_with_labels_its_point_budget():
    tol = Tolerance()
    assert tol.verdict("openvino_int8", 0.964, None) == ""  # 95% for INT8
    assert "agreement 93.0% < 95.0%" in tol.verdict("openvino_int8", 0.93, None)
    assert "agreement 96.4% < 99.0%" in tol.verdict("openvino", 0.964, None)  # 99% for fp32 and bf16
    assert tol.verdict("openvino_int8", 0.5, -0.9) == ""
    assert "beyond -1" in tol.verdict("openvino_int8", 1.0, -1.2)
    with pytest.raises(effnet.errors.EffnetError, match="minimum agreement"):
        Tolerance(int8_min_agreement=1.5)


def test_without_nncf_the_openvino_int8_path_names_the_extra_and_the_chooser_lists_it(monkeypatch, tiny_model, tmp_path):
    pytest.importorskip("openvino")
    monkeypatch.setitem(sys.modules, "nncf", None)  # import nncf -> ImportError
    with pytest.raises(effnet.errors.MissingExtraError, match=r"NNCF.*pip install 'effnet\[openvino\]'"):
        paths.build_runner(tiny_model, "openvino_int8", tmp_path, images(8))
    report = paths.choose_paths(tiny_model, [1], 32, ["eager", "openvino_int8"], repeats=1, warmup=0,
                                heldout=(images(8), np.zeros(8, dtype=int)), photos=False)
    row = next(r for r in report.results if r.path == "openvino_int8")
    assert not row.ok and "pip install 'effnet[openvino]'" in row.note


def test_the_photo_views_for_calibration_and_the_ladder_are_seeded_and_distinct(tiny_model):
    pytest.importorskip("skimage")
    a = paths.photo_views(tiny_model, 32, calibration=True, count=10)
    assert a.shape == (10, 3, 32, 32) and np.array_equal(a, paths.photo_views(tiny_model, 32, calibration=True, count=10))
    ladder = paths.photo_views(tiny_model, 32, count=10, seed=1, ladder=True)
    report = paths.photo_views(tiny_model, 32)
    assert ladder.shape == (10, 3, 32, 32) and len(report) == 56
    assert not any(np.allclose(v, r) for v in ladder for r in report[:7])  # other views than the reported ones


def test_export_writes_an_int8_ir_that_predict_runs_alone(tiny_model, tmp_path, capsys):
    pytest.importorskip("nncf")
    pytest.importorskip("skimage")
    ckpt = tmp_path / "tiny.safetensors"
    save_model(tiny_model, ckpt)
    out = tmp_path / "tiny-int8.xml"
    assert cli.main(["export", str(ckpt), "--format", "openvino", "--path", "openvino_int8", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "OpenVINO IR, INT8 by NNCF" in text and "convolution" in text and "top-1 agreement" in text
    assert out.exists() and out.with_suffix(".bin").exists()
    from PIL import Image

    pics = []
    for i in range(3):
        pic = tmp_path / f"p{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(pic)
        pics.append(str(pic))
    assert cli.main(["predict", *pics, "--model", str(out), "--batch-size", "2"]) == 0
    assert "p2.png" in capsys.readouterr().out


def test_export_refuses_openvino_int8_as_onnx_in_one_line(tiny_model, tmp_path, capsys):
    ckpt = tmp_path / "tiny.safetensors"
    save_model(tiny_model, ckpt)
    code = cli.main(["export", str(ckpt), "--format", "onnx", "--path", "openvino_int8", "--out", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code != 0 and "use --format openvino" in err and "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()


def test_export_auto_writes_the_int8_ir_when_openvino_int8_is_this_machines_choice(tiny_model, tmp_path, monkeypatch,
                                                                                  capsys):
    pytest.importorskip("nncf")
    pytest.importorskip("skimage")
    monkeypatch.setenv("EFFNET_PATHS_CACHE", str(tmp_path / "paths.json"))
    ckpt = tmp_path / "tiny.safetensors"
    save_model(tiny_model, ckpt)
    chosen = paths.PathReport([paths.PathResult("openvino_int8", 1, 32, median_ms=1.0, throughput=1000.0, chosen=True)],
                              Tolerance(), 5, paths.machine())
    paths.PathCache().put(paths.model_identity(str(ckpt)), chosen)
    out = tmp_path / "auto.xml"
    assert cli.main(["export", str(ckpt), "--format", "openvino", "--path", "auto", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "openvino_int8 -> openvino_int8 OpenVINO IR" in text and "INT8 by NNCF" in text
    assert cli.main(["export", str(ckpt), "--format", "onnx", "--path", "auto", "--out", str(tmp_path / "a.onnx")]) == 0
    text = capsys.readouterr().out
    assert "openvino_int8 -> fp32 ONNX" in text and "--format openvino --path openvino_int8" in text
