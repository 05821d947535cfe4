"""Small composable layers: padding-aware convolution, conv-norm-act, squeeze-excite, stochastic depth."""
from __future__ import annotations

import functools
import math
from collections import OrderedDict
from functools import partial
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import stochastic_depth

PADDINGS = ("symmetric", "same")

ACTIVATION_LAYERS = {
    "silu": partial(nn.SiLU, inplace=True),
    "relu": partial(nn.ReLU, inplace=True),
    "relu6": partial(nn.ReLU6, inplace=True),
}


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Total padding TensorFlow's 'SAME' adds along one axis of length ``size``."""
    out = math.ceil(size / stride)
    return max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


def _conv_same(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: List[int],
               dilation: List[int], groups: int) -> torch.Tensor:
    kh, kw = weight.shape[-2], weight.shape[-1]
    ph = same_padding(x.shape[-2], kh, stride[0], dilation[0])
    pw = same_padding(x.shape[-1], kw, stride[1], dilation[1])
    if ph > 0 or pw > 0:
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
    return F.conv2d(x, weight, bias, stride, 0, dilation, groups)


@torch.library.custom_op("effnet::conv2d_same", mutates_args=())
def _conv2d_same_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: list[int],
                    dilation: list[int], groups: int) -> torch.Tensor:
    """:func:`_conv_same` as one opaque operator, used only while exporting to ONNX (see
    :func:`_onnx_conv_same`)."""
    return _conv_same(x, weight, bias, stride, dilation, groups)


@_conv2d_same_op.register_fake
def _(x, weight, bias, stride, dilation, groups):
    return x.new_empty((x.shape[0], weight.shape[0], -(-x.shape[2] // stride[0]), -(-x.shape[3] // stride[1])))


@functools.cache
def _onnx_conv_same() -> None:
    """Teach the TorchScript ONNX exporter to write ``effnet::conv2d_same`` as one ``Conv`` with
    ``auto_pad="SAME_UPPER"`` (TensorFlow's SAME: the odd extra row and column at the bottom/right),
    instead of the shape arithmetic and ``Pad`` that tracing :func:`_conv_same` writes for inputs of
    dynamic size (about 50 nodes per strided convolution). Registers once per process."""
    from torch.onnx import symbolic_helper

    @symbolic_helper.parse_args("v", "v", "v", "is", "is", "i")
    def symbolic(g, x, weight, bias, stride, dilation, groups):
        kernel = weight.type().sizes()[-2:]
        inputs = [x, weight] if symbolic_helper._is_none(bias) else [x, weight, bias]
        return g.op("Conv", *inputs, auto_pad_s="SAME_UPPER", strides_i=stride, dilations_i=dilation,
                    group_i=groups, kernel_shape_i=list(kernel))

    torch.onnx.register_custom_op_symbolic("effnet::conv2d_same", symbolic, 11)  # opset 11 and later


class Conv2dSame(nn.Conv2d):
    """Convolution with TensorFlow 'SAME' padding computed from each input's size.

    Odd extra padding goes to the bottom/right, as in TensorFlow. Written by hand because
    PyTorch's ``padding="same"`` is limited to stride 1. In ONNX export it is a single ``Conv``
    with ``auto_pad="SAME_UPPER"``, which ONNX Runtime pads the same way at any input size.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs["padding"] = 0
        super().__init__(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = [self.stride[0], self.stride[1]]
        dilation = [self.dilation[0], self.dilation[1]]
        if not torch.jit.is_scripting():
            if torch.onnx.is_in_onnx_export() and torch.jit.is_tracing():  # the TorchScript exporter, not dynamo's
                return self._onnx_forward(x, stride, dilation)
        return _conv_same(x, self.weight, self.bias, stride, dilation, self.groups)

    @torch.jit.unused
    def _onnx_forward(self, x: torch.Tensor, stride: List[int], dilation: List[int]) -> torch.Tensor:
        _onnx_conv_same()
        return torch.ops.effnet.conv2d_same(x, self.weight, self.bias, stride, dilation, self.groups)


def _max_pool_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    ph = same_padding(x.shape[-2], kernel, stride)
    pw = same_padding(x.shape[-1], kernel, stride)
    if ph or pw:
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], value=float("-inf"))
    return F.max_pool2d(x, kernel, stride)


@torch.library.custom_op("effnet::max_pool2d_same", mutates_args=())
def _max_pool2d_same_op(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """:func:`_max_pool_same` as one opaque operator, used only while exporting to ONNX (see
    :func:`_onnx_max_pool_same`)."""
    return _max_pool_same(x, kernel, stride)


@_max_pool2d_same_op.register_fake
def _(x, kernel, stride):
    return x.new_empty((x.shape[0], x.shape[1], -(-x.shape[2] // stride), -(-x.shape[3] // stride)))


@functools.cache
def _onnx_max_pool_same() -> None:
    """Teach the TorchScript ONNX exporter to write ``effnet::max_pool2d_same`` as one ``MaxPool``
    with ``auto_pad="SAME_UPPER"`` (padded positions never win, as the ``-inf`` padding here), as
    :func:`_onnx_conv_same` does for the convolution. Registers once per process."""
    from torch.onnx import symbolic_helper

    @symbolic_helper.parse_args("v", "i", "i")
    def symbolic(g, x, kernel, stride):
        return g.op("MaxPool", x, auto_pad_s="SAME_UPPER", kernel_shape_i=[kernel, kernel], strides_i=[stride, stride])

    torch.onnx.register_custom_op_symbolic("effnet::max_pool2d_same", symbolic, 11)


class MaxPool2dSame(nn.MaxPool2d):
    """Max pooling with TensorFlow 'SAME' padding computed from each input's size: the extra row
    and column go to the bottom/right, and padded positions never win (they are ``-inf``).
    Written by hand because PyTorch's max pooling pads symmetrically only. In ONNX export it is a
    single ``MaxPool`` with ``auto_pad="SAME_UPPER"``, like :class:`Conv2dSame`."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__(kernel, stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, stride = int(self.kernel_size), int(self.stride)
        if not torch.jit.is_scripting():
            if torch.onnx.is_in_onnx_export() and torch.jit.is_tracing():  # the TorchScript exporter, not dynamo's
                return self._onnx_forward(x, kernel, stride)
        return _max_pool_same(x, kernel, stride)

    @torch.jit.unused
    def _onnx_forward(self, x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
        _onnx_max_pool_same()
        return torch.ops.effnet.max_pool2d_same(x, kernel, stride)


def make_max_pool(kernel: int, stride: int, padding: str = "symmetric") -> nn.Module:
    """A max pool with the named padding convention (``symmetric``: ``kernel // 2`` on every side)."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    if padding == "same":
        return MaxPool2dSame(kernel, stride)
    return nn.MaxPool2d(kernel, stride, kernel // 2)


def kernel_covers_map(kernel: tuple[int, int], height: int, width: int) -> bool:
    """Whether :class:`DepthwiseConv2d` computes its own weight gradient for an input map of
    ``height`` x ``width``: where the kernel spans the whole map in a dimension.

    Measured on this project's 2-core AVX2 CPU (one thread, batch 32, channels_last, 96 to 1152
    channels): oneDNN's depthwise weight gradient is slow exactly there (40 ms for 1152 channels of
    2 x 2 with a 5x5 kernel, 39 ms for 672 of 4 x 4 with 5x5; 100x its forward time), and the
    per-tap products below take 4 to 8 ms; from the first map larger than the kernel (4 x 4 for
    3x3, 8 x 8 for 5x5) oneDNN is the faster by 2 to 10x.

    Only channels_last inputs take this path: on a 2-core AVX-512 CPU (Zen 5), B0's training step at
    64 px (batch 32, fwd + bwd + AdamW, interleaved) ran 1.07x faster with it in channels_last but
    0.72x as fast in NCHW, where the per-tap products reduce across strided channels.
    """
    return height <= kernel[0] or width <= kernel[1]


class _DepthwiseSmallMap(torch.autograd.Function):
    """Depthwise convolution whose weight gradient is computed tap by tap.

    dL/dw[c, i, j] = sum over n, h, w of dy[n, c, h, w] * x_pad[n, c, h*s + i, w*s + j]: for each of
    the kernel's taps one product of the output gradient with a strided slice of the padded input,
    summed over batch and positions (memory order kept, so channels_last reduces along contiguous
    channels). The input gradient and the forward pass are ATen's own.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return F.conv2d(x, weight, bias, stride, padding, 1, weight.shape[0])

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        stride, padding = ctx.stride, ctx.padding
        channels = weight.shape[0]
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = torch.ops.aten.convolution_backward(
                dy, x, weight, None, list(stride), list(padding), [1, 1], False, [0, 0], channels,
                [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            kh, kw = weight.shape[-2:]
            oh, ow = dy.shape[-2:]
            sh, sw = stride
            xp = F.pad(x, [padding[1], padding[1], padding[0], padding[0]])
            taps = torch.empty(kh, kw, channels, dtype=dy.dtype, device=dy.device)
            for i in range(kh):
                for j in range(kw):
                    window = xp[:, :, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw]
                    taps[i, j] = (dy * window).sum((0, 2, 3))
            dw = taps.permute(2, 0, 1).unsqueeze(1).to(weight.dtype).contiguous()
            if weight.is_contiguous(memory_format=torch.channels_last):
                dw = dw.contiguous(memory_format=torch.channels_last)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy.sum((0, 2, 3))
        return dx, dw, db, None, None


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise convolution (``groups == in_channels == out_channels``, symmetric padding) that
    trains faster on CPU at small map sizes.

    Outputs are ``nn.Conv2d``'s exactly; only the weight gradient where the kernel spans the input
    map (:func:`kernel_covers_map`) is computed another way (equal up to float rounding). Its state
    dict is ``nn.Conv2d``'s.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.training and x.device.type == "cpu" and torch.is_grad_enabled() and self.weight.requires_grad
                and not torch.jit.is_scripting() and not torch.jit.is_tracing()):
            return self._forward_small_map(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    @torch.jit.unused
    def _forward_small_map(self, x: torch.Tensor) -> torch.Tensor:
        if (self.dilation != (1, 1) or not x.is_contiguous(memory_format=torch.channels_last)
                or not kernel_covers_map(self.kernel_size, x.shape[-2], x.shape[-1])):
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return _DepthwiseSmallMap.apply(x, self.weight, self.bias, self.stride, self.padding)


def make_conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False,
              padding: str = "symmetric") -> nn.Conv2d:
    """A convolution with the named padding convention.

    With stride 1 and an odd kernel both conventions pad ``kernel // 2`` on every side, so the
    plain (faster) convolution serves both.
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    if padding == "same" and stride > 1:
        return Conv2dSame(cin, cout, kernel, stride, groups=groups, bias=bias)
    if groups > 1 and groups == cin == cout:
        return DepthwiseConv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=bias)
    return nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=bias)


class ConvNormAct(nn.Sequential):
    """Convolution, BatchNorm and an optional activation (``act=None`` for a linear projection)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, *,
                 act: str | None, padding: str, bn_eps: float, bn_momentum: float) -> None:
        layers = [
            ("conv", make_conv(cin, cout, kernel, stride, groups, padding=padding)),
            ("bn", nn.BatchNorm2d(cout, eps=bn_eps, momentum=bn_momentum)),
        ]
        if act is not None:
            layers.append(("act", ACTIVATION_LAYERS[act]()))
        super().__init__(OrderedDict(layers))


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, 1x1 reduce, activation, 1x1 expand, sigmoid gate."""

    def __init__(self, channels: int, squeeze: int, act: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1, bias=True)
        self.act = ACTIVATION_LAYERS[act]()
        self.expand = nn.Conv2d(squeeze, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # adaptive pooling (not x.mean) exports as ONNX GlobalAveragePool, which ONNX Runtime runs
        # in its blocked fp32 layout and as an integer op in INT8 graphs; a ReduceMean there costs
        # a layout conversion per block (B0 INT8, batch 1, 224 px: 160 vs 134 img/s)
        s = F.adaptive_avg_pool2d(x, 1)
        s = self.expand(self.act(self.reduce(s)))
        return x * s.sigmoid()


class DropPath(nn.Module):
    """Stochastic depth on the residual branch, per sample; identity in eval mode."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = float(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        return stochastic_depth(x, self.rate, "row", training=True)

    def extra_repr(self) -> str:
        return f"rate={self.rate:.4f}"
