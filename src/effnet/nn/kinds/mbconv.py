"""The ``mbconv`` block module."""
from __future__ import annotations

import torch
from torch import nn

from ...arch import Block
from ..layers import SqueezeExcite
from .base import NormOptions, Residual


class MBConv(Residual):
    """Mobile inverted bottleneck: [1x1 expand] -> depthwise -> [squeeze-excite] -> 1x1 linear project."""

    kind = "mbconv"
    #: torchvision's conv-norm-act layers of the block, by how many it has
    torchvision_parts = {3: ("expand", "dw", "project"), 2: ("dw", "project")}

    def __init__(self, spec: Block, opts: NormOptions, drop_path_rate: float = 0.0) -> None:
        super().__init__(spec, drop_path_rate)
        mid = spec.mid_channels
        self.expand = opts.cna(spec.in_channels, mid, 1) if spec.has_expansion else nn.Identity()
        self.dw = opts.cna(mid, mid, spec.kernel, spec.stride, groups=mid)
        self.se = SqueezeExcite(mid, spec.se_channels, opts.act) if spec.se_channels else nn.Identity()
        self.project = opts.cna(mid, spec.out_channels, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.dw(self.expand(x)))
        return self.residual(x, self.project(out), inplace=True)  # project: BatchNorm, no activation


MODULE = MBConv
