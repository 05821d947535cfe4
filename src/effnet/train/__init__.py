"""Training: the paper's recipe as a typed config, decided for each run's length and data
(``recipe``), the trainer, EMA, mixed precision, activation checkpointing, distributed data
parallel, exact checkpoint/resume, metrics and logs.

Modules by job: ``config`` (the typed config), ``recipe`` (which values a run gets, and why),
``runtime`` (device, precision, threads), ``setup`` (model and data for a run), ``trainer`` (the
step loop), ``evaluation`` (scores), ``run`` (``fit`` with its run dir), ``outputs`` (what a run
writes and prints), ``quick`` (``quick_train``, no files), ``checkpoint``, ``optim``, ``ema``,
``sampling``, ``memory``, ``distributed``.

    from effnet.train import TrainConfig, fit, quick_train, evaluate
    cfg = TrainConfig.for_model("efficientnet_b0", data="elpv", img_size=64, epochs=10)
    result = fit(cfg)                      # RunResult(run_dir, metrics)
"""
from .checkpoint import latest_checkpoint
from .config import TrainConfig
from .ema import build_ema, ema_decay_at
from .evaluation import evaluate, plot_confusion
from .quick import quick_train
from .recipe import PAPER, Recipe, decide
from .run import RunResult, fit
from .trainer import Trainer
from .memory import enable_grad_checkpointing, frozen_batchnorm_stats
from .optim import RMSpropTF, WarmupCosine, WarmupStepDecay, build_optimizer, build_scheduler, param_groups

__all__ = [
    "PAPER", "RMSpropTF", "Recipe", "RunResult", "TrainConfig", "Trainer", "WarmupCosine", "WarmupStepDecay", "build_ema",
    "build_optimizer", "build_scheduler", "decide", "ema_decay_at", "enable_grad_checkpointing", "evaluate", "fit",
    "frozen_batchnorm_stats", "latest_checkpoint", "param_groups", "plot_confusion", "quick_train",
]
