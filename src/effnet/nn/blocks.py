"""The blocks a stage can be made of, each built from one :class:`effnet.arch.Block`."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..arch import Block
from .layers import ACTIVATION_LAYERS, ConvNormAct, DropPath, SqueezeExcite


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
        # in place, as torchvision does: ``out`` is a fresh tensor (a projection's BatchNorm or
        # convolution output, or stochastic depth's product) that no backward pass reads, so the
        # sum needs no new feature map
        out = self.drop_path(out)
        out += x
        return out


class MBConv(Residual):
    """Mobile inverted bottleneck: [1x1 expand] -> depthwise -> [squeeze-excite] -> 1x1 linear project."""

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


class DSConv(Residual):
    """Depthwise separable convolution (MobileNetV1): depthwise -> [squeeze-excite] -> 1x1, both activated."""

    def __init__(self, spec: Block, opts: NormOptions, drop_path_rate: float = 0.0) -> None:
        super().__init__(spec, drop_path_rate)
        self.dw = opts.cna(spec.in_channels, spec.in_channels, spec.kernel, spec.stride, groups=spec.in_channels)
        self.se = SqueezeExcite(spec.in_channels, spec.se_channels, opts.act) if spec.se_channels else nn.Identity()
        self.pw = opts.cna(spec.in_channels, spec.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x, self.pw(self.se(self.dw(x))))


class ConvBlock(Residual):
    """A regular kxk convolution, optionally followed by squeeze-excite."""

    def __init__(self, spec: Block, opts: NormOptions, drop_path_rate: float = 0.0) -> None:
        super().__init__(spec, drop_path_rate)
        self.conv = opts.cna(spec.in_channels, spec.out_channels, spec.kernel, spec.stride)
        self.se = SqueezeExcite(spec.out_channels, spec.se_channels, opts.act) if spec.se_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x, self.se(self.conv(x)))


class Bottleneck(Residual):
    """ResNet v1.5 bottleneck (stride on the kxk conv), projection shortcut where shapes change."""

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


BLOCKS = {"mbconv": MBConv, "dsconv": DSConv, "conv": ConvBlock, "bottleneck": Bottleneck}


def make_block(spec: Block, opts: NormOptions, drop_path_rate: float = 0.0) -> nn.Module:
    return BLOCKS[spec.op](spec, opts, drop_path_rate)
