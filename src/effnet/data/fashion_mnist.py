"""Fashion-MNIST (Xiao et al. 2017): 70,000 grayscale 28x28 images of clothing, 10 classes.

The images come from the Debian package ``dataset-fashion-mnist`` (the original idx ``.gz`` files in
``/usr/share/datasets/fashion-mnist``; ``make`` installs it with ``scripts/ensure_fashion_mnist.sh``),
so nothing is downloaded at run time. The files are read once per process into numpy arrays and
resized as whole tensors, so loading takes well under a second and no per-image files exist.

Splits: the official 60,000 training images give train and validation (validation is carved from
them per class, seeded, like every other source), and the official 10,000 test images are the test
split, always whole. ``limit_per_class`` caps the training pool per class (a seeded choice) before
validation is carved from it.
"""
from __future__ import annotations

import gzip
import os
import random
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..checks import check_int, optional
from ..weights.meta import Preprocessing
from .datasets import Splits
from .spec import VAL_FRACTION, split_sizes

__all__ = ["FASHION_MNIST_CLASSES", "ArrayDataset", "fashion_mnist_arrays", "fashion_mnist_root",
           "fashion_mnist_splits"]

FASHION_MNIST_CLASSES = ("t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                         "bag", "ankle_boot")
DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
INSTALL_HINT = "install it with: sudo apt-get install dataset-fashion-mnist (or run make)"


def fashion_mnist_root() -> Path:
    """The folder with the four idx files (``$EFFNET_FASHION_MNIST`` overrides the Debian location)."""
    root = Path(os.environ.get("EFFNET_FASHION_MNIST") or DEFAULT_ROOT)
    missing = [f for pair in _FILES.values() for f in pair if not (root / f).is_file()]
    if missing:
        raise OSError(f"the Fashion-MNIST files are missing from {root} ({missing[0]}); {INSTALL_HINT}")
    return root


def _read_idx(path: Path, dims: int) -> np.ndarray:
    """One idx file (big-endian header: magic 0x0000 08 <dims>, then one 32-bit size per dimension)."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise OSError(f"cannot read {path}: {exc}") from None
    if len(data) < 4 + 4 * dims or data[:3] != b"\x00\x00\x08" or data[3] != dims:
        raise OSError(f"{path} is not an idx file of unsigned bytes with {dims} dimension(s)")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise OSError(f"{path} holds {body.size} bytes, its header promises {int(np.prod(shape))}")
    return body.reshape(shape)


@lru_cache(maxsize=2)
def fashion_mnist_arrays(root: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (images N x 28 x 28 uint8, labels N uint8), "test": (...)}`` from the idx files in
    ``root``, read once per process (the arrays are read-only)."""
    folder = Path(root)
    out = {}
    for split, (images, labels) in _FILES.items():
        x, y = _read_idx(folder / images, 3), _read_idx(folder / labels, 1)
        if len(x) != len(y) or (y.size and int(y.max()) >= len(FASHION_MNIST_CLASSES)):
            raise OSError(f"{folder}: {split} images and labels do not match")
        x.setflags(write=False)
        y.setflags(write=False)
        out[split] = (x, y)
    return out


class ArrayDataset(Dataset):
    """Images held in one uint8 tensor ``N x C x H x W`` (already at their final size) with labels.

    Yields ``(normalised float tensor, label)``; ``train=True`` applies ``augment`` (a torchvision
    transform on uint8 tensors, or ``None``) first.
    """

    def __init__(self, images: torch.Tensor, labels: np.ndarray, classes: list[str], mean, std,
                 augment=None) -> None:
        self.images = images
        self.labels = [int(v) for v in labels]
        self.classes = list(classes)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.augment = augment

    @property
    def targets(self) -> list[int]:
        return self.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        img = self.images[index]
        if self.augment is not None:
            img = self.augment(img)
        x = img.float().div_(255.0)
        if self.mean.shape[0] == 3 and x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        return (x - self.mean) / self.std, self.labels[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} images, {len(self.classes)} classes)"


def _resize(images: np.ndarray, size: int) -> torch.Tensor:
    """``N x 28 x 28`` uint8 -> ``N x 1 x size x size`` uint8 (bilinear with antialiasing), in chunks."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1)  # a copy: the cached arrays are read-only
    if size == x.shape[-1]:
        return x.clone()
    out = torch.empty((x.shape[0], 1, size, size), dtype=torch.uint8)
    for start in range(0, x.shape[0], 4096):
        chunk = x[start:start + 4096].float()
        r = torch.nn.functional.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True,
                                            align_corners=False)
        out[start:start + 4096] = r.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _augmentation(name: str):
    from torchvision.transforms import v2

    if name == "none":
        return None
    steps = [v2.RandomHorizontalFlip()]
    if name == "autoaugment":
        steps.append(v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET))
    elif name == "randaugment":
        steps.append(v2.RandAugment(num_ops=2, magnitude=9))
    elif name != "flip":
        raise ValueError(f"augment must be one of none, flip, autoaugment, randaugment, got {name!r}")
    return v2.Compose(steps)


def fashion_mnist_splits(*, img_size: int = 28, seed: int = 0, val_fraction: float = VAL_FRACTION,
                         limit_per_class: int | None = None, augment: str = "none",
                         preprocessing: Preprocessing | None = None, root: str | None = None) -> Splits:
    """Train/val from the official training set (stratified, seeded), test = the official test set.

    Validation is carved first, ``val_fraction`` of each class of all 60,000 images (900 per class
    at 0.15: 9,000 images), and ``limit_per_class`` then keeps that many of the remaining images
    per class for training (seeded), so a small training set still has a validation set large
    enough to tell networks apart; the test split is always the whole official test set. ``img_size`` is any size (the
    28 px originals are resized once, bilinear with antialiasing). With ImageNet-style 3-channel
    preprocessing the gray channel is repeated; a one-element mean gives 1-channel tensors.
    """
    check_int("img_size", img_size, 1)
    optional(check_int, "limit_per_class", limit_per_class, 1)
    pre = preprocessing if preprocessing is not None else Preprocessing(resolution=img_size)
    arrays = fashion_mnist_arrays(str(root) if root else str(fashion_mnist_root()))
    x_train, y_train = arrays["train"]
    x_test, y_test = arrays["test"]
    train_idx, val_idx = [], []
    for k, name in enumerate(FASHION_MNIST_CLASSES):
        order = np.flatnonzero(y_train == k).tolist()
        random.Random(f"{seed}/fashion-mnist/{name}").shuffle(order)
        n_val, _ = split_sizes(len(order), val_fraction, 0.0)
        val_idx += order[:n_val]
        train_idx += order[n_val:] if limit_per_class is None else order[n_val:n_val + limit_per_class]
    train_idx, val_idx = sorted(train_idx), sorted(val_idx)
    classes = list(FASHION_MNIST_CLASSES)
    mean, std = pre.mean, pre.std

    def make(x, y, idx, aug=None) -> ArrayDataset:
        images = x if idx is None else x[np.asarray(idx, dtype=np.int64)]
        labels = y if idx is None else y[np.asarray(idx, dtype=np.int64)]
        return ArrayDataset(_resize(images, img_size), labels, classes, mean, std, aug)

    cap = f", at most {limit_per_class} training images per class" if limit_per_class else ""
    cap += f", validation {len(val_idx)} images carved from the official training set"
    return Splits(train=make(x_train, y_train, train_idx, _augmentation(augment)), val=make(x_train, y_train, val_idx),
                  test=make(x_test, y_test, None), class_names=classes, skipped=[],
                  source=f"fashion-mnist (official train/test{cap}; validation seed {seed})")
