"""``bottleneck``: ResNet v1.5, 1x1 reduce -> kxk (strided) -> 1x1 expand, projection shortcut."""
from __future__ import annotations

from ..rounding import make_divisible
from .base import BlockKind, down


class BottleneckKind(BlockKind):
    name = "bottleneck"
    summary = "ResNet v1.5 bottleneck: 1x1 reduce -> kxk (strided) -> 1x1 expand, projection shortcut"

    def mid_channels(self, b):
        return make_divisible(b.out_channels * b.expand_ratio, b.divisor)

    def has_residual(self, b):
        return b.skip

    def has_projection_shortcut(self, b):
        return b.skip and (b.stride != 1 or b.in_channels != b.out_channels)

    def cost(self, c, b, hw_in):
        hw, mid = down(hw_in, b.stride), self.mid_channels(b)
        c.conv(b.in_channels, mid, 1, hw_in)
        c.conv(mid, mid, b.kernel, hw)
        if b.se_channels:
            c.se(mid, b.se_channels)
        c.conv(mid, b.out_channels, 1, hw)
        if self.has_projection_shortcut(b):
            c.conv(b.in_channels, b.out_channels, 1, hw)
        return hw


KIND = BottleneckKind()
