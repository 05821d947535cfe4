"""``dsconv``: depthwise separable (MobileNetV1), depthwise kxk -> [SE] -> 1x1 project, both activated."""
from __future__ import annotations

from .base import BlockKind, down


class DSConvKind(BlockKind):
    name = "dsconv"
    summary = "depthwise separable (MobileNetV1): depthwise kxk -> [SE] -> 1x1 project, both activated"

    def mid_channels(self, b):
        return b.in_channels

    def cost(self, c, b, hw_in):
        hw = down(hw_in, b.stride)
        c.conv(b.in_channels, b.in_channels, b.kernel, hw, groups=b.in_channels)
        if b.se_channels:
            c.se(b.in_channels, b.se_channels)
        c.conv(b.in_channels, b.out_channels, 1, hw)
        return hw


KIND = DSConvKind()
