"""What every block module shares: the conv-norm-act settings and the residual connection."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...arch import Block
from ..layers import ConvNormAct, DropPath


@dataclass(frozen=True)
class NormOptions:
    """Settings every conv-norm-act shares; one object instead of flags on each block."""

    act: str = "silu"
    padding: str = "symmetric"
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01

    def cna(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> ConvNormAct:
        return ConvNormAct(cin, cout, kernel, stride, groups, act=self.act if act else None,
                           padding=self.padding, bn_eps=self.bn_eps, bn_momentum=self.bn_momentum)


class Residual(nn.Module):
    """Adds the input back (after stochastic depth) when the block has an identity shortcut."""

    def __init__(self, spec: Block, drop_path_rate: float) -> None:
        super().__init__()
        self.has_residual = spec.has_residual
        self.drop_path = DropPath(drop_path_rate) if spec.has_residual and drop_path_rate > 0 else nn.Identity()

    def residual(self, x: torch.Tensor, out: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """``out`` (after stochastic depth) plus ``x`` where the block has an identity shortcut.

        ``inplace`` adds into ``out``, as torchvision does, saving one feature map per block; only
        for an ``out`` that no backward pass reads (a BatchNorm's or convolution's output, not an
        in-place activation's)."""
        if not self.has_residual:
            return out
        out = self.drop_path(out)
        if inplace:
            out += x
            return out
        return out + x
