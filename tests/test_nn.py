"""Modules built from descriptions: padding, stochastic depth, norm settings, features, heads."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import effnet
from effnet.arch import EFFICIENTNET_B0, get_network, scale
from effnet.nn import Conv2dSame, DropPath, SqueezeExcite, build, make_block
from effnet.nn.blocks import NormOptions

TINY = scale(EFFICIENTNET_B0, width=0.25, depth=0.5, image_size=32, name="tiny")  # fast to build and run


def blocks_of(model):
    return [blk for stage in model.stages for blk in stage]


# ----- padding ---------------------------------------------------------------------------------
def tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME rule, from its documentation: output ceil(in / stride), the extra pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("size", [(15, 15), (16, 16), (17, 22), (32, 33), (7, 8)])
@pytest.mark.parametrize("kernel, stride", [(3, 2), (5, 2), (3, 1), (5, 1)])
def test_same_padding_equals_tensorflow_same(size, kernel, stride):
    torch.manual_seed(0)
    conv = Conv2dSame(4, 6, kernel, stride, bias=True)
    x = torch.randn(2, 4, *size)
    top, bottom = tf_same_pad(size[0], kernel, stride)
    left, right = tf_same_pad(size[1], kernel, stride)
    expected = F.conv2d(F.pad(x, (left, right, top, bottom)), conv.weight, conv.bias, stride)
    out = conv(x)
    assert out.shape[-2:] == (math.ceil(size[0] / stride), math.ceil(size[1] / stride))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_same_padding_model_differs_from_symmetric_on_even_inputs_only_through_strided_convs():
    torch.manual_seed(0)
    same = build(TINY, padding="same").eval()
    sym = build(TINY, padding="symmetric").eval()
    sym.load_state_dict(same.state_dict())
    strided = [m for m in same.modules() if isinstance(m, Conv2dSame)]
    assert strided and all(m.stride == (2, 2) for m in strided)
    assert not any(isinstance(m, Conv2dSame) for m in sym.modules())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert same(x).shape == sym(x).shape == (1, 1000)
        assert not torch.allclose(same(x), sym(x))  # even inputs: TF pads (0, 1), symmetric pads (1, 1)


@pytest.mark.parametrize("size", [(8, 8), (7, 7), (16, 9)])
def test_resnet_max_pool_follows_the_padding_convention(size):
    from effnet.nn.layers import MaxPool2dSame

    resnet_same = build(get_network("resnet50"), padding="same")
    assert isinstance(resnet_same.stem_pool, MaxPool2dSame)
    assert type(build(get_network("resnet50")).stem_pool) is nn.MaxPool2d
    x = torch.randn(1, 2, *size)
    top, bottom = tf_same_pad(size[0], 3, 2)
    left, right = tf_same_pad(size[1], 3, 2)
    expected = F.max_pool2d(F.pad(x, (left, right, top, bottom), value=float("-inf")), 3, 2)
    assert torch.equal(resnet_same.stem_pool(x), expected)
    # an even input: TensorFlow pads only after, so the first window starts at the first pixel
    ramp = torch.arange(64.0).view(1, 1, 8, 8)
    assert resnet_same.stem_pool(ramp)[0, 0, 0, 0] == 18.0 and nn.MaxPool2d(3, 2, 1)(ramp)[0, 0, 0, 0] == 9.0


def test_unknown_padding_is_rejected():
    with pytest.raises(ValueError, match="padding"):
        build(TINY, padding="valid")
    with pytest.raises(ValueError, match="padding"):
        effnet.create_model(TINY, padding="reflect")


# ----- stochastic depth --------------------------------------------------------------------------
def test_stochastic_depth_rises_linearly_and_only_residual_blocks_drop():
    model = build(EFFICIENTNET_B0, drop_path_rate=0.2)
    specs = list(EFFICIENTNET_B0.blocks())
    blocks = blocks_of(model)
    assert len(blocks) == len(specs) == 16
    for spec, blk in zip(specs, blocks):
        if spec.has_residual:
            assert isinstance(blk.drop_path, DropPath)
            assert blk.drop_path.rate == pytest.approx(0.2 * spec.index / 16)
        else:
            assert isinstance(blk.drop_path, nn.Identity)
    rates = [blk.drop_path.rate for blk in blocks if isinstance(blk.drop_path, DropPath)]
    assert rates == sorted(rates) and rates[-1] == pytest.approx(0.2 * 14 / 16)  # block 15 has no shortcut
    assert not any(isinstance(m, DropPath) for m in build(EFFICIENTNET_B0, drop_path_rate=0.0).modules())


def test_drop_path_is_identity_in_eval_and_unbiased_in_train():
    dp = DropPath(0.3)
    x = torch.ones(4000, 2, 1, 1)
    dp.eval()
    assert torch.equal(dp(x), x)
    dp.train()
    torch.manual_seed(0)
    y = dp(x)
    per_sample = y[:, 0, 0, 0]
    kept = per_sample[per_sample != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.7))
    assert torch.equal(y[:, 0], y[:, 1])  # the whole sample is dropped or kept
    assert per_sample.mean().item() == pytest.approx(1.0, abs=0.05)
    assert (per_sample == 0).float().mean().item() == pytest.approx(0.3, abs=0.03)


def test_in_train_mode_only_residual_blocks_vary_with_the_seed():
    model = build(TINY, drop_path_rate=0.9).train()
    specs = list(TINY.blocks())
    x = torch.randn(16, TINY.stem.out_channels, 16, 16)
    with torch.no_grad():
        for spec, blk in zip(specs, blocks_of(model)):
            outs = []
            for seed in range(6):
                torch.manual_seed(seed)
                outs.append(blk(x))
            varies = any(not torch.equal(outs[0], o) for o in outs[1:])
            assert varies == (spec.has_residual and spec.index > 0), spec
            blk.eval()
            torch.manual_seed(0)
            a = blk(x)
            torch.manual_seed(1)
            assert torch.equal(a, blk(x)), "eval mode is deterministic"
            blk.train()
            x = outs[0]


def test_drop_path_rate_is_validated():
    for bad in (1.0, -0.1, "0.2"):
        with pytest.raises(ValueError, match="drop_path_rate"):
            build(TINY, drop_path_rate=bad)


# ----- norm, dropout, activation -------------------------------------------------------------------
def test_batchnorm_defaults_are_the_papers():
    for model in (build(TINY), effnet.create_model(TINY)):
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        assert bns and all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)
    custom = effnet.create_model(TINY, bn_eps=1e-5, bn_momentum=0.1)
    assert all(m.eps == 1e-5 and m.momentum == 0.1 for m in custom.modules() if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize("key, rate", [("b0", 0.2), ("b2", 0.3), ("b4", 0.4), ("b6", 0.5), ("lite4", 0.3)])
def test_dropout_follows_the_variant(key, rate):
    with torch.device("meta"):
        model = effnet.create_model(f"efficientnet_{key}")
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == rate
    with torch.device("meta"):
        assert effnet.create_model(f"efficientnet_{key}", drop_rate=0.1).dropout.p == 0.1
        assert isinstance(effnet.create_model(f"efficientnet_{key}", drop_rate=0.0).dropout, nn.Identity)


def test_activation_and_squeeze_excite_follow_the_description():
    b0 = build(TINY)
    lite = build(TINY.replace(activation="relu6", stages=tuple(replace(s, se_ratio=0.0) for s in TINY.stages)))
    assert any(isinstance(m, nn.SiLU) for m in b0.modules()) and not any(isinstance(m, nn.ReLU6) for m in b0.modules())
    assert any(isinstance(m, SqueezeExcite) for m in b0.modules())
    assert any(isinstance(m, nn.ReLU6) for m in lite.modules()) and not any(isinstance(m, nn.SiLU) for m in lite.modules())
    assert not any(isinstance(m, SqueezeExcite) for m in lite.modules())


def test_squeeze_excite_width_comes_from_the_block_input():
    model = build(EFFICIENTNET_B0)
    for spec, blk in zip(EFFICIENTNET_B0.blocks(), blocks_of(model)):
        assert blk.se.reduce.out_channels == int(spec.in_channels * 0.25)
        assert blk.se.reduce.in_channels == spec.mid_channels


# ----- features ------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(64, 64), (250, 333)])
def test_features_only_gives_five_strides_with_their_channels(size):
    model = effnet.create_model("efficientnet_b0", features_only=True).eval()
    assert [f.reduction for f in model.feature_info] == [2, 4, 8, 16, 32]
    assert [f.channels for f in model.feature_info] == [16, 24, 40, 112, 320]
    with torch.no_grad():
        feats = model(torch.randn(1, 3, *size))
    assert len(feats) == 5
    for f, info in zip(feats, model.feature_info):
        assert f.shape == (1, info.channels, math.ceil(size[0] / info.reduction), math.ceil(size[1] / info.reduction))


def test_out_indices_select_levels():
    model = build(TINY, features_only=True, out_indices=(1, 3, -1)).eval()
    assert [f.reduction for f in model.feature_info] == [4, 16, 32]
    all_levels = build(TINY, features_only=True).feature_info
    assert model.feature_info == [all_levels[1], all_levels[3], all_levels[4]]
    with torch.no_grad():
        feats = model(torch.randn(2, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(i.channels, 64 // i.reduction, 64 // i.reduction)
                                                   for i in model.feature_info]
    for bad in ((5,), (-6,), (1.0,)):
        with pytest.raises(ValueError, match="out_indices"):
            build(TINY, features_only=True, out_indices=bad)


def test_features_of_resnet_include_the_stem_before_pooling():
    model = build(get_network("resnet50").replace(resolution=64), features_only=True)
    assert [(f.name, f.channels, f.reduction) for f in model.feature_info] == [
        ("stem", 64, 2), ("stages.0", 256, 4), ("stages.1", 512, 8), ("stages.2", 1024, 16), ("stages.3", 2048, 32),
    ]


def test_forward_features_and_head_compose_to_forward():
    torch.manual_seed(0)
    model = build(TINY).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, TINY.head_channels, 1, 1)
        torch.testing.assert_close(model.forward_head(feats), model(x))
        assert model.forward_head(feats, pre_logits=True).shape == (2, TINY.head_channels)


# ----- inputs and heads -------------------------------------------------------------------------------
@pytest.mark.parametrize("in_chans", [1, 4])
def test_other_input_channel_counts_build_and_run(in_chans):
    model = effnet.create_model(TINY, in_chans=in_chans).eval()
    assert model.stem.conv.in_channels == in_chans
    with torch.no_grad():
        assert model(torch.randn(2, in_chans, 32, 32)).shape == (2, 1000)
    with pytest.raises(ValueError, match="in_chans"):
        build(TINY, in_chans=0)


def test_num_classes_replaces_the_head():
    model = effnet.create_model(TINY, num_classes=10).eval()
    assert model.classifier.out_features == 10 and model.num_classes == 10
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    model.reset_classifier(3)
    assert model.classifier.out_features == 3 and model.desc.num_classes == 3
    # a new head starts at zero: the first loss is ln(3), whatever the features
    assert not model.classifier.weight.any() and not model.classifier.bias.any()
    model.reset_classifier(3, zero_init=False)
    assert model.classifier.weight.abs().max() <= 1 / 3**0.5 and model.classifier.weight.any()
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, TINY.head_channels)
    assert effnet.create_model(TINY).preprocessing.resolution == 32


def test_channels_last_gives_the_same_eval_output():
    torch.manual_seed(0)
    model = build(TINY).eval()
    x = torch.randn(2, 3, 48, 40)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)


def test_initialisation_is_deterministic_under_a_seed():
    torch.manual_seed(123)
    a = build(TINY).state_dict()
    torch.manual_seed(123)
    b = build(TINY).state_dict()
    torch.manual_seed(124)
    c = build(TINY).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point() and a[k].numel() > 1)


def test_initialisation_follows_the_reference_scheme():
    torch.manual_seed(0)
    model = build(EFFICIENTNET_B0)
    head = model.head.conv  # 1x1, 320 -> 1280: fan_out 1280
    assert head.weight.std().item() == pytest.approx(math.sqrt(2 / 1280), rel=0.05)
    dw = blocks_of(model)[-1].dw.conv  # depthwise 3x3: fan_out 9
    assert dw.weight.std().item() == pytest.approx(math.sqrt(2 / 9), rel=0.05)
    bound = 1 / math.sqrt(1000)
    assert model.classifier.weight.abs().max().item() <= bound and model.classifier.bias.abs().max().item() == 0
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in bns)


def test_blocks_build_from_a_single_spec():
    spec = next(b for b in EFFICIENTNET_B0.blocks() if b.index == 2)
    blk = make_block(spec, NormOptions(), drop_path_rate=0.0).eval()
    x = torch.randn(1, spec.in_channels, 8, 8)
    with torch.no_grad():
        assert blk(x).shape == (1, spec.out_channels, 8, 8)


def test_build_rejects_what_is_not_a_description():
    with pytest.raises(ValueError, match="Network"):
        build("efficientnet_b0")


# ----- inference fast path --------------------------------------------------------------------------
def _with_real_batchnorm_statistics(model: nn.Module) -> nn.Module:
    """Random BatchNorm statistics and affine parameters, so that folding them changes the weights."""
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model


@pytest.mark.parametrize("desc, padding", [(TINY, "symmetric"), (TINY, "same"),
                                           (get_network("resnet50").replace(resolution=32), "symmetric")])
def test_optimize_for_inference_keeps_the_outputs(desc, padding):
    torch.manual_seed(0)
    model = _with_real_batchnorm_statistics(build(desc, padding=padding)).eval()
    model.preprocessing = "kept"
    fast = model.optimize_for_inference()
    assert fast is not model and fast.preprocessing == "kept"
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the original is left alone"
    assert fast.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not fast.training
    x = torch.randn(2, 3, 37, 32)
    with torch.inference_mode():
        ref = model(x)
        for inp in (x, x.contiguous(memory_format=torch.channels_last)):
            out = fast(inp)
            assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()


def test_optimize_for_inference_in_place_and_without_channels_last():
    torch.manual_seed(0)
    model = _with_real_batchnorm_statistics(build(TINY, features_only=True)).train()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = model.eval()(x)
    same = model.train().optimize_for_inference(channels_last=False, inplace=True)
    assert same is model and not model.training
    assert model.stem.conv.weight.is_contiguous() and model.stem.conv.bias is not None
    with torch.no_grad():
        for a, b in zip(model(x), ref):
            assert (a - b).abs().max() <= 1e-4 * b.abs().max()
