"""Training: the paper's recipe as a typed config, the loop, EMA, mixed precision, activation
checkpointing, distributed data parallel, exact checkpoint/resume, metrics and logs.

    from effnet.train import TrainConfig, fit, quick_train, evaluate
    cfg = TrainConfig.for_model("efficientnet_b0", data="elpv", img_size=64, epochs=10)
    result = fit(cfg)                      # RunResult(run_dir, metrics)

``TrainConfig`` is pure Python; the torch-backed names load on first use, so the command line can
read the config's fields without importing torch.
"""
from .config import TrainConfig

_LAZY = {
    "latest_checkpoint": "checkpoint", "build_ema": "ema", "ema_decay_at": "ema",
    "RunResult": "loop", "Trainer": "loop", "evaluate": "loop", "fit": "loop", "plot_confusion": "loop",
    "quick_train": "loop", "enable_grad_checkpointing": "memory", "frozen_batchnorm_stats": "memory",
    "RMSpropTF": "optim", "WarmupCosine": "optim", "WarmupStepDecay": "optim", "build_optimizer": "optim",
    "build_scheduler": "optim", "param_groups": "optim",
}
__all__ = ["TrainConfig", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
