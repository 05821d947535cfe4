"""The default trainer of searches and studies: one short training run per trial, same recipe for all.

Every trial of a study trains with the same data split (split seed 0; with ``split_seeds`` the
training seed draws the split too, shared by every candidate of that seed), the same recipe (one of
:data:`effnet.search.recipes.PROXY_RECIPES` applied to ``TrainConfig.for_model`` by
:func:`effnet.train.quick_train`), the same epoch budget and batch size; only the architecture,
the input resolution and the training seed change. The score is top-1 accuracy on the validation
split with the final weights; the class predicted for every validation and test image is returned
too (``quick_train(..., predictions=True)``) so that studies compare candidates image by image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import train  # train.quick_train is looked up per call: tests and tools may replace it
from ..arch import Network
from ..checks import check_int
from ..data import load_splits
from ..errors import EffnetError
from .recipes import DEFAULT_RECIPE, check_recipe, headless, quick_train_options

AUGMENT_CHOICES = ("none", "autoaugment", "randaugment")


@dataclass
class QuickTrainer:
    """Trains a description on ``data`` for ``epochs`` epochs; data splits are cached per resolution.

    With ``per_epoch=True`` it evaluates after every epoch and hands each value to the trial's
    reporter (so a pruner can stop the trial); otherwise it calls ``quick_train`` once.
    """

    data: str
    epochs: int
    batch_size: int = 32
    lr: float | None = None
    limit_per_class: int | None = None
    task: str = "default"
    augment: str = "none"
    max_steps: int | None = None
    per_epoch: bool = False
    recipe: str = DEFAULT_RECIPE
    split_seeds: bool = False
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise EffnetError(f"the training budget must be at least 1 epoch, got {self.epochs!r}")
        check_int("batch size", self.batch_size, 1)
        if self.augment not in AUGMENT_CHOICES:
            raise EffnetError(f"augment must be one of {', '.join(AUGMENT_CHOICES)}, got {self.augment!r}")
        check_recipe(self.recipe)

    def splits(self, img_size: int, seed: int = 0):
        split_seed = seed if self.split_seeds else 0
        if (img_size, split_seed) not in self._cache:
            if len(self._cache) >= 4:  # a study visits a few resolutions; keep memory bounded
                self._cache.pop(next(iter(self._cache)))
            self._cache[img_size, split_seed] = load_splits(
                self.data, img_size=img_size, task=self.task, augment=self.augment, seed=split_seed,
                limit_per_class=self.limit_per_class, preprocessing=self.preprocessing(img_size))
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

    def __call__(self, desc: Network, img_size: int, seed: int, reporter: Any) -> dict[str, Any]:
        splits = self.splits(img_size, seed)
        desc = headless(desc.replace(num_classes=splits.num_classes), self.recipe)
        # with per_epoch, the validation accuracy of every epoch goes to the trial's reporter (a pruner may stop it)
        out = train.quick_train(desc, splits, img_size=img_size, epochs=self.epochs, batch_size=self.batch_size,
                          seed=seed, progress=self.progress_label(desc, seed), max_steps=self.max_steps,
                          on_epoch=reporter.report if self.per_epoch else None, predictions=True,
                          **quick_train_options(self.recipe, self.lr))
        return trial_result(out)


def trial_result(out: dict[str, Any]) -> dict[str, Any]:
    """What a study keeps of a ``quick_train`` result: accuracies, time, steps, per-image predictions."""
    keep = ("val_pred", "val_target", "test_pred", "test_target")
    return {"val_acc": float(out["val_acc"]), "train_time_s": float(out["train_time_s"]), "steps": int(out["steps"]),
            **({"test_acc": float(out["test_acc"])} if "test_acc" in out else {}),
            **{k: out[k] for k in keep if k in out}}
