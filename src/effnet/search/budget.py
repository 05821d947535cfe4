"""The training budget every trial of a study gets, as one value.

A study (its :class:`~effnet.search.study.StudyConfig`), the evaluators that train its trials
(:mod:`effnet.search.training`) and the architecture search
(:class:`~effnet.archsearch.search.ArchSearchSettings`) all hold one :class:`Budget` rather than
restating epochs, batch size, step cap, recipe, rate and augmentation.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ..checks import check_choice, check_float, check_int, optional
from ..errors import EffnetError
from .recipes import DEFAULT_RECIPE, check_recipe, quick_train_options

#: augmentation policies a trial may train with (the names of effnet.data.AUGMENTATIONS)
AUGMENT_CHOICES = ("none", "autoaugment", "randaugment")

#: the keys a study's stored settings use for the budget (kept flat, so older studies still resume)
SETTING_KEYS = {"epochs": "budget_epochs", "batch_size": "batch_size", "max_steps": "max_steps",
                "recipe": "recipe", "lr": "lr", "augment": "augment"}


@dataclass(frozen=True)
class Budget:
    """Epochs per trial (``max_steps`` caps the optimiser steps within them), the batch size, the
    training recipe of :data:`effnet.search.recipes.PROXY_RECIPES`, an explicit peak learning rate
    (``None``: the recipe's) and the augmentation policy."""

    epochs: int = 2
    batch_size: int = 32
    max_steps: int | None = None
    recipe: str = DEFAULT_RECIPE
    lr: float | None = None
    augment: str = "none"

    def check(self) -> "Budget":
        check_int("training budget (epochs)", self.epochs, 1)
        check_int("batch size", self.batch_size, 1)
        optional(check_int, "max steps", self.max_steps, 1)
        check_recipe(self.recipe)
        optional(check_float, "learning rate", self.lr, 0.0, strict=True)
        check_choice("augment", self.augment, AUGMENT_CHOICES)
        return self

    def train_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`effnet.train.quick_train` this budget fixes."""
        return dict(epochs=self.epochs, batch_size=self.batch_size, max_steps=self.max_steps,
                    **quick_train_options(self.recipe, self.lr))

    def label(self) -> str:
        cap = f" (at most {self.max_steps} steps)" if self.max_steps else ""
        return f"{self.epochs} epoch(s){cap}, {self.recipe} recipe, batch {self.batch_size}"

    def settings(self) -> dict[str, Any]:
        """The budget under the keys a study stores it with."""
        return {SETTING_KEYS[k]: v for k, v in asdict(self).items()}

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
