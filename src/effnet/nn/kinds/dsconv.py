"""The ``dsconv`` block module."""
from __future__ import annotations

import torch
from torch import nn

from ...arch import Block
from ..layers import SqueezeExcite
from .base import NormOptions, Residual


class DSConv(Residual):
    """Depthwise separable convolution (MobileNetV1): depthwise -> [squeeze-excite] -> 1x1, both activated."""

    kind = "dsconv"
    #: torchvision's conv-norm-act layers of the block, by how many it has
    torchvision_parts = {2: ("dw", "pw")}

    def __init__(self, spec: Block, opts: NormOptions, drop_path_rate: float = 0.0) -> None:
        super().__init__(spec, drop_path_rate)
        self.dw = opts.cna(spec.in_channels, spec.in_channels, spec.kernel, spec.stride, groups=spec.in_channels)
        self.se = SqueezeExcite(spec.in_channels, spec.se_channels, opts.act) if spec.se_channels else nn.Identity()
        self.pw = opts.cna(spec.in_channels, spec.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x, self.pw(self.se(self.dw(x))))


MODULE = DSConv
