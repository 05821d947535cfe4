"""scikit-image's sample photos through a model's own preprocessing (test-only)."""
from __future__ import annotations

import pytest
import torch


def prepare(image, prep) -> torch.Tensor:
    """Resize the short side to resolution / crop_fraction, centre-crop, normalise."""
    from PIL import Image
    from torchvision import transforms as T

    resize = round(prep.resolution / prep.crop_fraction)
    mode = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR,
            "nearest": T.InterpolationMode.NEAREST}[prep.interpolation]
    tf = T.Compose([T.Resize(resize, interpolation=mode), T.CenterCrop(prep.resolution), T.ToTensor(),
                    T.Normalize(prep.mean, prep.std)])
    return tf(Image.fromarray(image).convert("RGB"))


def sample_photo_predictions(model, k: int) -> dict[str, tuple[set[str], list[str]]]:
    """Photo name -> (the ImageNet classes that are right for it, the model's top-``k`` class names)."""
    skimage_data = pytest.importorskip("skimage.data")
    prep = model.preprocessing
    photos = {
        "chelsea": ({"tabby", "tiger cat", "Egyptian cat"}, skimage_data.chelsea()),
        "coffee": ({"espresso"}, skimage_data.coffee()),
        "rocket": ({"missile", "projectile", "space shuttle"}, skimage_data.rocket()),
    }
    batch = torch.stack([prepare(img, prep) for _, img in photos.values()])
    with torch.no_grad():
        top = model.eval()(batch).topk(k, dim=1).indices
    return {photo: (right, [prep.class_names[i] for i in idx]) for (photo, (right, _)), idx in zip(photos.items(), top)}
