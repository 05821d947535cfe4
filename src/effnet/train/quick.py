"""``quick_train``: a short training run without files, for search trials and studies."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import torch
from torch import nn

from .. import factory  # factory.create_model is looked up per call: tests may replace it
from ..arch import Network, cost
from .config import TrainConfig
from .fastpath import choose_training_settings
from .recipe import InputStats, decide, steps_per_epoch
from .runtime import resolve_device, runtime
from .setup import weights_of
from .trainer import Trainer


def worker_index() -> int:
    """This process's index among a study's local workers (0 for the first; ``EFFNET_WORKER_INDEX``)."""
    import os

    try:
        return max(0, int(os.environ.get("EFFNET_WORKER_INDEX", "0")))
    except ValueError:
        return 0


def quick_train(desc_or_model: Network | nn.Module | str, splits, *, img_size: int, epochs: int, batch_size: int = 32,
                lr: float | None = None, seed: int = 0, progress: bool | str = False, max_steps: int | None = None,
                on_epoch: Callable[[int, float], None] | None = None, predictions: bool = False,
                input_stats: InputStats | None = None, **overrides: Any) -> dict[str, Any]:
    """Train on ``splits`` without writing files; returns validation metrics, time and cost.

    The recipe is ``TrainConfig.for_model``'s with the keys it leaves open decided for this run
    (``effnet.train.recipe.decide``: a short run gets AdamW, cosine, a short warm-up, BatchNorm
    momentum and EMA tied to its steps, a zero-initialised classifier); ``overrides`` set any config
    key, and a key set there is kept; ``pretrained="true"`` (or a checkpoint path) among them starts a
    description from those weights with a new classifier and decides the fine-tuning regime, where
    ``input_stats`` (:func:`effnet.train.recipe.input_statistics` of the data) lets the BatchNorm mode
    follow the images as ``effnet finetune`` does. Layout and precision start from the machine's fastest
    (``effnet.train.fastpath``). The result's ``recipe`` records the decisions. The returned dict has ``val_acc`` (final weights),
    ``val_acc_ema``, ``val_loss``, ``train_loss``, ``train_time_s``, ``steps``, ``images_per_s``,
    ``params`` and ``macs`` of the trained model (the description with the data set's classes;
    multiply-adds at ``img_size``, from ``effnet.arch.cost``).

    ``on_epoch(epoch, val_acc)``, when given, is called after every epoch with the validation
    accuracy of the current weights; it may raise (a pruner's ``TrialPruned``) to stop the run.
    ``progress`` shows a bar per epoch; a text labels it and shows it on a terminal only, on the line
    of this worker process (a study's trial). ``predictions=True`` adds ``val_pred``/``val_target`` and, where ``splits.test`` has images,
    ``test_acc``/``test_pred``/``test_target`` (final weights; per image, in the split's order).
    """
    model = desc_or_model if isinstance(desc_or_model, nn.Module) else None
    desc = model.desc if model is not None else factory.resolve_description(desc_or_model)
    base = TrainConfig.for_model(desc)
    # the machine's fastest precision (effnet.train.fastpath; ``decide`` picks the layout the same way);
    # the thread count stays the caller's (a test runner or a study may run one process per core);
    # explicit overrides win
    fast = choose_training_settings(img_size, "cuda" if torch.cuda.is_available() else "cpu")
    settings = {"amp": fast.amp, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
                "img_size": img_size, "max_steps": max_steps}
    settings.update(overrides)
    cfg = replace(base, **settings)
    recipe = decide(cfg, steps_per_epoch=steps_per_epoch(len(splits.train), cfg.batch()),
                    num_classes=splits.num_classes, img_size=img_size, fine_tune=cfg.pretrained is not None,
                    stats=input_stats, train_images=len(splits.train))
    cfg = recipe.cfg
    if model is None:
        # built after the recipe so that its model settings (BatchNorm, dropout, ...) take effect
        torch.manual_seed(seed)
        model = factory.create_model(desc, num_classes=splits.num_classes, pretrained=weights_of(cfg), drop_rate=cfg.dropout,
                             drop_path_rate=cfg.drop_path_rate, padding=cfg.padding, bn_eps=cfg.bn_eps,
                             bn_momentum=cfg.bn_momentum)
        if desc.num_classes != splits.num_classes or cfg.head_init == "zero":
            model.reset_classifier(splits.num_classes, zero_init=cfg.head_init == "zero")
    elif model.num_classes != splits.num_classes:
        model.reset_classifier(splits.num_classes, zero_init=cfg.head_init == "zero")
    desc = model.desc
    with runtime(cfg):
        torch.manual_seed(seed)
        device = resolve_device(cfg)
        trainer = Trainer(cfg, model, splits.train, device=device, progress=progress,
                          progress_position=worker_index() if isinstance(progress, str) else 0)
        raw = None
        while not trainer.done():
            for _ in trainer.train_epoch():
                pass
            if on_epoch is not None:
                raw = trainer.evaluate(splits.val, predictions=predictions)
                on_epoch(trainer.epoch, float(raw["top1"]))
            if trainer.batch_in_epoch:  # stopped by max_steps inside an epoch
                break
        if raw is None:
            raw = trainer.evaluate(splits.val, predictions=predictions)
        ema = trainer.evaluate(splits.val, ema=True) if trainer.ema is not None else None
        train = trainer.epoch_train_metrics() if trainer.sums["seen"] else {"train_loss": float("nan")}
        scored: dict[str, Any] = {}
        if predictions:
            scored = {"val_pred": raw["pred"], "val_target": raw["target"]}
            if len(splits.test):
                test = trainer.evaluate(splits.test, predictions=True)
                scored.update(test_acc=test["top1"], test_pred=test["pred"], test_target=test["target"])
    c = cost(desc, img_size)
    return {
        **scored,
        "recipe": recipe.record(),
        "val_acc": raw["top1"],
        "val_loss": raw["loss"],
        "val_acc_ema": ema["top1"] if ema else None,
        "train_loss": train["train_loss"],
        "train_time_s": trainer.train_time_s,
        "steps": trainer.step,
        "images_per_s": trainer.step * trainer.global_batch / max(trainer.train_time_s, 1e-9),
        "params": c.params,
        "macs": c.macs,
        "img_size": img_size,
        "batch_size": trainer.global_batch,
    }
