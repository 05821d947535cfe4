"""Train and eval transforms derived from a model's preprocessing metadata (torchvision v2)."""
from __future__ import annotations

import torch
from torchvision.transforms import InterpolationMode, v2

from ..checks import check_choice, check_int, check_range
from ..weights.meta import Preprocessing

__all__ = ["AUGMENTATIONS", "crop_scale_for", "make_transforms", "eval_resize_size"]

#: Training-time augmentation policies ``make_transforms`` accepts.
AUGMENTATIONS = ("autoaugment", "randaugment", "none")
_INTERPOLATION = {
    "bicubic": InterpolationMode.BICUBIC,
    "bilinear": InterpolationMode.BILINEAR,
    "nearest": InterpolationMode.NEAREST,
}


def crop_scale_for(img_size: int) -> float:
    """The smallest random-crop area for training at ``img_size``: the paper's 8% at 224 px (and
    above), growing in proportion to 224 / ``img_size`` below it, at most the whole image (an 8%
    crop of a 32 px image is 9 px across)."""
    return min(1.0, max(0.08, 0.08 * 224 / img_size))


def eval_resize_size(img_size: int, crop_fraction: float) -> int:
    """The shorter side an image is resized to before the centre crop of ``img_size``."""
    return int(img_size / crop_fraction)


def make_transforms(
    preprocessing: Preprocessing | None,
    img_size: int | None,
    train: bool,
    augment: str = "autoaugment",
    crop_scale: float | None = None,
) -> v2.Compose:
    """PIL RGB image -> normalised float tensor ``C x img_size x img_size``.

    Train: ``RandomResizedCrop(img_size)`` of at least ``crop_scale`` of the image's area (default
    :func:`crop_scale_for` ``img_size``: the paper's 8% at 224 px, larger below it, so a crop of a
    small image keeps its content) + horizontal flip + the augmentation policy
    (``"autoaugment"``: AutoAugment's ImageNet policy; ``"randaugment"``: RandAugment with 2 ops at
    magnitude 9; ``"none"``) + normalisation. Eval: resize the shorter side to
    ``int(img_size / crop_fraction)``, centre-crop ``img_size``, normalise. Interpolation, crop
    fraction, mean and std come from ``preprocessing`` (ImageNet defaults, bicubic, 0.875 when
    ``None``); ``img_size`` defaults to ``preprocessing.resolution``. A one-element mean/std makes
    single-channel (grayscale) tensors for ``in_chans=1`` models.
    """
    pre = preprocessing if preprocessing is not None else Preprocessing()
    size = pre.resolution if img_size is None else img_size
    check_int("img_size", size, 1)
    check_choice("augment", augment, AUGMENTATIONS)
    channels = len(pre.mean)
    if channels not in (1, 3):
        raise ValueError(f"preprocessing mean/std must have 1 or 3 channels, got {channels}")
    interpolation = _INTERPOLATION[pre.interpolation]
    scale = crop_scale_for(size) if crop_scale is None else crop_scale
    check_range("crop_scale", scale, 0.0, 1.0, low_open=True)

    if train:
        steps: list = [
            v2.RandomResizedCrop(size, scale=(float(scale), 1.0), interpolation=interpolation, antialias=True),
            v2.RandomHorizontalFlip(),
        ]
        if augment == "autoaugment":
            steps.append(v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET, interpolation=interpolation))
        elif augment == "randaugment":
            steps.append(v2.RandAugment(num_ops=2, magnitude=9, interpolation=interpolation))
    else:
        steps = [
            v2.Resize(eval_resize_size(size, pre.crop_fraction), interpolation=interpolation, antialias=True),
            v2.CenterCrop(size),
        ]
    if channels == 1:
        steps.append(v2.Grayscale(num_output_channels=1))
    steps += [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(pre.mean), std=list(pre.std)),
        v2.ToPureTensor(),
    ]
    return v2.Compose(steps)
