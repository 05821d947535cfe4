"""The inference path chooser: fastest within the accuracy tolerance, bf16 only where the CPU has it,
a per-machine cache, and the --path options of effnet export / predict / bench."""
from __future__ import annotations

import json
import time

import numpy as np
import onnx
import pytest
import torch

import effnet
import effnet.cli as cli
import effnet.deploy.paths as paths
import effnet.deploy.runtime as runtime
from effnet.arch import get_network, scale
from effnet.deploy.paths import PathCache, PathReport, PathResult, Tolerance, choose_paths
from effnet.weights import save_model
from effnet.weights.meta import Preprocessing

GEN = np.random.default_rng(0)
IMAGES = GEN.standard_normal((24, 3, 8, 8), dtype=np.float32)
WEIGHTS = GEN.standard_normal((3 * 8 * 8, 4)).astype(np.float32)
LABELS = (IMAGES.reshape(24, -1) @ WEIGHTS).argmax(1)  # the reference is right on every image


def fake_build(delays: dict[str, float], wrong: dict[str, int] | None = None):
    """Runners that take ``delays[path]`` seconds and compute the same logits, except that the
    first ``wrong[path]`` images of a batch get another class."""
    wrong = wrong or {}

    def build(model, path, workdir, calibration, **_):
        if path not in delays:
            raise RuntimeError(f"{path} is not available")

        def run(x):
            time.sleep(delays[path])
            logits = x.reshape(len(x), -1) @ WEIGHTS
            for i in range(min(wrong.get(path, 0), len(x))):
                logits[i, (logits[i].argmax() + 1) % 4] += 1e3
            return logits
        return run
    return build


def choose(delays, wrong=None, tolerance=Tolerance(), candidates=("eager", "channels_last", "onnxruntime", "int8")):
    return choose_paths(torch.nn.Identity(), [1, 2], 8, candidates, repeats=5, warmup=0, tolerance=tolerance,
                        heldout=(IMAGES, LABELS), heldout_name="fake", photos=False,
                        build=fake_build(delays, wrong))


def test_the_chooser_picks_the_fastest_path_per_batch_size():
    report = choose({"eager": 0.02, "channels_last": 0.012, "onnxruntime": 0.002, "int8": 0.008})
    for b in (1, 2):
        assert report.choice(b).path == "onnxruntime"
        assert [r.path for r in report.results if r.chosen and r.batch_size == b] == ["onnxruntime"]
    rows = {r.path: r for r in report.results if r.batch_size == 1}
    assert rows["eager"].vs_fp32 == pytest.approx(1.0)
    assert rows["onnxruntime"].vs_fp32 > 3  # 20 ms against 2 ms planted
    assert rows["int8"].agreement is None and rows["int8"].delta_points == pytest.approx(0.0)
    assert "choice for batch 2: onnxruntime" in paths.paths_table(report)


def test_a_faster_path_beyond_the_accuracy_tolerance_is_not_chosen():
    delays = {"eager": 0.02, "channels_last": 0.012, "onnxruntime": 0.008, "int8": 0.002}
    # INT8 gets 3 of every 8 held-out images wrong: -37.5 points, far beyond the 1 point allowed
    report = choose(delays, wrong={"int8": 3})
    int8 = next(r for r in report.results if r.path == "int8" and r.batch_size == 1)
    assert int8.delta_points == pytest.approx(-37.5)
    assert int8.delta_ci[1] < 0 and int8.mcnemar_p < 0.01
    assert "not chosen: held-out accuracy -37.50 points" in int8.note
    assert report.choice(1).path == "onnxruntime"
    # a tolerance that admits the drop lets the fastest path win
    loose = choose(delays, wrong={"int8": 3}, tolerance=Tolerance(int8_max_drop_points=50))
    assert loose.choice(1).path == "int8"


def test_without_labels_a_path_needs_top1_agreement_with_fp32():
    tol = Tolerance()
    assert tol.verdict("bf16", 0.995, None) == ""
    assert "agreement 98.0% < 99.0%" in tol.verdict("bf16", 0.98, None)
    assert "agreement" in tol.verdict("int8", 0.9, None)
    assert tol.verdict("int8", 0.9, -0.5) == ""  # with labels the held-out change decides
    assert tol.verdict("bf16", 0.96, +0.02) == ""  # ... for every path: the photos only stand in for labels
    assert "beyond -0.1" in tol.verdict("bf16", 1.0, -0.2)


@pytest.fixture
def tiny_model():
    desc = scale(get_network("efficientnet_b0"), width=0.25, depth=0.3, image_size=32, name="tiny_b0")
    torch.manual_seed(0)
    model = effnet.create_model(desc, num_classes=4).eval()
    torch.nn.init.normal_(model.classifier.weight, 0.0, 0.5)
    model.preprocessing = Preprocessing(resolution=32)
    return model


@pytest.mark.parametrize("flags,runs", [({"avx2", "fma"}, False), ({"avx512f", "avx512_bf16"}, True)])
def test_bf16_runs_only_on_a_cpu_with_native_bf16(monkeypatch, tiny_model, flags, runs):
    import effnet.machine as machine

    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset(flags))
    report = choose_paths(tiny_model, [1], 32, ["eager", "bf16"], repeats=1, warmup=0,
                          heldout=(IMAGES[:4, :, :, :].repeat(4, 2).repeat(4, 3), LABELS[:4]), photos=False)
    bf16 = next(r for r in report.results if r.path == "bf16")
    assert bf16.ok == runs
    if not runs:
        assert bf16.note == f"skipped: {runtime.BF16_UNSUPPORTED}"
        assert "no AVX512-BF16 or AMX" in paths.paths_table(report)


def test_openvino_runs_the_exported_graph_as_pytorch_does_at_any_batch_and_size(tiny_model, tmp_path):
    pytest.importorskip("openvino")
    run = paths.build_runner(tiny_model, "openvino", tmp_path)
    ref = paths.build_runner(tiny_model, "eager", tmp_path)
    for shape in ((1, 3, 32, 32), (5, 3, 40, 36)):
        x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
        want = ref(x)
        assert np.abs(run(x) - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_openvino_bf16_runs_only_on_a_cpu_with_native_bf16(monkeypatch, tiny_model, tmp_path):
    pytest.importorskip("openvino")
    import effnet.machine as machine

    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with pytest.raises(effnet.errors.EffnetError, match="no AVX512-BF16 or AMX, which OpenVINO's bf16 precision needs"):
        paths.build_runner(tiny_model, "openvino_bf16", tmp_path)
    monkeypatch.undo()
    if not runtime.bf16_supported():
        pytest.skip("this CPU has no native bf16")
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32), dtype=np.float32)
    got, want = paths.build_runner(tiny_model, "openvino_bf16", tmp_path)(x), tiny_model(torch.from_numpy(x))
    want = want.detach().numpy()
    assert not np.array_equal(got, want)  # bf16 arithmetic, not fp32
    assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()


def test_without_openvino_its_paths_name_the_extra_to_install(monkeypatch, tiny_model, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(effnet.errors.MissingExtraError, match=r"pip install 'effnet\[openvino\]'"):
        paths.build_runner(tiny_model, "openvino", tmp_path)


def test_the_best_peer_is_the_peers_network_in_onnx_runtime_not_on_our_engines():
    rows = [PathResult("eager", 1, 32, median_ms=10.0, throughput=100.0, agreement=1.0),
            PathResult("openvino_bf16", 1, 32, median_ms=2.0, throughput=500.0, agreement=1.0),
            PathResult("onnxruntime", 1, 32, impl="timm", median_ms=4.0, throughput=250.0),
            PathResult("openvino_bf16", 1, 32, impl="timm", median_ms=2.0, throughput=500.0)]
    paths._ratios_and_choice(rows, Tolerance())
    ours, peer_ort, peer_ov = rows[1], rows[2], rows[3]
    assert ours.chosen and ours.vs_best_peer == pytest.approx(2.0)  # against timm in ONNX Runtime
    assert peer_ov.vs_best_peer == pytest.approx(2.0) and not peer_ov.chosen  # the engine's share, shown
    paths._measure_accuracy(rows, {"eager": lambda x: x.reshape(len(x), -1)[:, :4],
                                   "openvino_bf16": lambda x: x.reshape(len(x), -1)[:, :4]}, IMAGES, None,
                            PathReport(rows, Tolerance(), 5, {}))
    assert ours.agreement == 1.0 and peer_ov.agreement is None and peer_ort.agreement is None  # not our network
    report = PathReport(rows, Tolerance(), 5, paths.machine())
    assert "the peers' rows on other engines show how much of a path's speed is the engine's" in paths.paths_table(report)


def one_choice(path="int8", batch=1, size=32) -> PathReport:
    return PathReport([PathResult(path, batch, size, median_ms=1.0, throughput=1000.0, vs_fp32=2.0, chosen=True)],
                      Tolerance(), 5, paths.machine())


REAL_MACHINE = paths.machine()


def test_the_cache_is_keyed_by_model_batch_size_and_machine_and_reused(tmp_path, monkeypatch):
    file = tmp_path / "cache" / "paths.json"
    PathCache(file).put("net-a", one_choice("int8", batch=1))
    cache = PathCache(file)  # a fresh reader sees what was written
    assert cache.get("net-a", 1, 32)["path"] == "int8"
    assert cache.get("net-a", 8, 32) is None and cache.get("net-a", 1, 64) is None and cache.get("net-b", 1, 32) is None

    def no_measuring(*args, **kwargs):
        raise AssertionError("a cached choice must not be measured again")
    monkeypatch.setattr(paths, "choose_paths", no_measuring)
    assert paths.cached_or_measured(torch.nn.Identity(), "net-a", 1, 32, cache) == ("int8", False)
    other_cpu = {**paths.machine(), "flags_sha1": "0" * 12}
    monkeypatch.setattr(paths, "machine", lambda: other_cpu)
    assert cache.get("net-a", 1, 32) is None  # another machine's choice does not apply
    monkeypatch.undo()
    monkeypatch.setattr(paths, "machine", lambda: {**REAL_MACHINE, "openvino": "0.0-other"})
    assert cache.get("net-a", 1, 32) is None  # nor one made with another OpenVINO (or none): its paths differ


def test_a_corrupt_cache_is_ignored_with_a_warning_and_replaced(tmp_path, monkeypatch):
    file = tmp_path / "paths.json"
    file.write_text("{not json")
    monkeypatch.setenv("EFFNET_PATHS_CACHE", str(file))
    cache = PathCache()
    assert cache.file == file and cache.entries == {}
    assert "ignoring the unreadable path cache" in cache.warning
    cache.put("net", one_choice())
    assert PathCache(file).get("net", 1, 32)["path"] == "int8" and PathCache(file).warning == ""


def test_the_cache_lives_under_the_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("EFFNET_PATHS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paths.cache_file() == tmp_path / "effnet" / "paths.json"


@pytest.fixture
def only(monkeypatch):
    def use(*commands):
        monkeypatch.setattr(cli, "COMMANDS", list(commands))
    return use


def test_export_path_int8_writes_a_working_int8_onnx(tmp_path, only, capsys, tiny_model):
    pytest.importorskip("skimage")
    only("export")
    ckpt = tmp_path / "tiny.safetensors"
    save_model(tiny_model, ckpt)
    out = tmp_path / "tiny-int8.onnx"
    assert cli.main(["export", str(ckpt), "--format", "onnx", "--out", str(out), "--path", "int8"]) == 0
    text = capsys.readouterr().out
    assert "ONNX INT8" in text and "top-1 agreement" in text
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    from effnet.deploy.runtime import ort_session, run_session

    logits = run_session(ort_session(out), np.random.default_rng(1).standard_normal((3, 3, 40, 40), dtype=np.float32))[0]
    assert logits.shape == (3, 4) and np.isfinite(logits).all()


def test_predict_on_onnxruntime_gives_eager_top1(tmp_path, only, capsys, tiny_model):
    from PIL import Image

    only("predict")
    ckpt = tmp_path / "tiny.safetensors"
    save_model(tiny_model, ckpt)
    rng = np.random.default_rng(0)
    images = []
    for i in range(4):
        images.append(str(tmp_path / f"img{i}.png"))
        Image.fromarray((rng.random((40, 36 + i, 3)) * 255).astype("uint8")).save(images[-1])
    top = {}
    for path in (None, "onnxruntime", "openvino"):
        args = ["predict", *images, "--model", str(ckpt), "--json", "--top-k", "1"]
        assert cli.main(args + (["--path", path] if path else [])) == 0
        top[path] = [p["top_k"][0]["index"] for p in json.loads(capsys.readouterr().out)["predictions"]]
    assert top["onnxruntime"] == top[None]
    assert top["openvino"] == top[None]


@pytest.mark.parametrize("argv", [
    ["export", "efficientnet_b0", "--format", "onnx", "--out", "m.onnx", "--path", "fast"],
    ["predict", "x.png", "--model", "efficientnet_b0", "--path", "gpu"],
    ["bench", "--choose", "--paths", "eager,warp"],
])
def test_bad_path_values_give_a_one_line_error(argv, only, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    only(argv[0])
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"effnet {argv[0]}: error: unknown") and err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()


def test_predict_auto_runs_the_cached_choice_and_says_which(tmp_path, only, capsys, tiny_model, monkeypatch):
    from PIL import Image

    only("predict")
    monkeypatch.setenv("EFFNET_PATHS_CACHE", str(tmp_path / "paths.json"))
    ckpt = tmp_path / "tiny.safetensors"
    save_model(tiny_model, ckpt)
    image = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype("uint8")).save(image)
    PathCache().put(paths.model_identity(ckpt), one_choice("onnxruntime", batch=8, size=32))
    monkeypatch.setattr(paths, "choose_paths", lambda *a, **k: pytest.fail("the cached choice must be reused"))
    assert cli.main(["predict", str(image), "--model", str(ckpt), "--path", "auto"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == "effnet predict: path onnxruntime (the choice for this machine)"
    assert str(image) in captured.out
