"""The ``bottleneck`` block module."""
from __future__ import annotations

import torch
from torch import nn

from ...arch import Block
from ..layers import ACTIVATION_LAYERS, SqueezeExcite
from .base import NormOptions, Residual


class Bottleneck(Residual):
    """ResNet v1.5 bottleneck (stride on the kxk conv), projection shortcut where shapes change."""

    kind = "bottleneck"
    #: torchvision's conv-norm-act layers of the block, by how many it has
    torchvision_parts = {}

    def __init__(self, spec: Block, opts: NormOptions, drop_path_rate: float = 0.0) -> None:
        super().__init__(spec, drop_path_rate)
        mid = spec.mid_channels
        self.reduce = opts.cna(spec.in_channels, mid, 1)
        self.conv = opts.cna(mid, mid, spec.kernel, spec.stride)
        self.se = SqueezeExcite(mid, spec.se_channels, opts.act) if spec.se_channels else nn.Identity()
        self.expand = opts.cna(mid, spec.out_channels, 1, act=False)
        self.shortcut = (opts.cna(spec.in_channels, spec.out_channels, 1, spec.stride, act=False)
                         if spec.has_projection_shortcut else nn.Identity())
        self.act = ACTIVATION_LAYERS[opts.act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(self.se(self.conv(self.reduce(x))))
        if not self.has_residual:
            return self.act(out)
        short = self.shortcut(x)
        return self.act(self.drop_path(out) + short)


MODULE = Bottleneck
