"""Analytic cost of a description: trainable parameters and multiply-adds.

FLOPs in the paper are multiply-adds, and so are the ``macs`` here: one per weight of every
convolution (squeeze-excite included) per output position, plus the classifier. BatchNorm,
activations, pooling, biases and elementwise products are not counted; BatchNorm's affine
parameters are counted as parameters (running statistics are buffers, not parameters).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from .kinds import KINDS, down
from .types import Block, Network, Stage


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int
    resolution: tuple[int, int]

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6


class _Counter:
    def __init__(self) -> None:
        self.params = 0
        self.macs = 0

    def conv(self, cin: int, cout: int, k: int, out_hw: tuple[int, int], groups: int = 1, bias: bool = False, bn: bool = True) -> None:
        w = cout * (cin // groups) * k * k
        self.params += w + (cout if bias else 0) + (2 * cout if bn else 0)
        self.macs += w * out_hw[0] * out_hw[1]

    def se(self, channels: int, squeeze: int) -> None:
        # two 1x1 convolutions with bias on the pooled (1x1) map
        self.params += 2 * channels * squeeze + squeeze + channels
        self.macs += 2 * channels * squeeze


@functools.lru_cache(maxsize=65536)
def _stage_cost(stage: Stage, in_channels: int, divisor: int, hw_in: tuple[int, int]) -> tuple[int, int, tuple[int, int]]:
    """(params, multiply-adds, output size) of one stage entered with ``in_channels`` at ``hw_in``.
    Searches cost many networks that share most of their stages, so each distinct stage and input
    is counted once (the key holds everything a block's cost depends on, not its position)."""
    c = _Counter()
    hw, cin = hw_in, in_channels
    for r in range(stage.repeats):
        b = Block(index=0, stage=0, op=stage.op, in_channels=cin, out_channels=stage.out_channels,
                  expand_ratio=stage.expand_ratio, kernel=stage.kernel, stride=stage.stride if r == 0 else 1,
                  se_ratio=stage.se_ratio, skip=stage.skip, divisor=divisor)
        hw = _block(c, b, hw)
        cin = stage.out_channels
    return c.params, c.macs, hw


def _block(c: _Counter, b: Block, hw_in: tuple[int, int]) -> tuple[int, int]:
    return KINDS[b.op].cost(c, b, hw_in)


def cost(desc: Network, resolution: int | tuple[int, int] | None = None, in_chans: int = 3) -> Cost:
    """Parameters and multiply-adds of ``desc`` at ``resolution`` (default: its own)."""
    if resolution is None:
        resolution = desc.resolution
    if isinstance(resolution, int):
        hw = (resolution, resolution)
    elif isinstance(resolution, (tuple, list)):
        hw = tuple(resolution)
    else:
        hw = ()
    if len(hw) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in hw):
        raise ValueError(f"resolution must be a positive integer or (height, width), got {resolution!r}")
    c = _Counter()
    size = down(hw, desc.stem.stride)
    c.conv(in_chans, desc.stem.out_channels, desc.stem.kernel, size)
    if desc.stem.pool:
        size = down(size, 2)
    in_ch = desc.stem.out_channels
    for stage in desc.stages:
        params, macs, size = _stage_cost(stage, in_ch, desc.divisor, size)
        c.params += params
        c.macs += macs
        in_ch = stage.out_channels
    if desc.head_channels is not None:
        c.conv(desc.stages[-1].out_channels, desc.head_channels, 1, size)
    if desc.num_classes:
        c.params += desc.num_features * desc.num_classes + desc.num_classes
        c.macs += desc.num_features * desc.num_classes
    return Cost(params=c.params, macs=c.macs, resolution=(hw[0], hw[1]))
