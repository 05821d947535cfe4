"""The architecture search space: choice vectors <-> descriptions, validity, cost."""
from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from effnet.arch import EFFICIENTNET_B0, MOBILENET_V2, Stage, Stem, cost
from effnet.nn import build
from effnet.archsearch.space import BASES, FIELDS, ArchSpace, filter_options, reward

SPACES = {b: ArchSpace(b, resolution=32, num_classes=4) for b in BASES}


def vectors(space: ArchSpace):
    return st.tuples(*(st.integers(0, n - 1) for n in space.sizes))


def test_space_has_six_decisions_per_stage_with_the_paper_choices():
    space = SPACES["efficientnet_b0"]
    assert len(space) == 6 * len(EFFICIENTNET_B0.stages)
    by_field = {d.field: d.choices for d in space.decisions if d.stage == 3}
    assert by_field["op"] == ("conv", "dsconv", "mbconv1", "mbconv3", "mbconv6")
    assert by_field["kernel"] == (3, 5)
    assert by_field["se"] == (0.0, 0.25)
    assert by_field["skip"] == (False, True)
    assert by_field["filters"] == (0.75, 1.0, 1.25)
    assert by_field["layers"] == (-1, 0, 1)


def test_single_block_stage_offers_no_layer_removal():
    space = SPACES["efficientnet_b0"]
    first = {d.field: d.choices for d in space.decisions if d.stage == 0}
    assert EFFICIENTNET_B0.stages[0].repeats == 1
    assert first["layers"] == (0, 1)


def test_filter_ratios_that_round_to_the_same_width_are_offered_once():
    # 16 * 0.75 = 12 rounds up to 16 (make_divisible), the same as x1.0: keep the ratio 1.0
    assert filter_options(16) == ((1.0, 16), (1.25, 24))
    assert filter_options(40) == ((0.75, 32), (1.0, 40), (1.25, 48))


@pytest.mark.parametrize("base", BASES)
def test_base_choices_decode_to_the_base_network(base):
    space = SPACES[base]
    desc = space.decode(space.base_choices())
    assert desc.stages == space.base.stages
    assert desc.stem == space.base.stem and desc.head_channels == space.base.head_channels
    assert desc.resolution == 32 and desc.num_classes == 4


@pytest.mark.parametrize("base", BASES)
def test_encode_inverts_decode_for_random_vectors(base):
    space = SPACES[base]
    rng = random.Random(0)
    for _ in range(300):
        choices = space.sample(rng)
        desc = space.decode(choices)
        assert space.encode(desc) == choices
        assert space.from_values(space.values(choices)) == choices
        # and the description survives JSON
        assert space.encode(type(desc).from_json(desc.to_json())) == choices


def test_every_single_change_from_the_base_gives_a_different_description():
    space = SPACES["efficientnet_b0"]
    base = space.base_choices()
    seen = {space.decode(base).stages}
    for i, n in enumerate(space.sizes):
        for c in range(n):
            if c == base[i]:
                continue
            v = list(base)
            v[i] = c
            stages = space.decode(v).stages
            assert stages not in seen, f"decision {space.decisions[i].name}={c} collides"
            seen.add(stages)
    assert len(seen) == 1 + sum(n - 1 for n in space.sizes)


def test_decode_sets_each_field_of_a_stage():
    space = SPACES["efficientnet_b0"]
    v = list(space.base_choices())
    per = len(FIELDS)
    stage = 2  # base: mbconv6 k5 SE0.25 skip, 40 channels x 2
    v[stage * per:(stage + 1) * per] = [1, 0, 0, 0, 2, 2]  # dsconv, k3, no SE, no skip, x1.25, +1 layer
    got = space.decode(v).stages[stage]
    assert got == Stage("dsconv", 1.0, 3, 2, 48, 3, se_ratio=0.0, skip=False)


@pytest.mark.parametrize("change", [
    {"stem": Stem(out_channels=24)},
    {"head_channels": 1000},
    {"stages": EFFICIENTNET_B0.stages[:-1]},
    {"stages": (Stage("mbconv", 4, 3, 1, 16, 1, 0.25),) + EFFICIENTNET_B0.stages[1:]},  # expansion 4
    {"stages": (Stage("mbconv", 1, 7, 1, 16, 1, 0.25),) + EFFICIENTNET_B0.stages[1:]},  # kernel 7
    {"stages": (Stage("mbconv", 1, 3, 1, 17, 1, 0.25),) + EFFICIENTNET_B0.stages[1:]},  # 17 channels
    {"stages": (Stage("mbconv", 1, 3, 1, 16, 3, 0.25),) + EFFICIENTNET_B0.stages[1:]},  # +2 layers
    {"stages": (Stage("mbconv", 1, 3, 2, 16, 1, 0.25),) + EFFICIENTNET_B0.stages[1:]},  # other stride
])
def test_descriptions_outside_the_space_are_refused(change):
    space = SPACES["efficientnet_b0"]
    with pytest.raises(ValueError):
        space.encode(EFFICIENTNET_B0.replace(**change))


def test_mobilenet_v2_description_is_not_in_the_b0_space():
    with pytest.raises(ValueError, match="channels|activation"):
        SPACES["efficientnet_b0"].encode(MOBILENET_V2)


@pytest.mark.parametrize("bad", [(0,) * 3, (99,) * 42, (True,) + (0,) * 41, (-1,) + (0,) * 41])
def test_bad_choice_vectors_are_refused(bad):
    with pytest.raises(ValueError):
        SPACES["efficientnet_b0"].decode(bad)


def test_unknown_base_is_refused():
    with pytest.raises(ValueError, match="base"):
        ArchSpace("resnet50")


def _measured(model: torch.nn.Module, resolution: int) -> tuple[int, int]:
    """Parameters, and multiply-adds counted by forward hooks on every conv and linear layer."""
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        if isinstance(module, torch.nn.Conv2d):
            per_output = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
            macs += output[0].numel() * per_output  # output[0]: one image
        else:
            macs += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, resolution, resolution))
    for h in handles:
        h.remove()
    return sum(p.numel() for p in model.parameters()), macs


@pytest.mark.parametrize("base", BASES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_sampled_architectures_build_and_their_measured_cost_equals_the_analytic_cost(base, data):
    space = SPACES[base]
    choices = data.draw(vectors(space))
    desc = space.decode(choices)
    model = build(desc)
    params, macs = _measured(model, 32)
    analytic = cost(desc, 32)
    assert (params, macs) == (analytic.params, analytic.macs)
    assert space.cost(choices) == analytic


def test_reward_is_accuracy_at_the_target_and_penalises_flops_above_it():
    assert reward(0.8, 400e6, 400e6) == pytest.approx(0.8)
    assert reward(0.8, 800e6, 400e6) == pytest.approx(0.8 * 2 ** -0.07)
    assert reward(0.8, 200e6, 400e6) > 0.8
    assert reward(0.8, 800e6, 400e6, w=0.0) == pytest.approx(0.8)


@pytest.mark.parametrize("target", [0, -1, float("nan"), float("inf")])
def test_reward_refuses_a_non_positive_or_non_finite_target(target):
    with pytest.raises(ValueError, match="target"):
        reward(0.5, 1e6, target)
