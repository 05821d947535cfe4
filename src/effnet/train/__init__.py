"""Training: the paper's recipe as a typed config, the loop, EMA, mixed precision, activation
checkpointing, distributed data parallel, exact checkpoint/resume, metrics and logs.

    from effnet.train import TrainConfig, fit, quick_train, evaluate
    cfg = TrainConfig.for_model("efficientnet_b0", data="elpv", img_size=64, epochs=10)
    result = fit(cfg)                      # RunResult(run_dir, metrics)
"""
from .checkpoint import latest_checkpoint
from .config import TrainConfig
from .ema import build_ema, ema_decay_at
from .loop import RunResult, Trainer, evaluate, fit, plot_confusion, quick_train
from .memory import enable_grad_checkpointing, frozen_batchnorm_stats
from .optim import RMSpropTF, WarmupCosine, WarmupStepDecay, build_optimizer, build_scheduler, param_groups

__all__ = [
    "RMSpropTF", "RunResult", "TrainConfig", "Trainer", "WarmupCosine", "WarmupStepDecay", "build_ema",
    "build_optimizer", "build_scheduler", "ema_decay_at", "enable_grad_checkpointing", "evaluate", "fit",
    "frozen_batchnorm_stats", "latest_checkpoint", "param_groups", "plot_confusion", "quick_train",
]
