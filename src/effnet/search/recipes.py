"""Training recipes for scoring candidates in searches and studies, in one place.

A search or study trains every candidate for a few epochs from scratch and ranks them by
validation accuracy, so the recipe has to learn in a few hundred steps.

* ``paper`` forces the paper's values (``TrainConfig(recipe="paper")``; ``quick_train`` would
  otherwise size them to the short run): RMSProp, BatchNorm momentum 0.01,
  EMA of the weights, label smoothing 0.1, stochastic depth. With a BatchNorm momentum of 0.01 the
  running statistics are still near their initial values after a few dozen steps, so a short run
  evaluates (in eval mode) with statistics that do not fit the weights; on ELPV every candidate of
  the grid search and the scaling study scored chance under it.
* ``auto`` lets ``effnet.train.recipe`` decide from the run's length, as ``effnet train`` does.
* ``short`` (the default) is for such proxies, fixed so that a study's recipe does not move with
  the run-length rules of ``effnet.train.recipe``: BatchNorm momentum 0.1, AdamW at 2e-3 with a cosine
  schedule, no EMA, no label smoothing, no stochastic depth, and a classifier that starts at zero.

:func:`quick_train_options` turns a recipe into ``quick_train`` keyword overrides (``TrainConfig``
keys; ``quick_train`` builds the model with them, so BatchNorm momentum and stochastic depth reach
it); :func:`headless` gives the description ``quick_train`` should build so that the classifier
is a new, zero-initialised one (``EfficientNet.reset_classifier``).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..arch import Network
from ..errors import EffnetError
from ..train.recipe import SHORT_FIXED

#: recipe name -> ``zero_head`` (start the classifier at zero) and ``train`` (``TrainConfig`` overrides)
PROXY_RECIPES: Mapping[str, Mapping[str, Any]] = {
    "auto": {"zero_head": False, "train": {}},
    "short": {"zero_head": True, "train": dict(SHORT_FIXED)},
    "paper": {"zero_head": False, "train": {"recipe": "paper"}},
}
DEFAULT_RECIPE = "short"


def check_recipe(name: Any) -> str:
    """``name`` if it is a known recipe, else a one-line error listing the recipes."""
    if name not in PROXY_RECIPES:
        raise EffnetError(f"unknown training recipe {name!r}; choose one of {', '.join(PROXY_RECIPES)}")
    return name


def quick_train_options(name: str, lr: float | None = None) -> dict[str, Any]:
    """``quick_train`` overrides for recipe ``name``; an explicit ``lr`` replaces the recipe's."""
    options = dict(PROXY_RECIPES[check_recipe(name)]["train"])
    if lr is not None:
        options["lr"] = lr
    return options


def headless(desc: Network, name: str) -> Network:
    """The description to build for recipe ``name``.

    For a recipe with a zero head this is ``desc`` without classes: ``quick_train`` (and
    ``create_model``) then add a new classifier for the data's classes, and a new classifier starts
    at zero. Parameter and FLOPs counts of the trained model are those of ``desc`` with the data's
    classes.
    """
    return desc.replace(num_classes=0) if PROXY_RECIPES[check_recipe(name)]["zero_head"] else desc
