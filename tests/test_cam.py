"""Class activation maps: shapes, [0, 1] normalisation, Grad-CAM = CAM up to scale, the figure."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import effnet
import effnet.cli as cli
from effnet.analysis.cam import cam_figure, class_activation_maps, normalise_maps
from effnet.arch import get_network, scale
from effnet.weights import save_model
from effnet.weights.meta import Preprocessing


def tiny_desc(width: float = 0.25, name: str = "tiny_b0"):
    return scale(get_network("efficientnet_b0"), width=width, depth=0.3, image_size=48, name=name)


def model_with_stats(desc=None, num_classes=4):
    torch.manual_seed(0)
    model = effnet.create_model(desc or tiny_desc(), num_classes=num_classes).eval()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.bias.data.normal_(0, 0.3, generator=gen)
    torch.nn.init.normal_(model.classifier.weight, 0.0, 0.5, generator=gen)  # a new head starts at zero
    return model


@pytest.mark.parametrize("method", ["cam", "gradcam"])
def test_maps_have_input_size_and_lie_in_unit_interval(method):
    model = model_with_stats()
    x = torch.randn(3, 3, 48, 56)
    result = class_activation_maps(model, x, method)
    assert result.maps.shape == (3, 48, 56)
    assert float(result.maps.min()) >= 0.0 and float(result.maps.max()) <= 1.0
    for m in result.maps:
        assert float(m.max()) == pytest.approx(1.0) and float(m.min()) == pytest.approx(0.0)
    with torch.inference_mode():
        assert result.classes == model(x).argmax(1).tolist()
    assert all(0 < p <= 1 for p in result.probabilities)


def test_gradcam_equals_cam_up_to_scale_for_a_linear_head_on_pooled_features():
    model = model_with_stats()
    x = torch.randn(2, 3, 48, 48)
    target = [1, 3]
    cam = class_activation_maps(model, x, "cam", target)
    grad = class_activation_maps(model, x, "gradcam", target)
    h, w = cam.raw.shape[-2:]
    # d score / d F[c, i, j] = W[class, c] / (h * w) for average pooling then a linear layer
    assert torch.allclose(grad.raw * (h * w), cam.raw, rtol=1e-4, atol=1e-6)
    assert torch.allclose(grad.maps, cam.maps, atol=1e-5)


def test_normalisation_maps_constant_maps_to_zero():
    maps = torch.stack([torch.full((4, 4), 3.0), torch.arange(16.0).view(4, 4)])
    out = normalise_maps(maps)
    assert torch.equal(out[0], torch.zeros(4, 4))
    assert float(out[1, 0, 0]) == 0.0 and float(out[1, -1, -1]) == 1.0


def test_features_only_models_are_refused():
    model = effnet.create_model(tiny_desc(), features_only=True)
    with pytest.raises(ValueError, match="classifier"):
        class_activation_maps(model, torch.randn(1, 3, 48, 48))


def test_figure_has_one_row_per_model_and_one_column_per_image(tmp_path):
    rng = np.random.default_rng(0)
    images = []
    for i in range(3):
        p = tmp_path / f"im{i}.png"
        Image.fromarray((rng.random((60, 70, 3)) * 255).astype("uint8")).save(p)
        images.append(p)
    base = model_with_stats(num_classes=2)
    base.preprocessing = Preprocessing(resolution=48, class_names=("cell", "crack"))
    ckpt = tmp_path / "base.safetensors"
    save_model(base, ckpt)
    wide_json = tmp_path / "wide.json"
    tiny_desc(width=0.35, name="tiny_wide").replace(num_classes=2).save(wide_json)
    out = cam_figure(images, [ckpt, wide_json], tmp_path / "cam.png", method="gradcam")
    assert out.is_file()
    with Image.open(out) as img:
        w, h = img.size
    assert w > h  # 3 columns x 2 rows


def test_cam_command_writes_png_and_reports_bad_images(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ["cam"])
    good = tmp_path / "a.png"
    Image.fromarray(np.full((50, 50, 3), 128, dtype="uint8")).save(good)
    desc_path = tmp_path / "tiny.json"
    tiny_desc().save(desc_path)
    assert cli.main(["cam", str(good), "--models", str(desc_path), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").is_file() and "wrote" in capsys.readouterr().out
    bad = tmp_path / "bad.png"
    bad.write_text("x")
    assert cli.main(["cam", str(bad), "--models", str(desc_path), "--out", str(tmp_path / "d.png")]) == 2
    assert "bad.png" in capsys.readouterr().err and not (tmp_path / "d.png").exists()
