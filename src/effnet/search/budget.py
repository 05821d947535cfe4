"""The training budget every trial of a study gets, as one value.

A study (its :class:`~effnet.search.study.StudyConfig`), the evaluators that train its trials
(:mod:`effnet.search.training`) and the architecture search
(:class:`~effnet.archsearch.search.ArchSearchSettings`) all hold one :class:`Budget` rather than
restating epochs, batch size, step cap, recipe, rate and augmentation.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

from ..checks import check_choice, check_float, check_int, optional
from ..errors import EffnetError
from ..train.recipe import steps_per_epoch
from .recipes import DEFAULT_RECIPE, check_recipe, quick_train_options

#: augmentation policies a trial may train with (the names of effnet.data.AUGMENTATIONS)
AUGMENT_CHOICES = ("none", "autoaugment", "randaugment")

#: the keys a study's stored settings use for the budget (kept flat, so older studies still resume)
SETTING_KEYS = {"epochs": "budget_epochs", "batch_size": "batch_size", "max_steps": "max_steps",
                "recipe": "recipe", "lr": "lr", "augment": "augment", "steps": "budget_steps"}
#: keys recorded only when set (studies made before them did not store them)
OPTIONAL_KEYS = ("steps",)


@dataclass(frozen=True)
class Budget:
    """How long every trial trains and how: ``steps`` optimiser steps (the learning-rate schedule
    spans exactly them), or else ``epochs`` passes over the training split (``max_steps`` caps the
    steps within them); the batch size, the training recipe of
    :data:`effnet.search.recipes.PROXY_RECIPES`, an explicit peak learning rate (``None``: the
    recipe's) and the augmentation policy.

    A budget in steps means the same amount of training on any data set size, which is what a
    study's budget ladder (:mod:`effnet.search.kinds.budget`) doubles. A candidate may train on a
    fraction of it (the positive control's quarter budget): :meth:`total_steps`.
    """

    epochs: int = 2
    batch_size: int = 32
    max_steps: int | None = None
    recipe: str = DEFAULT_RECIPE
    lr: float | None = None
    augment: str = "none"
    steps: int | None = None

    def check(self) -> "Budget":
        check_int("training budget (epochs)", self.epochs, 1)
        optional(check_int, "training budget (steps)", self.steps, 1)
        if self.steps is not None and self.max_steps is not None:
            raise EffnetError("give the budget in steps or cap the epochs with max steps, not both")
        check_int("batch size", self.batch_size, 1)
        optional(check_int, "max steps", self.max_steps, 1)
        check_recipe(self.recipe)
        optional(check_float, "learning rate", self.lr, 0.0, strict=True)
        check_choice("augment", self.augment, AUGMENT_CHOICES)
        return self

    def scaled(self, factor: int) -> "Budget":
        """This budget ``factor`` times longer (in its own unit: steps, or epochs)."""
        return replace(self, steps=self.steps * factor) if self.steps is not None else replace(
            self, epochs=self.epochs * factor)

    def amount(self) -> tuple[int, str]:
        """How long, in the budget's own unit: ``(400, "steps")`` or ``(2, "epochs")``."""
        return (self.steps, "steps") if self.steps is not None else (self.epochs, "epochs")

    def total_steps(self, train_images: int, fraction: float = 1.0) -> int | None:
        """The optimiser steps a trial on ``train_images`` images gets at ``fraction`` of the budget
        (``None``: every step of the epochs, uncapped)."""
        spe = max(1, steps_per_epoch(train_images, self.batch_size))
        full = self.steps if self.steps is not None else (
            min(self.max_steps, self.epochs * spe) if self.max_steps is not None else self.epochs * spe)
        if fraction == 1.0:
            return full if (self.steps is not None or self.max_steps is not None) else None
        return max(1, round(full * fraction))

    def train_options(self, train_images: int | None = None, fraction: float = 1.0) -> dict[str, Any]:
        """The keyword arguments of :func:`effnet.train.quick_train` this budget fixes for a training
        split of ``train_images`` images (needed for a budget in steps, or a fraction of one)."""
        epochs, max_steps = self.epochs, self.max_steps
        if self.steps is not None or fraction != 1.0:
            if train_images is None:
                raise EffnetError("a budget in steps, or a fraction of a budget, needs the training split's size")
            max_steps = self.total_steps(train_images, fraction)
            epochs = math.ceil(max_steps / max(1, steps_per_epoch(train_images, self.batch_size)))
        return dict(epochs=epochs, batch_size=self.batch_size, max_steps=max_steps,
                    **quick_train_options(self.recipe, self.lr))

    def label(self) -> str:
        if self.steps is not None:
            return (f"{self.steps} steps of batch {self.batch_size} ({self.steps * self.batch_size:,} images seen), "
                    f"{self.recipe} recipe")
        cap = f" (at most {self.max_steps} steps)" if self.max_steps else ""
        return f"{self.epochs} epoch(s){cap}, {self.recipe} recipe, batch {self.batch_size}"

    def settings(self) -> dict[str, Any]:
        """The budget under the keys a study stores it with (a key of :data:`OPTIONAL_KEYS` only when set)."""
        return {SETTING_KEYS[k]: v for k, v in asdict(self).items() if k not in OPTIONAL_KEYS or v is not None}

    @classmethod
    def from_settings(cls, data: Mapping[str, Any]) -> "Budget":
        """The budget back from :meth:`settings` (other keys are ignored)."""
        inverse = {v: k for k, v in SETTING_KEYS.items()}
        return cls(**{inverse[k]: v for k, v in data.items() if k in inverse})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Budget":
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise EffnetError(f"unknown budget setting(s): {', '.join(unknown)}")
        return cls(**dict(data))
