"""Data order and augmentation randomness that resume exactly and do not depend on workers.

* The order of epoch ``e`` is ``DistributedSampler``'s permutation for ``(seed, e)``, sharded
  across processes (one process is the one-shard case); a resumed epoch starts at the batch where
  the checkpoint was taken.
* Each sample's augmentation draws from generators seeded by ``(seed, epoch, index)``, so the
  same image gets the same crop whichever worker loads it, after a resume, and with any number
  of processes.
"""
from __future__ import annotations

import itertools
import random
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 1_000_033 + index) % (2**63 - 1)


class SeededDataset(Dataset):
    """Wraps a dataset so that item ``i`` of epoch ``e`` draws its random numbers from seeds
    derived from ``(seed, e, i)``; the caller's RNG states are left untouched."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        s = sample_seed(self.seed, self.epoch, index)
        py_state = random.getstate()
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only, the one fork_rng saves and restores: torch.manual_seed would
            # also reseed every accelerator's generator (unrestored), at 65 us a sample on CPU
            torch.default_generator.manual_seed(s)
            random.seed(s)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)


class ResumableSampler(Sampler[int]):
    """``DistributedSampler`` for one rank, able to start an epoch part-way through."""

    def __init__(self, dataset: Dataset, *, num_replicas: int, rank: int, seed: int, shuffle: bool = True) -> None:
        self.inner = DistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                                        seed=seed, drop_last=False)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Epoch ``epoch``'s order, skipping its first ``start`` samples (of this rank)."""
        self.inner.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.inner), self.start, None)

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.start)

    @property
    def samples_per_rank(self) -> int:
        return len(self.inner)


def _seed_worker(worker_id: int) -> None:
    # each sample reseeds itself (SeededDataset); this only fixes anything else a worker draws
    s = torch.initial_seed() % 2**32
    random.seed(s)
    try:
        import numpy as np

        np.random.seed(s)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass


def loader_generator(seed: int) -> torch.Generator:
    """A private generator for a ``DataLoader``: creating an iterator then draws its base seed from
    here instead of from (and advancing) the global RNG that dropout and stochastic depth use."""
    return torch.Generator().manual_seed(seed)


def eval_loader(dataset: Dataset, batch_size: int, *, workers: int = 0, pin_memory: bool = False) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=pin_memory, generator=loader_generator(0),
                      worker_init_fn=_seed_worker if workers else None)


def train_loader(dataset: SeededDataset, sampler: ResumableSampler, batch_size: int, *, seed: int, epoch: int,
                 workers: int = 0, pin_memory: bool = False) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
                      pin_memory=pin_memory, generator=loader_generator(sample_seed(seed, epoch, 0)),
                      worker_init_fn=_seed_worker if workers else None)
