"""Export: BatchNorm folding, ONNX and TorchScript with dynamic shapes, checked against PyTorch."""
from __future__ import annotations

import warnings

import onnx
import pytest
import torch

import effnet
import effnet.cli as cli
from effnet.arch import get_network, scale
from effnet.deploy.export import (export_onnx, export_torchscript, prepare_for_export,
                                  verify_onnx, verify_torchscript)

SIZES = [(1, 64, 64), (2, 250, 333), (1, 47, 61)]


def tiny_model(padding: str = "symmetric", seed: int = 0, **kwargs) -> torch.nn.Module:
    """A small B0-shaped model whose BatchNorm statistics are not the identity, so folding matters."""
    desc = scale(get_network("efficientnet_b0"), width=0.25, depth=0.3, image_size=64, name="tiny_b0")
    torch.manual_seed(seed)
    model = effnet.create_model(desc, num_classes=5, padding=padding, **kwargs).eval()
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.normal_(0, 0.2, generator=gen)
    if isinstance(model.classifier, torch.nn.Linear):  # a new head starts at zero
        torch.nn.init.normal_(model.classifier.weight, 0.0, 0.5, generator=gen)
    return model


def test_same_padding_exports_as_one_conv_with_auto_pad_and_no_shape_arithmetic(tmp_path):
    model = tiny_model("same")
    path = export_onnx(model, tmp_path / "m.onnx", example_size=64)
    nodes = onnx.load(str(path)).graph.node
    ops = {n.op_type for n in nodes}
    assert not ops & {"Pad", "Shape", "Gather", "Slice", "Concat"}, ops
    strided = [n for n in nodes if n.op_type == "Conv"
               and any(a.name == "auto_pad" and a.s == b"SAME_UPPER" for a in n.attribute)]
    assert strided, "the strided 'same' convolutions pad with auto_pad"
    checks = verify_onnx(model, path, [(1, 64, 64), (2, 65, 63), (1, 33, 50)])
    assert all(c.ok for c in checks), [c.line() for c in checks]


def test_dynamo_exporter_still_exports_same_padding(tmp_path):
    from effnet.nn import Conv2dSame

    conv = torch.nn.Sequential(Conv2dSame(3, 4, 3, 2)).eval()
    x = torch.randn(1, 3, 17, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(conv, (x,), str(tmp_path / "d.onnx"), dynamo=True)
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.inference_mode():
        assert torch.allclose(torch.from_numpy(out), conv(x), atol=1e-5)


@pytest.mark.parametrize("padding", ["symmetric", "same"])
def test_onnx_export_has_dynamic_shapes_and_matches_pytorch(tmp_path, padding):
    model = tiny_model(padding)
    path = export_onnx(model, tmp_path / "m.onnx", example_size=64)
    graph = onnx.load(str(path)).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]
    assert not any(n.op_type == "BatchNormalization" for n in graph.node)
    checks = verify_onnx(model, path, SIZES)
    assert [c.shape for c in checks] == [(1, 3, 64, 64), (2, 3, 250, 333), (1, 3, 47, 61)]
    assert all(c.ok for c in checks), [c.line() for c in checks]
    assert all(c.max_abs_output > 1e-3 for c in checks), "outputs large enough for the tolerance to mean something"



def test_squeeze_excite_pools_with_global_average_pool_in_onnx(tmp_path):
    # GlobalAveragePool stays in ONNX Runtime's blocked layout (fp32) and becomes an integer op in
    # INT8 graphs; a ReduceMean would force a layout conversion in every block
    model = tiny_model()
    graph = onnx.load(str(export_onnx(model, tmp_path / "m.onnx", example_size=64))).graph
    ops = [n.op_type for n in graph.node]
    blocks_with_se = sum(1 for m in model.modules() if type(m).__name__ == "SqueezeExcite")
    assert blocks_with_se > 0
    assert "ReduceMean" not in ops
    assert ops.count("GlobalAveragePool") == blocks_with_se + 1  # and the head's pooling

def test_torchscript_export_runs_at_any_size(tmp_path):
    model = tiny_model("same")
    path = export_torchscript(model, tmp_path / "m.pt")
    checks = verify_torchscript(model, path, SIZES)
    assert all(c.ok for c in checks), [c.line() for c in checks]


@pytest.mark.parametrize("name,padding,features_only", [
    ("efficientnet_b0", "symmetric", False), ("efficientnet_b0", "same", True), ("efficientnet_b3", "same", False),
    ("efficientnet_lite0", "symmetric", False), ("mobilenet_v1", "symmetric", False),
    ("mobilenet_v2", "same", False), ("resnet50", "symmetric", True),
])
def test_registered_variants_script_with_torch_jit(name, padding, features_only):
    with torch.device("meta"):  # scripting compiles code; no weights need to exist
        model = effnet.create_model(name, padding=padding, features_only=features_only).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(model)
    assert "forward" in scripted.code


def test_scripted_model_matches_eager_for_features_only():
    model = tiny_model("same", features_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(model)
    x = torch.randn(1, 3, 45, 64)
    with torch.inference_mode():
        for a, b in zip(model(x), scripted(x)):
            assert torch.allclose(a, b, atol=1e-6)


def test_export_command_writes_onnx_and_prints_three_checks(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ["export"])
    desc = scale(get_network("efficientnet_b0"), width=0.25, depth=0.3, image_size=64, name="tiny_b0")
    desc.save(tmp_path / "tiny.json")
    out = tmp_path / "tiny.onnx"
    assert cli.main(["export", str(tmp_path / "tiny.json"), "--format", "onnx", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "250x333" in text and text.count(" ok") == 3


def test_export_command_rejects_bad_input_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ["export"])
    assert cli.main(["export", "efficientnet_b0", "--format", "onnx", "--out", str(tmp_path / "m.onnx"),
                     "--opset", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("effnet export: error: opset") and err.count("\n") == 1
    assert cli.main(["export", "no_such_net", "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_export_runs_pretrained_lite0_within_tolerance(tmp_path):
    model = effnet.create_model("efficientnet_lite0", pretrained=True).eval()
    path = export_onnx(model, tmp_path / "lite0.onnx")
    checks = verify_onnx(model, path, [(1, 224, 224), (1, 250, 333)])
    assert all(c.ok for c in checks), [c.line() for c in checks]
    assert checks[0].max_abs_output > 1.0  # real logits, not the near-zero outputs of random weights


@pytest.mark.parametrize("padding", ["symmetric", "same"])
def test_openvino_ir_has_dynamic_shapes_and_matches_pytorch(tmp_path, padding):
    ov = pytest.importorskip("openvino")
    from effnet.deploy.export import export_openvino, verify_openvino

    model = tiny_model(padding)
    xml = export_openvino(model, tmp_path / "tiny.xml")
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.bin", "tiny.xml"]  # no staging left behind
    checks = verify_openvino(model, xml)
    assert len(checks) == 3 and all(c.ok for c in checks), [c.line() for c in checks]
    shape = ov.Core().read_model(str(xml)).input(0).get_partial_shape()
    assert shape[0].is_dynamic and shape[2].is_dynamic and shape[3].is_dynamic and shape[1].get_length() == 3


def test_export_command_writes_openvino_ir_or_says_why_not(tmp_path, monkeypatch, capsys):
    pytest.importorskip("openvino")
    monkeypatch.setattr(cli, "COMMANDS", ["export"])
    desc = scale(get_network("efficientnet_b0"), width=0.25, depth=0.3, image_size=64, name="tiny_b0")
    desc.save(tmp_path / "tiny.json")
    assert cli.main(["export", str(tmp_path / "tiny.json"), "--format", "openvino", "--out", str(tmp_path / "m.xml")]) == 0
    text = capsys.readouterr().out
    assert "(OpenVINO, fp32, random inputs)" in text and text.count(" ok") == 3
    assert cli.main(["export", str(tmp_path / "tiny.json"), "--format", "openvino", "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("effnet export: error: OpenVINO IR is written as NAME.xml") and err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()


def test_same_padding_max_pool_exports_as_one_max_pool_with_auto_pad(tmp_path):
    desc = scale(get_network("resnet50"), width=0.125, depth=0.25, image_size=64, name="tiny_resnet")
    torch.manual_seed(0)
    model = effnet.create_model(desc, num_classes=5, padding="same").eval()
    path = export_onnx(model, tmp_path / "r.onnx", example_size=64)
    nodes = onnx.load(str(path)).graph.node
    ops = {n.op_type for n in nodes}
    assert not ops & {"Pad", "Shape", "Gather", "Slice", "Concat"}, ops
    pools = [n for n in nodes if n.op_type == "MaxPool"]
    assert len(pools) == 1 and any(a.name == "auto_pad" and a.s == b"SAME_UPPER" for a in pools[0].attribute)
    # odd sizes put the extra padding at the bottom/right, where -inf never wins
    checks = verify_onnx(model, path, [(1, 64, 64), (2, 65, 63), (1, 33, 50)])
    assert all(c.ok for c in checks), [c.line() for c in checks]


def test_the_export_check_allows_a_difference_relative_to_large_outputs_and_absolute_below_1():
    from effnet.deploy.export import TOLERANCE, Check

    assert Check((1, 3, 8, 8), 8e-3, 219.0).ok  # fp32 rounding through a deep net with logits in the hundreds
    assert not Check((1, 3, 8, 8), 0.05, 219.0).ok
    assert Check((1, 3, 8, 8), TOLERANCE, 0.5).ok and not Check((1, 3, 8, 8), 2 * TOLERANCE, 0.5).ok
    assert "FAILED (> 0.022)" in Check((1, 3, 8, 8), 0.05, 219.0).line()
