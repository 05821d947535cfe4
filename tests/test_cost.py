"""The analytic cost model against published counts and against a count taken on built modules.

FLOPs here, as in the paper, are multiply-adds.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from effnet.arch import EFFICIENTNET_B0, Network, Stage, Stem, cost, get_network, list_networks, scale
from effnet.nn import build

# torchvision's published metadata: trainable parameters and GMACs at its eval crop
# (B2 is published at 288 px, not its native 260).
TORCHVISION = {
    "efficientnet_b0": (5288548, 0.386, 224),
    "efficientnet_b1": (7794184, 0.687, 240),
    "efficientnet_b2": (9109994, 1.088, 288),
    "efficientnet_b3": (12233232, 1.827, 300),
    "efficientnet_b4": (19341616, 4.394, 380),
    "efficientnet_b5": (30389784, 10.266, 456),
    "efficientnet_b6": (43040704, 19.068, 528),
    "efficientnet_b7": (66347960, 37.746, 600),
}
# The paper's Table 2: FLOPs (billions of multiply-adds) and parameters (millions).
PAPER_TABLE2 = {
    "efficientnet_b0": (0.39, 5.3), "efficientnet_b1": (0.70, 7.8), "efficientnet_b2": (1.0, 9.2),
    "efficientnet_b3": (1.8, 12), "efficientnet_b4": (4.2, 19), "efficientnet_b5": (9.9, 30),
    "efficientnet_b6": (19, 43), "efficientnet_b7": (37, 66),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_b_variants_match_torchvision_params_and_macs(name):
    params, gmacs, crop = TORCHVISION[name]
    net = get_network(name)
    assert cost(net).params == params
    assert cost(net, crop).gmacs == pytest.approx(gmacs, rel=0.01)


@pytest.mark.parametrize("name", sorted(PAPER_TABLE2))
def test_b_variants_within_ten_percent_of_paper_table_2(name):
    flops_b, params_m = PAPER_TABLE2[name]
    c = cost(get_network(name))  # at the variant's own resolution
    assert c.gmacs == pytest.approx(flops_b, rel=0.10)
    assert c.mparams == pytest.approx(params_m, rel=0.10)


def test_other_families_match_their_reference_counts():
    assert cost(get_network("mobilenet_v2")).params == 3504872  # torchvision mobilenet_v2
    r50 = cost(get_network("resnet50"))
    assert r50.params == 25557032  # torchvision resnet50
    assert r50.gmacs == pytest.approx(4.09, rel=0.01)
    assert cost(get_network("mobilenet_v2")).gmacs == pytest.approx(0.30, rel=0.02)  # paper Table 3: 0.3B
    assert cost(get_network("mobilenet_v1")).gmacs == pytest.approx(0.57, rel=0.02)  # MobileNet paper: 569M
    assert cost(get_network("mobilenet_v1")).params == 4231976
    assert cost(get_network("efficientnet_lite0")).params == 4652008  # timm efficientnet_lite0


def test_cost_grows_about_as_d_w2_r2():
    base = cost(EFFICIENTNET_B0).macs
    assert cost(EFFICIENTNET_B0, 448).macs / base == pytest.approx(4.0, rel=0.02)
    deeper = scale(EFFICIENTNET_B0, depth=2.0)
    assert 1.6 < cost(deeper).macs / base < 2.1  # the stem and head do not deepen
    wider = scale(EFFICIENTNET_B0, width=2.0)
    assert 3.5 < cost(wider).macs / base < 4.1  # the stem input stays at 3 channels


def test_cost_rejects_bad_resolutions():
    for bad in (0, -3, (224,), (224, 0), 22.4, True, "224"):
        with pytest.raises(ValueError, match="resolution"):
            cost(EFFICIENTNET_B0, bad)


def test_cost_of_non_square_input_and_more_input_channels():
    c = cost(EFFICIENTNET_B0, (224, 320))
    assert c.resolution == (224, 320)
    assert cost(EFFICIENTNET_B0, 224).macs < c.macs < cost(EFFICIENTNET_B0, 320).macs
    # the stem weight grows by 32*3*3 per extra input channel, its multiply-adds by that per output pixel
    assert cost(EFFICIENTNET_B0, 224, in_chans=4).params - cost(EFFICIENTNET_B0, 224).params == 32 * 9
    assert cost(EFFICIENTNET_B0, 224, in_chans=4).macs - cost(EFFICIENTNET_B0, 224).macs == 32 * 9 * 112 * 112


# ----- an independent count taken on a built module ---------------------------------------------
def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of every Conv2d and Linear, counted with forward hooks on the real module."""
    total = 0

    def conv_hook(m: nn.Conv2d, inp, out):
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() // out.shape[0] * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inp, out):
        nonlocal total
        total += m.in_features * m.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


MIXED = Network(
    name="mixed",
    stem=Stem(out_channels=16, kernel=5, stride=2, pool=True),
    stages=(
        Stage("conv", 1, 3, 1, 16, 1, se_ratio=0.5),
        Stage("dsconv", 1, 5, 2, 24, 2, se_ratio=0.25),
        Stage("mbconv", 3, 3, 2, 32, 2, skip=False),
        Stage("bottleneck", 0.5, 3, 2, 48, 2, se_ratio=0.25),
    ),
    head_channels=64,
    resolution=64,
    dropout=0.0,
    activation="relu",
    num_classes=10,
)

SMALL_CASES = [
    ("b0@64", EFFICIENTNET_B0, 64),
    ("b0@48x80", EFFICIENTNET_B0, (48, 80)),
    ("b0@odd 45x61", EFFICIENTNET_B0, (45, 61)),
    ("phi=1.5@56", scale(EFFICIENTNET_B0, phi=1.5), 56),
    ("phi=-1@40", scale(EFFICIENTNET_B0, phi=-1), 40),
    ("lite2@64", get_network("efficientnet_lite2"), 64),
    ("mobilenet_v1@64", get_network("mobilenet_v1"), 64),
    ("mobilenet_v2@64", get_network("mobilenet_v2"), 64),
    ("resnet50@64", get_network("resnet50"), 64),
    ("mixed@64", MIXED, 64),
]


@pytest.mark.parametrize("label, desc, res", SMALL_CASES, ids=[c[0] for c in SMALL_CASES])
def test_analytic_macs_equal_hook_count_on_a_built_module(label, desc, res):
    torch.manual_seed(0)
    # TensorFlow 'SAME' padding gives the same output sizes as symmetric padding, so the same count
    padding = "same" if "odd" in label or "mixed" in label else "symmetric"
    model = build(desc, padding=padding, drop_path_rate=0.0).eval()
    h, w = (res, res) if isinstance(res, int) else res
    assert count_macs(model, torch.randn(2, 3, h, w)) == cost(desc, res).macs
    assert sum(p.numel() for p in model.parameters()) == cost(desc, res).params


@pytest.mark.parametrize("name", [n for n in list_networks() if n != "efficientnet_l2"])
def test_analytic_cost_equals_module_count_at_native_resolution(name):
    # On the meta device modules have shapes but no storage: the forward computes only shapes.
    desc = get_network(name)
    with torch.device("meta"):
        model = build(desc).eval()
        x = torch.empty(1, 3, desc.resolution, desc.resolution)
    c = cost(desc)
    assert sum(p.numel() for p in model.parameters()) == c.params
    assert count_macs(model, x) == c.macs


def test_l2_parameter_count_of_the_built_module():
    desc = get_network("efficientnet_l2")
    with torch.device("meta"):
        model = build(desc)
    assert sum(p.numel() for p in model.parameters()) == cost(desc).params == 480309308


def test_module_count_with_other_class_and_channel_counts():
    desc = EFFICIENTNET_B0.replace(num_classes=5)
    model = build(desc, in_chans=1).eval()
    assert count_macs(model, torch.randn(1, 1, 32, 32)) == cost(desc, 32, in_chans=1).macs
    assert sum(p.numel() for p in model.parameters()) == cost(desc, 32, in_chans=1).params
