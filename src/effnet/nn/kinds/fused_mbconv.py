"""The ``fused_mbconv`` block module (EfficientNetV2's Fused-MBConv)."""
from __future__ import annotations

import torch
from torch import nn

from ...arch import Block
from ..layers import SqueezeExcite
from .base import NormOptions, Residual


class FusedMBConv(Residual):
    """kxk expand (strided, activated) -> [squeeze-excite] -> 1x1 linear project; without expansion
    one activated kxk convolution -> [squeeze-excite]. Module names follow MBConv's (``expand``,
    ``project``; ``conv`` for the single convolution)."""

    kind = "fused_mbconv"
    #: torchvision's conv-norm-act layers of the block, by how many it has
    torchvision_parts = {2: ("expand", "project"), 1: ("conv",)}

    def __init__(self, spec: Block, opts: NormOptions, drop_path_rate: float = 0.0) -> None:
        super().__init__(spec, drop_path_rate)
        self.fused = spec.has_expansion
        if self.fused:
            mid = spec.mid_channels
            self.expand = opts.cna(spec.in_channels, mid, spec.kernel, spec.stride)
            self.se = SqueezeExcite(mid, spec.se_channels, opts.act) if spec.se_channels else nn.Identity()
            self.project = opts.cna(mid, spec.out_channels, 1, act=False)
            self.conv = nn.Identity()
        else:  # every attribute exists either way, so that TorchScript compiles both branches
            self.expand = self.project = nn.Identity()
            self.conv = opts.cna(spec.in_channels, spec.out_channels, spec.kernel, spec.stride)
            self.se = SqueezeExcite(spec.out_channels, spec.se_channels, opts.act) if spec.se_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return self.residual(x, self.project(self.se(self.expand(x))), inplace=True)
        return self.residual(x, self.se(self.conv(x)))


MODULE = FusedMBConv
