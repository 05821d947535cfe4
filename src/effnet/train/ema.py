"""Exponential moving average of the weights, with the reference code's warm-up.

Built on ``torch.optim.swa_utils.AveragedModel`` (``use_buffers=True``, so BatchNorm running
statistics are averaged too). The first update copies the weights; the update after ``t`` earlier
updates uses the decay ``min(decay, (1 + t) / (10 + t))``, so early averages follow the weights closely.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_decay_at(decay: float, t: int) -> float:
    """The warm-up decay ``min(decay, (1 + t) / (10 + t))``."""
    return min(decay, (1.0 + t) / (10.0 + t))


def _make_multi_avg_fn(decay: float):
    def multi_avg_fn(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        # num_averaged counts the earlier updates, the first (a copy) included
        d = ema_decay_at(decay, int(num_averaged.item()))
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:  # the same fused lerp torch's own get_ema_multi_avg_fn uses
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1.0 - d)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():  # counters such as num_batches_tracked follow the model
                a.copy_(c)

    return multi_avg_fn


def build_ema(model: nn.Module, decay: float) -> AveragedModel:
    """An ``AveragedModel`` holding the EMA copy (``.module``); call ``update_parameters(model)`` per step."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"EMA decay must be in [0, 1], got {decay!r}")
    return AveragedModel(model, multi_avg_fn=_make_multi_avg_fn(decay), use_buffers=True)
