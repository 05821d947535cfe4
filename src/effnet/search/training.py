"""The evaluators of studies and searches: one short training run per trial, same recipe for all.

An evaluator (the :class:`Evaluator` protocol) trains one description at one resolution with one
seed and returns what a study keeps of the run (:func:`trial_result`). :class:`QuickTrainer` is
the one implementation: every trial trains with the same data split (the :class:`DataSpec`'s split
seed; with ``split_seeds`` the training seed draws the split too, shared by every candidate of that
seed), the same :class:`~effnet.search.budget.Budget` (one of
:data:`effnet.search.recipes.PROXY_RECIPES` applied to ``TrainConfig.for_model`` by
:func:`effnet.train.quick_train`); only the architecture, the input resolution and the training
seed change. The score is top-1 accuracy on the validation split with the final weights; the class
predicted for every validation and test image is returned too (``quick_train(...,
predictions=True)``) so that studies compare candidates image by image. The transfer study's
trainer (:class:`effnet.search.kinds.transfer.TransferTrainer`) is a ``QuickTrainer`` that may
start from ImageNet weights, and the architecture search scores a description by
:class:`SeedMean` over a ``QuickTrainer``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol

import numpy as np
import torch

from .. import train  # train.quick_train is looked up per call: tests and tools may replace it
from ..arch import Network
from ..checks import check_int
from ..data import DataSpec, load_data
from .budget import Budget
from .recipes import headless


class Evaluator(Protocol):
    """Trains a description; what every study's scorer and the architecture search call."""

    show_progress: bool

    def load(self, img_size: int) -> "Evaluator":
        """Read the data once (fails early on a bad source)."""

    @property
    def num_classes(self) -> int | None:
        """The data's number of classes once loaded."""

    def __call__(self, desc: Network, img_size: int, seed: int, reporter: Any = None, **extra: Any
                 ) -> dict[str, Any]:
        """One run: ``val_acc``, ``train_time_s``, ``steps``, and per image ``val_pred``/``val_target``
        (and ``test_...`` where the data has a test split). ``extra`` carries what a candidate asks
        for beyond its network: ``budget_fraction`` and ``seed_offset`` (the controls),
        ``pretrained`` (the transfer study)."""


class NoImages(torch.utils.data.Dataset):
    """An empty split (``quick_train`` scores a test split only when it has images)."""

    targets: tuple[int, ...] = ()

    def __len__(self) -> int:
        return 0

    def __getitem__(self, index: int):
        raise IndexError(index)


@dataclass
class QuickTrainer:
    """Trains a description on ``data`` within ``budget``; data splits are cached per resolution.

    With ``per_epoch=True`` it evaluates after every epoch and hands each value to the trial's
    reporter (so a pruner can stop the trial); otherwise it calls ``quick_train`` once. Without
    ``score_test`` the test images are left out (a search that never reports them need not pay
    for them).
    """

    data: DataSpec
    budget: Budget = field(default_factory=Budget)
    per_epoch: bool = False
    split_seeds: bool = False
    score_test: bool = True
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.data, str):
            self.data = DataSpec(self.data)
        self.data.check()
        self.budget.check()

    def splits(self, img_size: int, seed: int = 0):
        split_seed = seed if self.split_seeds else self.data.seed
        if (img_size, split_seed) not in self._cache:
            if len(self._cache) >= 4:  # a study visits a few resolutions; keep memory bounded
                self._cache.pop(next(iter(self._cache)))
            splits = load_data(self.data, img_size=img_size, augment=self.budget.augment, seed=split_seed,
                               preprocessing=self.preprocessing(img_size))
            self._cache[img_size, split_seed] = splits if self.score_test else replace(splits, test=NoImages())
        return self._cache[img_size, split_seed]

    def preprocessing(self, img_size: int):
        """The input normalisation of the data (``None``: the data loader's default)."""
        return None

    def load(self, img_size: int) -> "QuickTrainer":
        """Read the data once (fails early on a bad source) and learn the number of classes."""
        self.splits(img_size)
        return self

    @property
    def num_classes(self) -> int | None:
        for s in self._cache.values():
            return s.num_classes
        return None

    #: show each trial's steps on a terminal (``--quiet`` turns it off)
    show_progress: bool = True

    def progress_label(self, desc: Network, seed: int) -> str | bool:
        return f"{desc.name} seed {seed}: " if self.show_progress else False

    def __call__(self, desc: Network, img_size: int, seed: int, reporter: Any = None, *,
                 budget_fraction: float = 1.0, seed_offset: int = 0) -> dict[str, Any]:
        """One run with paired seed ``seed`` (the split's seed with ``split_seeds``); a control may
        train on ``budget_fraction`` of the budget, or with training seed ``seed + seed_offset``
        (another initialisation and data order on the same images)."""
        splits = self.splits(img_size, seed)
        desc = headless(desc.replace(num_classes=splits.num_classes), self.budget.recipe)
        # with per_epoch, the validation accuracy of every epoch goes to the trial's reporter (a pruner may stop it)
        out = train.quick_train(desc, splits, img_size=img_size, seed=seed + seed_offset,
                                progress=self.progress_label(desc, seed),
                                on_epoch=reporter.report if self.per_epoch and reporter is not None else None,
                                predictions=True, **self.budget.train_options(len(splits.train), budget_fraction))
        return trial_result(out)


def trial_result(out: Mapping[str, Any]) -> dict[str, Any]:
    """What a study keeps of a ``quick_train`` result: accuracies, time, steps, per-image predictions."""
    keep = ("val_pred", "val_target", "test_pred", "test_target")
    return {"val_acc": float(out["val_acc"]), "train_time_s": float(out["train_time_s"]), "steps": int(out["steps"]),
            **({"test_acc": float(out["test_acc"])} if "test_acc" in out else {}),
            **({"train_loss": float(out["train_loss"])} if "train_loss" in out else {}),
            **{k: out[k] for k in keep if k in out}}


class SeedMean:
    """Scores a description by an evaluator's runs with seeds ``seed .. seed + seeds - 1`` at
    ``img_size`` (the same seeds for every description, so scores are compared on matched runs):
    the mean validation accuracy, and per run which validation (and test) images it got right."""

    def __init__(self, evaluator: Evaluator, *, img_size: int, seed: int = 0, seeds: int = 1) -> None:
        self.evaluator = evaluator
        self.img_size = check_int("image size", img_size, 1)
        self.seed = check_int("seed", seed, 0)
        self.seeds = check_int("number of seeds", seeds, 1)

    @property
    def num_classes(self) -> int | None:
        return self.evaluator.num_classes

    def __call__(self, desc: Network) -> dict[str, Any]:
        runs = [self.evaluator(desc, self.img_size, self.seed + k) for k in range(self.seeds)]
        accs = [float(r["val_acc"]) for r in runs]
        if not all(math.isfinite(a) for a in accs):
            raise RuntimeError("training diverged (validation accuracy is not finite)")
        out: dict[str, Any] = {"accuracy": sum(accs) / len(accs),
                               "train_time_s": sum(float(r["train_time_s"]) for r in runs),
                               "steps": sum(int(r["steps"]) for r in runs)}
        if "train_loss" in runs[-1]:
            out["train_loss"] = runs[-1]["train_loss"]
        for split in ("val", "test"):
            if all(f"{split}_pred" in r for r in runs):
                out[f"{split}_correct"] = [np.asarray(r[f"{split}_pred"]) == np.asarray(r[f"{split}_target"])
                                           for r in runs]
        if self.seeds > 1:
            out["accuracy_per_seed"] = " ".join(f"{a:.4f}" for a in accs)
        return out
