"""``conv``: a regular kxk convolution -> [SE]."""
from __future__ import annotations

from .base import BlockKind, down


class ConvKind(BlockKind):
    name = "conv"
    summary = "regular kxk convolution -> [SE]"

    def cost(self, c, b, hw_in):
        hw = down(hw_in, b.stride)
        c.conv(b.in_channels, b.out_channels, b.kernel, hw)
        if b.se_channels:
            c.se(b.out_channels, b.se_channels)
        return hw


KIND = ConvKind()
