"""Synthetic images for tests and demos: deterministic, generated on the fly, and easy to learn.

Class ``k`` of ``K`` is a sinusoidal stripe pattern tinted with hue ``k / K`` and oriented at
``180 * k / K`` degrees; each sample draws its own stripe phase, brightness and pixel noise from a
generator seeded by ``(seed, split, index)``. Colour alone separates the classes, so a tiny model
beats chance within a few optimisation steps, while orientation gives a convolutional model a
spatial cue too.
"""
from __future__ import annotations

import colorsys
import math

import torch
from torch.utils.data import Dataset

from ..checks import check_int
from ..weights.meta import Preprocessing
from .datasets import Splits

__all__ = ["SyntheticDataset", "synthetic_splits"]

_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


class SyntheticDataset(Dataset):
    """``per_class * num_classes`` generated images; sample ``i`` has label ``i % num_classes``."""

    def __init__(self, num_classes: int, per_class: int, img_size: int, seed: int, split: str,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.num_classes = num_classes
        self.per_class = per_class
        self.img_size = img_size
        self.seed = seed
        self.split = split
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.classes = [f"class_{k}" for k in range(num_classes)]

    @property
    def targets(self) -> list[int]:
        return [i % self.num_classes for i in range(len(self))]

    def __len__(self) -> int:
        return self.num_classes * self.per_class

    def image(self, index: int) -> torch.Tensor:
        """The un-normalised RGB image of sample ``index``, values in [0, 1], ``3 x H x W``."""
        k = index % self.num_classes
        gen = torch.Generator().manual_seed(((self.seed * 3 + _SPLIT_IDS[self.split]) * 1_000_003 + index) % 2**63)
        phase, brightness = torch.rand(2, generator=gen).tolist()
        angle = math.pi * k / self.num_classes
        coords = torch.linspace(0.0, 1.0, self.img_size)
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        stripes = torch.sin(2 * math.pi * (3.0 * (xx * math.cos(angle) + yy * math.sin(angle)) + phase))
        intensity = 0.55 + 0.3 * stripes + 0.15 * (brightness - 0.5)
        colour = torch.tensor(colorsys.hsv_to_rgb(k / self.num_classes, 0.8, 1.0)).view(3, 1, 1)
        noise = 0.05 * torch.randn(3, self.img_size, self.img_size, generator=gen)
        return (colour * intensity + noise).clamp(0.0, 1.0)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        img = self.image(index)
        if self.mean.shape[0] == 1:
            img = img.mean(dim=0, keepdim=True)
        return (img - self.mean) / self.std, index % self.num_classes

    def __repr__(self) -> str:
        return f"SyntheticDataset({self.split}, {len(self)} images, {self.num_classes} classes, {self.img_size}px)"


def synthetic_splits(num_classes: int = 3, per_class: int = 8, img_size: int = 32, seed: int = 0, *,
                     eval_per_class: int | None = None, preprocessing: Preprocessing | None = None) -> Splits:
    """Train/val/test splits of synthetic images, identical for identical arguments.

    ``per_class`` training images per class; validation and test each get ``eval_per_class``
    (default ``max(1, per_class // 2)``). Tensors are normalised with ``preprocessing``'s mean and
    std (ImageNet's by default; a one-element mean gives grayscale tensors).
    """
    for name, value, low in (("num_classes", num_classes, 2), ("per_class", per_class, 1), ("img_size", img_size, 1)):
        check_int(f"synthetic {name}", value, low)
    n_eval = check_int("synthetic eval_per_class", max(1, per_class // 2) if eval_per_class is None else eval_per_class, 1)
    pre = preprocessing if preprocessing is not None else Preprocessing()
    if len(pre.mean) not in (1, 3):
        raise ValueError(f"preprocessing mean/std must have 1 or 3 channels, got {len(pre.mean)}")

    def make(split: str, n: int) -> SyntheticDataset:
        return SyntheticDataset(num_classes, n, img_size, seed, split, pre.mean, pre.std)

    return Splits(train=make("train", per_class), val=make("val", n_eval), test=make("test", n_eval),
                  class_names=[f"class_{k}" for k in range(num_classes)], skipped=[],
                  source=f"synthetic ({num_classes} classes, seed {seed})")
