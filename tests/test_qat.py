"""Quantisation-aware fine-tuning: the INT8 simulation, the fine-tuning, and ``effnet quantize --qat-epochs``."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize

import effnet
import effnet.cli as cli
from effnet.arch import get_network, scale
from effnet.data import synthetic_splits
from effnet.deploy.export import export_onnx
from effnet.deploy.qat import ActivationFakeQuant, WeightFakeQuant, _Simulation, qat_finetune
from effnet.deploy.quantize import dataset_batches, quantize_onnx
from effnet.deploy.runtime import ort_session, run_session


def tiny_model(num_classes: int = 3) -> torch.nn.Module:
    desc = scale(get_network("efficientnet_b0"), width=0.25, depth=0.3, image_size=32, name="tiny_b0")
    torch.manual_seed(0)
    model = effnet.create_model(desc, num_classes=num_classes, drop_path_rate=0.0)
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():  # BatchNorm that keeps activations of order one, so rounding matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.normal_(0, 0.2, generator=gen)
    torch.nn.init.normal_(model.classifier.weight, 0.0, 0.5, generator=gen)
    return model.eval()


def test_activation_rounding_uses_256_levels_of_the_observed_range():
    fq = ActivationFakeQuant().train()
    x = torch.linspace(-1.0, 3.0, 10_000)
    y = fq(x)
    assert fq.lo.item() == pytest.approx(-1.0) and fq.hi.item() == pytest.approx(3.0)
    assert len(torch.unique(y)) <= 256
    assert (y - x).abs().max().item() <= 4.0 / 255 / 2 + 1e-6  # half a step
    fq.eval()
    assert torch.equal(fq(torch.tensor([10.0])), torch.tensor([y.max().item()])), "eval clamps to the range"


def test_weight_rounding_is_symmetric_int8_per_output_channel():
    w = torch.randn(4, 3, 3, 3) * torch.tensor([0.01, 0.1, 1.0, 10.0]).view(4, 1, 1, 1)
    q = WeightFakeQuant()(w)
    for c in range(4):
        step = w[c].abs().max().item() / 127
        assert len(torch.unique(q[c])) <= 255
        assert (q[c] - w[c]).abs().max().item() <= step / 2 + 1e-7 * w[c].abs().max().item()


def test_simulated_rounding_moves_outputs_about_as_much_as_onnx_runtime_int8_does(tmp_path):
    # rounding of the right size at the right tensors: weights alone would move them half as much,
    # and 4-bit rounding or a missing range far more
    model = tiny_model()
    splits = synthetic_splits(num_classes=3, per_class=8, img_size=32, seed=0)
    x = torch.stack([splits.train[i][0] for i in range(len(splits.train))])
    fp32 = export_onnx(model, tmp_path / "m.onnx", example_size=32)
    int8 = quantize_onnx(fp32, tmp_path / "q.onnx", [x.numpy()], method="minmax")
    ort_int8 = run_session(ort_session(int8), x.numpy())[0]

    folded = model.optimize_for_inference(channels_last=False)
    with torch.no_grad():
        ref = folded(x).numpy()
        sim = _Simulation(folded)
        for obs in sim.observers:
            obs.momentum = 1.0  # the range of this one batch, as min/max calibration on it
        sim.train(True)
        folded(x)
        sim.train(False)
        simulated = folded(x).numpy()
        sim.remove()
        assert np.allclose(folded(x).numpy(), ref, atol=1e-6), "removing the simulation restores the model"
    assert np.abs(ref).mean() > 0.1, "logits large enough for rounding to show"
    ratio = np.abs(simulated - ref).mean() / np.abs(ort_int8 - ref).mean()
    assert 0.7 < ratio < 2.5, ratio


def test_qat_finetune_returns_a_plain_folded_float_model_and_leaves_the_input_alone():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    splits = synthetic_splits(num_classes=3, per_class=8, img_size=32, seed=0)
    tuned = qat_finetune(model, splits.train, epochs=1, lr=1e-3, batch_size=8, progress=False)
    assert not any(parametrize.is_parametrized(m) for m in tuned.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in tuned.modules())
    assert not tuned.training and not any(p.requires_grad for p in tuned.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items()), "input model unchanged"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(tuned(x), model(x), atol=1e-4), "the fine-tuning changed the weights"
    assert tuned(x).shape == (2, 3)
    with pytest.raises(ValueError, match="epochs"):
        qat_finetune(model, splits.train, epochs=0)


def test_quantize_command_with_qat_reports_it_and_refuses_bad_values(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ["quantize"])
    desc = tiny_model().desc
    desc.save(tmp_path / "tiny.json")
    args = ["quantize", str(tmp_path / "tiny.json"), "--data", "synthetic", "--out", str(tmp_path / "q.onnx"),
            "--calib-images", "8", "--limit-per-class", "6", "--repeats", "2", "--img-size", "32"]
    assert cli.main(args + ["--qat-epochs", "0.5", "--json", str(tmp_path / "q.json")]) == 0
    out = capsys.readouterr().out
    assert "quantisation-aware fine-tuning first: 0.5 epochs" in out and "calibrated (minmax)" in out
    data = json.loads((tmp_path / "q.json").read_text())
    assert data["qat_epochs"] == 0.5 and data["calibration"] == "minmax"
    assert cli.main(args + ["--qat-epochs", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--qat-epochs must be >= 0" in err and "Traceback" not in err
