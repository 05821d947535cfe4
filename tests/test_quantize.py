"""INT8 static quantisation in ONNX Runtime: per-channel QDQ model, accuracy and speed report."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

import effnet
import effnet.cli as cli
from effnet.arch import get_network, scale
from effnet.data import synthetic_splits
from effnet.deploy.export import export_onnx
from effnet.deploy.quantize import (dataset_batches, early_convolutions, evaluate_onnx, int8_speed_note,
                                    quantize_model, quantize_onnx)
from effnet.deploy.runtime import ort_session
from effnet.weights import save_model
from effnet.weights.meta import Preprocessing


def tiny_desc():
    return scale(get_network("efficientnet_b0"), width=0.25, depth=0.3, image_size=32, name="tiny_b0")


@pytest.fixture(scope="module")
def trained():
    """A tiny model fitted in seconds on synthetic colour-stripe images: BatchNorm statistics set
    from the training images, then a least-squares linear classifier on the pooled features."""
    torch.manual_seed(0)
    splits = synthetic_splits(num_classes=3, per_class=24, img_size=32, seed=0)
    model = effnet.create_model(tiny_desc(), num_classes=3, drop_path_rate=0.0)
    x = torch.stack([splits.train[i][0] for i in range(len(splits.train))])
    y = torch.tensor(splits.train.targets)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the passes below
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(x)
    model.eval()
    with torch.no_grad():
        feats = model.forward_head(model.forward_features(x), pre_logits=True)
        design = torch.cat([feats, torch.ones(len(feats), 1)], 1)
        targets = torch.nn.functional.one_hot(y, 3).float()
        sol = torch.linalg.lstsq(design, targets, driver="gelsd").solution  # (C + 1) x 3
        model.classifier.weight.copy_(sol[:-1].T)
        model.classifier.bias.copy_(sol[-1])
    model.preprocessing = Preprocessing(resolution=32, class_names=tuple(splits.class_names))
    return model, splits


def test_quantized_model_is_per_channel_qdq_and_agrees_with_fp32(tmp_path, trained):
    model, splits = trained
    fp32 = export_onnx(model, tmp_path / "fp32.onnx", example_size=32)
    int8 = quantize_onnx(fp32, tmp_path / "int8.onnx", dataset_batches(splits.train, 24, batch_size=8))
    graph = onnx.load(str(int8)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    inits = {t.name: t for t in graph.initializer}
    weight_scales = [inits[n.input[1]] for n in graph.node if n.op_type == "DequantizeLinear"
                     and n.input[0] in inits and inits[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert weight_scales and any(len(s.dims) == 1 and s.dims[0] > 1 for s in weight_scales), "per-channel scales"
    x = np.stack([splits.test[i][0].numpy() for i in range(len(splits.test))])
    a = ort_session(fp32).run(None, {"input": x})[0].argmax(1)
    b = ort_session(int8).run(None, {"input": x})[0].argmax(1)
    assert (a == b).mean() >= 0.8


def _float_convs(path) -> set[str]:
    """Conv nodes of a QDQ model whose weights are plain float initializers (not dequantised int8)."""
    graph = onnx.load(str(path)).graph
    inits = {t.name for t in graph.initializer}
    return {n.name for n in graph.node if n.op_type == "Conv" and n.input[1] in inits}


def test_convolutions_at_stride_4_or_finer_stay_float_and_the_rest_are_int8(tmp_path, trained):
    model, splits = trained
    fp32 = export_onnx(model, tmp_path / "fp32.onnx", example_size=32)
    early = early_convolutions(onnx.load(str(fp32)).graph, 4)
    # the stem (stride 2), stage 0 (2), stage 1 (2, then 4) and stage 2's expansion (4); strides are
    # followed past the squeeze-excite product, whose pooled branch is not spatial
    assert early == ["/stem/conv/Conv", "/stages/stages.0/stages.0.0/dw/conv/Conv",
                     "/stages/stages.0/stages.0.0/project/conv/Conv", "/stages/stages.1/stages.1.0/expand/conv/Conv",
                     "/stages/stages.1/stages.1.0/dw/conv/Conv", "/stages/stages.1/stages.1.0/project/conv/Conv",
                     "/stages/stages.2/stages.2.0/expand/conv/Conv"]
    assert early_convolutions(onnx.load(str(fp32)).graph, 2) == early[:4]
    calib = lambda: dataset_batches(splits.train, 8, batch_size=4)  # noqa: E731
    default = quantize_onnx(fp32, tmp_path / "int8.onnx", calib())
    assert _float_convs(default) == set(early)
    every = quantize_onnx(fp32, tmp_path / "all.onnx", calib(), float_stride=0)
    assert _float_convs(every) == set()


def test_fp32_onnx_accuracy_equals_pytorch_accuracy(tmp_path, trained):
    model, splits = trained
    fp32 = export_onnx(model, tmp_path / "fp32.onnx", example_size=32)
    x = torch.stack([splits.test[i][0] for i in range(len(splits.test))])
    with torch.inference_mode():
        torch_acc = (model(x).argmax(1) == torch.tensor(splits.test.targets)).float().mean().item()
    assert evaluate_onnx(ort_session(fp32), splits.test) == pytest.approx(torch_acc)


def test_quantize_report_measures_accuracy_change_and_speedup(tmp_path, trained):
    model, splits = trained
    report = quantize_model(model, splits, tmp_path / "q.onnx", calib_images=16, repeats=3)
    assert (tmp_path / "q.onnx").is_file()
    assert report.calib_images == 16 and report.eval_images == len(splits.test)
    assert report.fp32_top1 > 0.5, "the briefly trained model beats chance (1/3) in fp32"
    assert abs(report.delta_points) <= 20
    assert report.fp32_img_s > 0 and report.int8_img_s > 0
    assert report.speedup == pytest.approx(report.int8_img_s / report.fp32_img_s)
    assert "change" in report.text() and "speed-up" in report.text()
    assert "note: SiLU" in report.text(), "a B0-shaped model says what bounds its INT8 speed-up"


def test_quantize_command_on_a_checkpoint_writes_model_and_json(tmp_path, trained, monkeypatch, capsys):
    model, _ = trained
    monkeypatch.setattr(cli, "COMMANDS", ["quantize"])
    ckpt = tmp_path / "m.safetensors"
    save_model(model, ckpt)
    code = cli.main(["quantize", str(ckpt), "--data", "synthetic", "--out", str(tmp_path / "m.int8.onnx"),
                     "--calib-images", "8", "--limit-per-class", "6", "--repeats", "2",
                     "--json", str(tmp_path / "q.json")])
    assert code == 0
    assert "top-1 INT8" in capsys.readouterr().out
    data = json.loads((tmp_path / "q.json").read_text())
    assert data["calib_images"] == 8 and "speedup" in data and "delta_points" in data


def test_quantize_rejects_a_model_with_other_classes_and_non_onnx_out(tmp_path, trained, monkeypatch, capsys):
    model, splits = trained
    with pytest.raises(ValueError, match="classes"):
        quantize_model(effnet.create_model(tiny_desc(), num_classes=5), splits, tmp_path / "x.onnx")
    monkeypatch.setattr(cli, "COMMANDS", ["quantize"])
    assert cli.main(["quantize", "efficientnet_b0", "--data", "synthetic", "--out", str(tmp_path / "x.bin")]) == 2
    assert "effnet quantize: error: --out must name a .onnx file" in capsys.readouterr().err


def test_every_calibration_method_gives_a_working_model_and_unknown_ones_are_refused(tmp_path, trained):
    model, splits = trained
    fp32 = export_onnx(model, tmp_path / "fp32.onnx", example_size=32)
    for method in ("minmax", "entropy"):
        out = quantize_onnx(fp32, tmp_path / f"{method}.onnx", dataset_batches(splits.train, 8, batch_size=3),
                            method=method)
        assert 0.0 <= evaluate_onnx(ort_session(out), splits.test) <= 1.0
    with pytest.raises(ValueError, match="calibration method"):
        quantize_onnx(fp32, tmp_path / "x.onnx", [], method="mse")


def test_int8_note_names_what_limits_the_speed_up_and_is_silent_for_lite():
    b0_note = int8_speed_note(effnet.create_model("efficientnet_b0"))
    assert "SiLU" in b0_note and "squeeze-excite" in b0_note
    assert int8_speed_note(effnet.create_model("efficientnet_lite0")) == ""
