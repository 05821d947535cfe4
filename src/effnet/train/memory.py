"""Activation checkpointing per stage, exact for stochastic depth and BatchNorm statistics.

Each stage's forward runs under ``torch.utils.checkpoint`` (non-reentrant): its activations are
not kept for backward but recomputed there. Two things must not change in the recomputation:

* random masks (stochastic depth): the checkpoint restores the RNG state of the forward before
  recomputing (``preserve_rng_state=True``, the default), so the masks are the same;
* BatchNorm running statistics: a recomputation in train mode would update them a second time.
  The recompute context sets every BatchNorm's momentum to 0 (``new = 1 * old + 0 * batch``, so
  the statistics stay bit-identical) and restores ``num_batches_tracked``.
"""
from __future__ import annotations

import contextlib
from functools import partial
from typing import Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint


@contextlib.contextmanager
def frozen_batchnorm_stats(module: nn.Module) -> Iterator[None]:
    """While active, BatchNorm layers in train mode normalise with batch statistics but leave their
    running statistics (and ``num_batches_tracked``) as they were."""
    saved = []
    for m in module.modules():
        if isinstance(m, _BatchNorm) and m.training and m.track_running_stats:
            counter = m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None
            saved.append((m, m.momentum, counter))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, counter in saved:
            m.momentum = momentum
            if counter is not None:
                m.num_batches_tracked.copy_(counter)


def _contexts(module: nn.Module):
    return contextlib.nullcontext(), frozen_batchnorm_stats(module)


class CheckpointedSequential(nn.Sequential):
    """A ``Sequential`` whose forward is recomputed in backward instead of stored (when training)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            return checkpoint(partial(nn.Sequential.forward, self), x, use_reentrant=False,
                              preserve_rng_state=True, context_fn=partial(_contexts, self))
        return super().forward(x)


def enable_grad_checkpointing(model: nn.Module) -> nn.Module:
    """Recompute each stage of an :class:`effnet.nn.EfficientNet` in backward. Parameter names do
    not change, so checkpoints load either way."""
    stages = getattr(model, "stages", None)
    if not isinstance(stages, nn.Sequential):
        raise ValueError("activation checkpointing needs a model with a `stages` Sequential (an effnet model)")
    for i, stage in enumerate(stages):
        if not isinstance(stage, CheckpointedSequential):
            stages[i] = CheckpointedSequential(*stage)
    return model
