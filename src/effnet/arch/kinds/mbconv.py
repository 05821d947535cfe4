"""``mbconv``: mobile inverted bottleneck, [1x1 expand] -> depthwise kxk -> [SE] -> 1x1 linear project."""
from __future__ import annotations

from .base import BlockKind, down


class MBConvKind(BlockKind):
    name = "mbconv"
    summary = "mobile inverted bottleneck: [1x1 expand] -> depthwise kxk -> [SE] -> 1x1 linear project"

    def mid_channels(self, b):
        return max(1, int(round(b.in_channels * b.expand_ratio)))

    def has_expansion(self, b):
        return self.mid_channels(b) != b.in_channels

    def cost(self, c, b, hw_in):
        hw, mid = down(hw_in, b.stride), self.mid_channels(b)
        if self.has_expansion(b):
            c.conv(b.in_channels, mid, 1, hw_in)
        c.conv(mid, mid, b.kernel, hw, groups=mid)
        if b.se_channels:
            c.se(mid, b.se_channels)
        c.conv(mid, b.out_channels, 1, hw)
        return hw


KIND = MBConvKind()
