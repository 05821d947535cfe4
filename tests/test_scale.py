"""Rounding rules and compound scaling, as properties over many inputs."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from effnet.arch import (
    EFFICIENTNET_B0,
    EFFICIENTNET_LITE0,
    Network,
    Stage,
    Stem,
    compound_multipliers,
    get_network,
    implied_phi,
    list_networks,
    make_divisible,
    official_vs_formula,
    round_filters,
    round_repeats,
    scale,
)

BASES = [EFFICIENTNET_B0, EFFICIENTNET_LITE0, get_network("mobilenet_v1"), get_network("mobilenet_v2"),
         get_network("resnet50")]
base_networks = st.sampled_from(BASES)
phis = st.floats(min_value=-3.0, max_value=6.0, allow_nan=False)


# ----- rounding ----------------------------------------------------------------------------
def test_round_filters_matches_the_reference_rule_on_known_values():
    # max(8, int(c*w + 4) // 8 * 8), plus 8 when that lost more than 10%
    assert round_filters(32, 1.1) == 32  # 35.2 -> 32 (>= 31.7)
    assert round_filters(40, 1.1) == 48  # 44 -> 48
    assert round_filters(1280, 1.1) == 1408
    assert round_filters(16, 0.5) == 8
    assert round_filters(12, 1.0) == 16  # 12 -> 16, never below 90%
    assert make_divisible(10.0) == 16  # 8 would lose 20%
    assert make_divisible(3.0) == 8
    assert round_repeats(3, 1.1) == 4 and round_repeats(1, 3.1) == 4 and round_repeats(4, 1.0) == 4


@settings(max_examples=300, deadline=None)
@given(value=st.floats(min_value=0.0, max_value=1e5, allow_nan=False),
       divisor=st.sampled_from([1, 2, 4, 8, 16, 32]))
def test_make_divisible_is_a_multiple_close_to_the_value(value, divisor):
    out = make_divisible(value, divisor)
    assert isinstance(out, int)
    assert out % divisor == 0
    assert out >= divisor
    assert out >= 0.9 * value


@settings(max_examples=300, deadline=None)
@given(channels=st.integers(min_value=1, max_value=4096),
       w1=st.floats(min_value=0.05, max_value=8.0), w2=st.floats(min_value=0.05, max_value=8.0),
       divisor=st.sampled_from([4, 8, 16]))
def test_round_filters_is_monotone_in_the_multiplier(channels, w1, w2, divisor):
    lo, hi = sorted((w1, w2))
    a, b = round_filters(channels, lo, divisor), round_filters(channels, hi, divisor)
    assert a <= b
    for out, w in ((a, lo), (b, hi)):
        assert out % divisor == 0 and out >= divisor and out >= 0.9 * channels * w


@settings(max_examples=200, deadline=None)
@given(repeats=st.integers(min_value=1, max_value=20), d1=st.floats(min_value=0.01, max_value=10.0),
       d2=st.floats(min_value=0.01, max_value=10.0))
def test_round_repeats_rounds_up_and_is_monotone(repeats, d1, d2):
    lo, hi = sorted((d1, d2))
    assert round_repeats(repeats, lo) <= round_repeats(repeats, hi)
    assert round_repeats(repeats, lo) >= repeats * lo
    assert round_repeats(repeats, lo) >= 1


# ----- compound scaling ----------------------------------------------------------------------
def _shape(net: Network):
    return (net.stem.out_channels, [s.out_channels for s in net.stages], [s.repeats for s in net.stages],
            net.head_channels, net.resolution)


@pytest.mark.parametrize("name", list_networks())
def test_phi_zero_is_identity_on_every_registered_network(name):
    net = get_network(name)
    scaled = scale(net, phi=0)
    assert _shape(scaled) == _shape(net)
    assert scaled.replace(name=net.name) == net


@settings(max_examples=150, deadline=None)
@given(base=base_networks, phi=phis)
def test_fractional_and_negative_phi_give_valid_networks(base, phi):
    net = scale(base, phi=phi)
    assert Network.from_json(net.to_json()) == net  # validates every field again
    assert all(s.repeats >= 1 and s.out_channels % base.divisor == 0 for s in net.stages)
    assert net.resolution == int(round(base.resolution * 1.15**phi))
    assert net.activation == base.activation and net.dropout == base.dropout


@settings(max_examples=150, deadline=None)
@given(base=base_networks, p1=phis, p2=phis)
def test_scaling_is_monotone_in_phi(base, p1, p2):
    lo, hi = sorted((p1, p2))
    a, b = scale(base, phi=lo), scale(base, phi=hi)
    assert a.stem.out_channels <= b.stem.out_channels
    assert all(x.out_channels <= y.out_channels for x, y in zip(a.stages, b.stages))
    assert all(x.repeats <= y.repeats for x, y in zip(a.stages, b.stages))
    assert a.resolution <= b.resolution
    if a.head_channels is not None:
        assert a.head_channels <= b.head_channels


@settings(max_examples=100, deadline=None)
@given(phi=phis)
def test_lite_scaling_keeps_stem_head_and_outer_depths(phi):
    net = scale(EFFICIENTNET_LITE0, phi=phi)
    assert net.stem == EFFICIENTNET_LITE0.stem
    assert net.head_channels == 1280
    assert net.stages[0].repeats == 1 and net.stages[-1].repeats == 1
    assert all(s.se_ratio == 0 for s in net.stages) and net.activation == "relu6"


@st.composite
def small_networks(draw):
    divisor = draw(st.sampled_from([4, 8]))
    n = draw(st.integers(min_value=1, max_value=5))
    stages = tuple(
        Stage(draw(st.sampled_from(["mbconv", "dsconv", "conv"])), draw(st.sampled_from([1, 3, 6])),
              draw(st.sampled_from([3, 5])), draw(st.sampled_from([1, 2])),
              divisor * draw(st.integers(min_value=1, max_value=40)), draw(st.integers(min_value=1, max_value=5)),
              draw(st.sampled_from([0.0, 0.25])))
        for _ in range(n)
    )
    head = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=200).map(lambda c: c * divisor)))
    return Network(name="random", stem=Stem(divisor * draw(st.integers(1, 16))), stages=stages,
                   head_channels=head, resolution=draw(st.integers(16, 512)), dropout=0.1, divisor=divisor)


@settings(max_examples=100, deadline=None)
@given(net=small_networks(), phi=phis)
def test_scaling_any_divisible_description(net, phi):
    assert _shape(scale(net, phi=0)) == _shape(net)
    scaled = scale(net, phi=phi)
    m = compound_multipliers(phi)
    for s0, s1 in zip(net.stages, scaled.stages):
        assert s1.repeats == math.ceil(s0.repeats * m.depth)
        assert s1.out_channels == round_filters(s0.out_channels, m.width, net.divisor)
        assert (s1.op, s1.kernel, s1.stride, s1.expand_ratio, s1.se_ratio) == (
            s0.op, s0.kernel, s0.stride, s0.expand_ratio, s0.se_ratio)


def test_phi_one_doubles_flops_about():
    m = compound_multipliers(1.0)
    assert (m.depth, m.width, m.resolution) == pytest.approx((1.2, 1.1, 1.15))
    assert m.flops_factor == pytest.approx(1.92, abs=0.01)
    assert compound_multipliers(3.0).flops_factor == pytest.approx(m.flops_factor**3, rel=1e-9)


def test_explicit_depth_width_resolution():
    net = scale(EFFICIENTNET_B0, depth=2.0, width=0.5, resolution=1.5)
    assert [s.repeats for s in net.stages] == [2, 4, 4, 6, 6, 8, 2]
    assert [s.out_channels for s in net.stages] == [8, 16, 24, 40, 56, 96, 160]
    assert net.stem.out_channels == 16 and net.head_channels == 640
    assert net.resolution == 336
    only_depth = scale(EFFICIENTNET_B0, depth=1.5)
    assert [s.out_channels for s in only_depth.stages] == [s.out_channels for s in EFFICIENTNET_B0.stages]
    assert only_depth.resolution == 224
    sized = scale(EFFICIENTNET_B0, width=1.0, image_size=97, dropout=0.4, name="tiny")
    assert (sized.resolution, sized.dropout, sized.name) == (97, 0.4, "tiny")


def test_scaled_b_variants_follow_the_formula_not_the_table():
    # phi=1 with (1.2, 1.1, 1.15) gives depth 1.2, width 1.1, resolution 258: B2's shapes at 258 px
    net = scale(EFFICIENTNET_B0, phi=1)
    b2 = get_network("efficientnet_b2")
    assert [s.out_channels for s in net.stages] == [s.out_channels for s in b2.stages]
    assert [s.repeats for s in net.stages] == [s.repeats for s in b2.stages]
    assert net.resolution == 258 and b2.resolution == 260


@pytest.mark.parametrize("name, value", [("alpha", 0.9), ("beta", 0.5), ("gamma", 0.99)])
def test_coefficients_below_one_are_rejected_by_name(name, value):
    with pytest.raises(ValueError, match=f"{name} .*{value}"):
        scale(EFFICIENTNET_B0, phi=1, **{name: value})


@pytest.mark.parametrize("name", ["phi", "alpha", "beta", "gamma"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_rejected_by_name(name, value):
    kwargs = {"phi": 1.0, name: value}
    with pytest.raises(ValueError, match=f"{name} must be a finite number, got {value!r}"):
        scale(EFFICIENTNET_B0, **kwargs)


@pytest.mark.parametrize("name", ["depth", "width", "resolution"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0, -1.0, "2"])
def test_bad_explicit_multipliers_are_rejected_by_name(name, value):
    with pytest.raises(ValueError, match=name):
        scale(EFFICIENTNET_B0, **{name: value})


def test_bad_scale_combinations_are_value_errors():
    with pytest.raises(ValueError, match="either phi or explicit"):
        scale(EFFICIENTNET_B0, phi=1, depth=2.0)
    with pytest.raises(ValueError, match="image_size"):
        scale(EFFICIENTNET_B0, phi=1, image_size=0)
    with pytest.raises(ValueError, match="rounds to 0 pixels"):
        scale(EFFICIENTNET_B0, resolution=1e-4)
    with pytest.raises(ValueError, match="phi"):
        scale(EFFICIENTNET_B0, phi=1e4)  # the multipliers overflow a float
    with pytest.raises(ValueError, match="width multiplier"):
        scale(EFFICIENTNET_B0, width=1e300)
    with pytest.raises(ValueError, match="depth multiplier"):
        scale(EFFICIENTNET_B0, phi=100)


def test_implied_phi_of_the_official_table():
    rows = {r["name"]: r for r in official_vs_formula()}
    assert list(rows) == [f"efficientnet_{k}" for k in ("b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "l2")]
    assert rows["efficientnet_b0"]["phi_depth"] == 0 and rows["efficientnet_b0"]["phi_width"] == 0
    assert rows["efficientnet_b1"]["phi_depth"] == pytest.approx(0.52, abs=0.01)
    assert rows["efficientnet_b1"]["phi_width"] == 0
    assert rows["efficientnet_b1"]["phi_resolution"] == pytest.approx(0.49, abs=0.01)
    assert rows["efficientnet_b2"]["phi_depth"] == pytest.approx(1.0)
    assert rows["efficientnet_b2"]["phi_width"] == pytest.approx(1.0)
    assert rows["efficientnet_b7"]["phi_width"] == pytest.approx(7.27, abs=0.01)
    for dim in ("phi_depth", "phi_width", "phi_resolution"):
        values = [r[dim] for r in rows.values()]
        assert values == sorted(values), f"{dim} rises with the variant"
    assert implied_phi(1.1**2, 1.2**2, 224 * 1.15**2) == pytest.approx(
        {"depth": 2.0, "width": 2.0, "resolution": 2.0})
