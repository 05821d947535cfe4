"""Small shared pieces for the training tests: a tiny network and in-memory data."""
from __future__ import annotations

from types import SimpleNamespace

import torch
from torch.utils.data import Dataset

TINY_JSON = {
    "name": "tiny", "stem": {"out_channels": 8},
    "stages": [
        {"op": "mbconv", "expand_ratio": 1, "kernel": 3, "stride": 1, "out_channels": 8, "repeats": 2, "se_ratio": 0.25},
        {"op": "mbconv", "expand_ratio": 4, "kernel": 3, "stride": 2, "out_channels": 16, "repeats": 2, "se_ratio": 0.25},
    ],
    "head_channels": 32, "resolution": 32, "dropout": 0.2,
}


class TensorImages(Dataset):
    """Random images whose class is visible in the mean of one channel; has ``targets``."""

    def __init__(self, n: int, classes: int = 3, size: int = 32, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.targets = [i % classes for i in range(n)]
        self.x = torch.randn(n, 3, size, size, generator=g) * 0.5
        for i, y in enumerate(self.targets):
            self.x[i, y % 3] += 1.0

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        # a random flip drawn from the global RNG, as torchvision's augmentations draw theirs
        x = self.x[i].flip(-1) if torch.rand(()) < 0.5 else self.x[i]
        return x, self.targets[i]


def tensor_dataset(n: int, classes: int = 3, size: int = 32, seed: int = 0) -> TensorImages:
    return TensorImages(n, classes, size, seed)


def tensor_splits(n_train: int = 24, n_eval: int = 12, classes: int = 3, size: int = 32):
    return SimpleNamespace(train=tensor_dataset(n_train, classes, size, 0), val=tensor_dataset(n_eval, classes, size, 1),
                           test=tensor_dataset(n_eval, classes, size, 2),
                           class_names=[f"c{i}" for i in range(classes)], num_classes=classes, source="tensors")


def one_torch_thread():
    """Generator for an autouse fixture: one torch thread per test process (the suite runs two
    processes on two cores), restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
