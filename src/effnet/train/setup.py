"""Setting a run up: its model, its data and the recipe decided for both."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..data import make_transforms
from ..data import load_data as load_spec
from ..factory import create_model, resolve_description
from ..weights.meta import Preprocessing
from .config import TrainConfig
from .recipe import Recipe, decide, input_statistics, steps_per_epoch


def build_model(cfg: TrainConfig, num_classes: int | None = None) -> nn.Module:
    """The config's model (with its pretrained weights), a head for ``num_classes``, frozen stages.

    Undecided recipe keys (``None``) leave the model's defaults (BatchNorm momentum 0.01,
    stochastic depth 0.2) in place; :func:`prepare` decides them first.
    """
    model = create_model(cfg.model, num_classes=num_classes, in_chans=cfg.in_chans, pretrained=weights_of(cfg),
                         drop_rate=cfg.dropout, drop_path_rate=cfg.drop_path_rate, padding=cfg.padding,
                         bn_eps=cfg.bn_eps, bn_momentum=cfg.bn_momentum)
    freeze_stages(model, cfg.freeze_stages)
    return model


def weights_of(cfg: TrainConfig) -> bool | str:
    """``create_model``'s ``pretrained`` for the config: ``True`` (published weights), a path, or ``False``."""
    return True if cfg.pretrained == "true" else (cfg.pretrained or False)


def freeze_stages(model: nn.Module, n: int) -> None:
    """Freeze the stem and the first ``n`` stages (weights and BatchNorm statistics)."""
    if n <= 0:
        return
    stages = list(model.stages)
    if n > len(stages):
        raise ValueError(f"freeze_stages {n} is more than the model's {len(stages)} stages")
    frozen = [model.stem, model.stem_pool, *stages[:n]]
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    model.frozen_modules = frozen


def preprocessing_for(model: nn.Module, cfg: TrainConfig, img_size: int):
    pre = getattr(model, "preprocessing", None) or Preprocessing(resolution=img_size)
    data = pre.to_dict()
    data["resolution"] = img_size
    if cfg.in_chans == 1 and len(pre.mean) == 3:  # grayscale input: one normalisation channel
        data["mean"] = [sum(pre.mean) / 3]
        data["std"] = [sum(pre.std) / 3]
    return Preprocessing.from_dict(data)


def load_data(cfg: TrainConfig, preprocessing, img_size: int):
    return load_spec(cfg.data_spec(), img_size=img_size, preprocessing=preprocessing,
                     augment=cfg.augment or "none", crop_scale=cfg.crop_scale)


def img_size_of(cfg: TrainConfig) -> int:
    return cfg.img_size or resolve_description(cfg.model).resolution


@dataclass
class Prepared:
    """What ``fit`` trains: the decided config and recipe, the model with its head, the data."""

    cfg: TrainConfig
    recipe: Recipe
    model: nn.Module
    splits: Any
    img_size: int
    class_names: list[str]


def prepare(cfg: TrainConfig, splits=None, *, world_size: int = 1) -> Prepared:
    """Decide the recipe for ``cfg`` on its data, then build the model with it.

    The model is built once for its preprocessing (the normalisation the data needs), the data is
    loaded, the recipe is decided from the run's length, the class count and (where a decision
    depends on it) the statistics of up to 64 validation images, and the model is built again with
    the decided values under ``cfg.seed``. Data loaded here gets the decided augmentation and crop
    scale; ``splits`` given by the caller are used as they are.
    """
    img_size = img_size_of(cfg)
    torch.manual_seed(cfg.seed)
    probe = build_model(cfg)
    preprocessing = preprocessing_for(probe, cfg, img_size)
    del probe
    loaded_here = splits is None
    if loaded_here:
        splits = load_data(replace(cfg, augment=cfg.augment or "none"), preprocessing, img_size)
    class_names = list(splits.class_names)
    steps = steps_per_epoch(len(splits.train), cfg.batch(), world_size)
    stats = None
    if cfg.undecided() and ({"augment", "bn_mode"} & set(cfg.undecided())):
        sample = splits.val if len(splits.val) else splits.test if len(splits.test) else None
        if sample is not None:
            stats = input_statistics(sample, preprocessing.mean, preprocessing.std)
    recipe = decide(cfg, steps_per_epoch=max(steps, 1), num_classes=len(class_names), img_size=img_size,
                    stats=stats, train_images=len(splits.train), world_size=world_size)
    cfg = recipe.cfg
    if loaded_here and hasattr(splits.train, "transform"):
        splits.train.transform = make_transforms(preprocessing, img_size, train=True, augment=cfg.augment,
                                                 crop_scale=cfg.crop_scale)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    head_classes = list(getattr(model, "preprocessing", None).class_names) if hasattr(model, "preprocessing") else []
    if model.num_classes != len(class_names) or (head_classes and head_classes != class_names):
        model.reset_classifier(len(class_names), zero_init=cfg.head_init == "zero")  # a new head
    model.preprocessing = replace(preprocessing, class_names=tuple(class_names))
    return Prepared(cfg=cfg, recipe=recipe, model=model, splits=splits, img_size=img_size, class_names=class_names)
