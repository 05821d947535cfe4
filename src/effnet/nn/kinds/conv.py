"""The ``conv`` block module."""
from __future__ import annotations

import torch
from torch import nn

from ...arch import Block
from ..layers import SqueezeExcite
from .base import NormOptions, Residual


class ConvBlock(Residual):
    """A regular kxk convolution, optionally followed by squeeze-excite."""

    kind = "conv"
    #: torchvision's conv-norm-act layers of the block, by how many it has
    torchvision_parts = {1: ("conv",)}

    def __init__(self, spec: Block, opts: NormOptions, drop_path_rate: float = 0.0) -> None:
        super().__init__(spec, drop_path_rate)
        self.conv = opts.cna(spec.in_channels, spec.out_channels, spec.kernel, spec.stride)
        self.se = SqueezeExcite(spec.out_channels, spec.se_channels, opts.act) if spec.se_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x, self.se(self.conv(x)))


MODULE = ConvBlock
