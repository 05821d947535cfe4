"""DepthwiseConv2d: the same outputs and gradients as nn.Conv2d, with its own weight gradient where the kernel spans the map."""
import pytest
import torch
from torch import nn

from effnet import create_model
from effnet.nn import DepthwiseConv2d
from effnet.nn.layers import kernel_covers_map


def _pair(channels, kernel, stride, bias):
    ref = nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=bias)
    ours = DepthwiseConv2d(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=bias)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


@pytest.mark.parametrize("kernel,stride,size,bias,channels_last", [
    (5, 1, 2, False, True), (3, 1, 2, True, False), (5, 2, 4, False, False), (5, 2, 7, True, True),
    (3, 2, 8, False, True), (3, 1, 1, False, False), (5, 1, 4, True, True), (3, 2, 3, False, True),
    (3, 1, 3, True, False), (5, 2, 5, False, True),
])
def test_small_map_gradients_equal_conv2d(kernel, stride, size, bias, channels_last):
    torch.manual_seed(0)
    ref, ours = _pair(6, kernel, stride, bias)
    x = torch.randn(3, 6, size, size)
    if channels_last:
        ref, ours = ref.to(memory_format=torch.channels_last), ours.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    grads = []
    for conv in (ref, ours):
        xi = x.clone().requires_grad_()
        out = conv(xi)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        grads.append((out.detach(), xi.grad, conv.weight.grad, conv.bias.grad if bias else None))
    (o1, gx1, gw1, gb1), (o2, gx2, gw2, gb2) = grads
    assert torch.equal(o1, o2)
    assert torch.allclose(gx1, gx2, atol=1e-5)
    assert gw2.shape == gw1.shape and torch.allclose(gw1, gw2, atol=1e-5)
    if bias:
        assert torch.allclose(gb1, gb2, atol=1e-5)


def test_only_channels_last_maps_the_kernel_spans_take_the_own_gradient(monkeypatch):
    from effnet.nn import layers

    calls = []
    monkeypatch.setattr(layers._DepthwiseSmallMap, "apply", lambda *a: calls.append(a) or nn.functional.conv2d(
        a[0], a[1], a[2], a[3], a[4], 1, a[1].shape[0]))
    conv = DepthwiseConv2d(4, 4, 3, 1, 1, groups=4)

    def nhwc(*shape):
        return torch.randn(*shape).contiguous(memory_format=torch.channels_last).requires_grad_()
    conv(nhwc(2, 4, 3, 3))  # the 3x3 kernel spans the 3x3 map: own gradient
    conv(nhwc(2, 4, 8, 3))  # spans the width: own gradient
    assert len(calls) == 2
    conv(torch.randn(2, 4, 3, 3, requires_grad=True))  # NCHW: ATen's (the per-tap sums were slower there)
    conv(nhwc(2, 4, 4, 4))  # 4 x 4 is larger than the kernel: ATen's
    conv.eval()
    conv(nhwc(2, 4, 2, 2))  # eval mode: ATen's
    assert len(calls) == 2
    five = DepthwiseConv2d(4, 4, 5, 2, 2, groups=4)
    assert kernel_covers_map(five.kernel_size, 4, 4) and not kernel_covers_map(five.kernel_size, 8, 8)


def test_model_uses_it_for_depthwise_convolutions_and_scripts():
    model = create_model("efficientnet_b0", num_classes=3)
    dws = [m for m in model.modules() if isinstance(m, DepthwiseConv2d)]
    assert len(dws) == 16 and all(m.groups == m.in_channels == m.out_channels for m in dws)
    scripted = torch.jit.script(model.eval())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)
