"""``fused_mbconv``: EfficientNetV2's Fused-MBConv, the expansion and the depthwise convolution fused
into one regular kxk convolution: kxk expand (strided) -> [SE] -> 1x1 linear project; with no
expansion (ratio 1) a single activated kxk convolution -> [SE]."""
from __future__ import annotations

from .base import BlockKind, down


class FusedMBConvKind(BlockKind):
    name = "fused_mbconv"
    summary = "Fused-MBConv (EfficientNetV2): kxk expand -> [SE] -> 1x1 linear project; ratio 1: one kxk conv"

    def mid_channels(self, b):
        return max(1, int(round(b.in_channels * b.expand_ratio)))

    def has_expansion(self, b):
        return self.mid_channels(b) != b.in_channels

    def cost(self, c, b, hw_in):
        hw = down(hw_in, b.stride)
        if not self.has_expansion(b):
            c.conv(b.in_channels, b.out_channels, b.kernel, hw)
            if b.se_channels:
                c.se(b.out_channels, b.se_channels)
            return hw
        mid = self.mid_channels(b)
        c.conv(b.in_channels, mid, b.kernel, hw)
        if b.se_channels:
            c.se(mid, b.se_channels)
        c.conv(mid, b.out_channels, 1, hw)
        return hw


KIND = FusedMBConvKind()
