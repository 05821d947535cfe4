"""Helpers shared by the study tests."""
from __future__ import annotations

import math
import random


class PredictingQuickTrain:
    """Stands in for quick_train: per-image predictions, each right with probability ``accuracy(desc,
    img_size)`` (by default growing with multiply-adds); no training."""

    def __init__(self, accuracy=None) -> None:
        self.accuracy = accuracy

    def __call__(self, desc, splits, *, img_size, seed, **kwargs):
        from effnet.arch import cost

        d = desc.replace(num_classes=splits.num_classes)
        p = (self.accuracy(d, img_size) if self.accuracy else
             min(0.95, 0.3 + 0.12 * math.log2(cost(d, img_size).macs / 2e6)))
        if kwargs.get("max_steps") is not None:  # a step cap: the positive control's short run learns less
            p = max(0.0, p - 0.25)
        out = {"val_acc": 0.0, "train_time_s": 0.01, "steps": 3}
        for name in ("val", "test"):
            targets = list(getattr(splits, name).targets)
            if name == "test" and not targets:
                continue  # like quick_train: an empty test split is not scored
            rng = random.Random(f"{d.name}:{seed}:{name}")
            pred = [t if rng.random() < p else (t + 1) % splits.num_classes for t in targets]
            out[f"{name}_pred"], out[f"{name}_target"] = pred, targets
            out[f"{name}_acc"] = sum(a == b for a, b in zip(pred, targets)) / len(targets)
        return out


def record_optuna_verbosity(path) -> None:
    """A worker target: writes the Optuna logging level this process runs with."""
    import optuna

    with open(path, "a") as f:
        f.write(f"{optuna.logging.get_verbosity()}\n")
