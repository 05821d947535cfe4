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

``TrainConfig`` and the recipe decisions are pure Python; the torch-backed names load on first use,
so the command line can read the config's fields without importing torch.
"""
from .config import PAPER, TrainConfig
from .recipe import Recipe, decide

_LAZY = {
    "latest_checkpoint": "checkpoint", "build_ema": "ema", "ema_decay_at": "ema",
    "evaluate": "evaluation", "plot_confusion": "evaluation", "quick_train": "quick",
    "RunResult": "run", "fit": "run", "Trainer": "trainer",
    "enable_grad_checkpointing": "memory", "frozen_batchnorm_stats": "memory",
    "RMSpropTF": "optim", "WarmupCosine": "optim", "WarmupStepDecay": "optim", "build_optimizer": "optim",
    "build_scheduler": "optim", "param_groups": "optim",
}
__all__ = ["PAPER", "Recipe", "TrainConfig", "decide", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
