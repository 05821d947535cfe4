"""Network descriptions: the B0 table, the official variants, JSON round-trip and validation."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from effnet.arch import (
    EFFICIENTNET_B0,
    EFFICIENTNET_LITE0,
    Network,
    Stage,
    Stem,
    get_network,
    list_networks,
)

# The paper's Table 1 (and the reference code's block arguments):
# op, expand ratio, kernel, stride, output channels, repeats, squeeze-excite ratio.
B0_STAGES = [
    ("mbconv", 1, 3, 1, 16, 1, 0.25),
    ("mbconv", 6, 3, 2, 24, 2, 0.25),
    ("mbconv", 6, 5, 2, 40, 2, 0.25),
    ("mbconv", 6, 3, 2, 80, 3, 0.25),
    ("mbconv", 6, 5, 1, 112, 3, 0.25),
    ("mbconv", 6, 5, 2, 192, 4, 0.25),
    ("mbconv", 6, 3, 1, 320, 1, 0.25),
]

# Released (width, depth, resolution, dropout) of each variant.
OFFICIAL = {
    "b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5), "b8": (2.2, 3.6, 672, 0.5),
    "l2": (4.3, 5.3, 800, 0.5),
}
LITE = {
    "lite0": (1.0, 1.0, 224, 0.2), "lite1": (1.0, 1.1, 240, 0.2), "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3), "lite4": (1.4, 1.8, 300, 0.3),
}

# Stem, per-stage channels, per-stage repeats and head of the released models (as in the
# reference code's printed model summaries and torchvision's/timm's builders).
VARIANT_SHAPES = {
    "b1": (32, [16, 24, 40, 80, 112, 192, 320], [2, 3, 3, 4, 4, 5, 2], 1280),
    "b2": (32, [16, 24, 48, 88, 120, 208, 352], [2, 3, 3, 4, 4, 5, 2], 1408),
    "b3": (40, [24, 32, 48, 96, 136, 232, 384], [2, 3, 3, 5, 5, 6, 2], 1536),
    "b4": (48, [24, 32, 56, 112, 160, 272, 448], [2, 4, 4, 6, 6, 8, 2], 1792),
    "b5": (48, [24, 40, 64, 128, 176, 304, 512], [3, 5, 5, 7, 7, 9, 3], 2048),
    "b6": (56, [32, 40, 72, 144, 200, 344, 576], [3, 6, 6, 8, 8, 11, 3], 2304),
    "b7": (64, [32, 48, 80, 160, 224, 384, 640], [4, 7, 7, 10, 10, 13, 4], 2560),
    "lite4": (32, [24, 32, 56, 112, 160, 272, 448], [1, 4, 4, 6, 6, 8, 1], 1280),
}


def test_importing_arch_does_not_import_torch():
    code = "import sys, effnet.arch, effnet; effnet.arch.cost(effnet.arch.get_network('efficientnet_b3')); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_b0_matches_the_paper_table():
    b0 = get_network("efficientnet_b0")
    rows = [(s.op, s.expand_ratio, s.kernel, s.stride, s.out_channels, s.repeats, s.se_ratio) for s in b0.stages]
    assert rows == B0_STAGES
    assert all(s.skip for s in b0.stages)
    assert (b0.stem.out_channels, b0.stem.kernel, b0.stem.stride, b0.stem.pool) == (32, 3, 2, False)
    assert b0.head_channels == 1280
    assert (b0.resolution, b0.dropout, b0.activation, b0.num_classes) == (224, 0.2, "silu", 1000)
    assert b0.num_blocks == 16
    assert b0.stage_strides() == [2, 4, 8, 16, 16, 32, 32]


def test_b0_blocks_resolve_input_channels_stride_and_shortcut():
    blocks = list(EFFICIENTNET_B0.blocks())
    assert [b.index for b in blocks] == list(range(16))
    assert [b.in_channels for b in blocks[:4]] == [32, 16, 24, 24]
    assert [b.stride for b in blocks[:4]] == [1, 2, 1, 2]
    # first block: expansion 1 (no expand conv), SE squeeze from the block input: int(32 * 0.25)
    assert not blocks[0].has_expansion and blocks[0].se_channels == 8
    assert blocks[1].mid_channels == 96 and blocks[1].se_channels == 4
    # identity shortcut only where stride is 1 and the channels agree
    assert [b.has_residual for b in blocks] == [
        False, False, True, False, True, False, True, True, False, True, True, False, True, True, True, False,
    ]


@pytest.mark.parametrize("key", sorted(OFFICIAL))
def test_official_variants_use_the_released_table(key):
    width, depth, res, drop = OFFICIAL[key]
    net = get_network(f"efficientnet_{key}")
    assert net.name == f"efficientnet_{key}"
    assert net.resolution == res and net.dropout == drop and net.activation == "silu"
    assert all(s.se_ratio == 0.25 for s in net.stages)
    assert [s.repeats for s in net.stages] == [_ceil(r * depth) for r in (1, 2, 2, 3, 3, 4, 1)]
    assert [s.kernel for s in net.stages] == [r[2] for r in B0_STAGES]
    assert [s.stride for s in net.stages] == [r[3] for r in B0_STAGES]
    if key in VARIANT_SHAPES:
        stem, chans, reps, head = VARIANT_SHAPES[key]
        assert net.stem.out_channels == stem
        assert [s.out_channels for s in net.stages] == chans
        assert [s.repeats for s in net.stages] == reps
        assert net.head_channels == head


def _ceil(x: float) -> int:
    import math

    return math.ceil(x)


@pytest.mark.parametrize("key", sorted(LITE))
def test_lite_variants_keep_stem_head_and_outer_depths(key):
    width, depth, res, drop = LITE[key]
    net = get_network(f"efficientnet_{key}")
    assert net.resolution == res and net.dropout == drop
    assert net.activation == "relu6"
    assert all(s.se_ratio == 0 for s in net.stages), "Lite has no squeeze-excite"
    assert net.stem.out_channels == 32 and net.head_channels == 1280
    assert net.stages[0].repeats == 1 and net.stages[-1].repeats == 1
    inner = [_ceil(r * depth) for r in (2, 2, 3, 3, 4)]
    assert [s.repeats for s in net.stages[1:-1]] == inner
    # the stages scale with the same widths as the B-variant of equal width multiplier
    b_key = {1.0: "b0", 1.1: "b2", 1.2: "b3", 1.4: "b4"}[width]
    assert [s.out_channels for s in net.stages] == [s.out_channels for s in get_network(f"efficientnet_{b_key}").stages]
    if key in VARIANT_SHAPES:
        stem, chans, reps, head = VARIANT_SHAPES[key]
        assert (net.stem.out_channels, [s.out_channels for s in net.stages], [s.repeats for s in net.stages],
                net.head_channels) == (stem, chans, reps, head)


def test_registry_lists_all_families():
    names = list_networks()
    for key in list(OFFICIAL) + list(LITE):
        assert f"efficientnet_{key}" in names
    for other in ("mobilenet_v1", "mobilenet_v2", "resnet50"):
        assert other in names
    assert len(names) == len(set(names))


def test_unknown_network_name_is_a_value_error_listing_known_names():
    with pytest.raises(ValueError, match="unknown model 'efficientnet_b99'.*efficientnet_b0"):
        get_network("efficientnet_b99")


@pytest.mark.parametrize("name", list_networks())
def test_every_registered_network_round_trips_through_json(name, tmp_path):
    net = get_network(name)
    assert Network.from_json(net.to_json()) == net
    assert Network.from_json(net.to_json(indent=None)) == net
    path = tmp_path / f"{name}.json"
    net.save(path)
    assert Network.load(path) == net
    assert json.loads(path.read_text())["format"] == "effnet.arch"


def test_hand_written_description_round_trips_with_all_ops():
    net = Network(
        name="mixed",
        stem=Stem(out_channels=24, kernel=5, stride=1, pool=True),
        stages=(
            Stage("conv", 1, 3, 1, 24, 1, se_ratio=0.5),
            Stage("dsconv", 1, 5, 2, 40, 2),
            Stage("mbconv", 3, 3, 2, 48, 3, se_ratio=0.25, skip=False),
            Stage("bottleneck", 0.25, 3, 2, 64, 2),
        ),
        head_channels=None,
        resolution=96,
        dropout=0.1,
        activation="relu",
        num_classes=7,
        divisor=4,
    )
    assert Network.from_json(net.to_json()) == net


def _b0_dict() -> dict:
    return json.loads(EFFICIENTNET_B0.to_json())


def _bad(mutate) -> str:
    data = _b0_dict()
    mutate(data)
    with pytest.raises(ValueError) as info:
        Network.from_json(json.dumps(data))
    return str(info.value)


def test_malformed_json_is_a_value_error():
    with pytest.raises(ValueError, match="not valid JSON"):
        Network.from_json("{ not json")
    with pytest.raises(ValueError, match="JSON object"):
        Network.from_json("[1, 2, 3]")


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d["stem"].update(padding=1), "padding"),
        (lambda d: d["stages"][2].update(dilation=2), "dilation"),
    ],
)
def test_unknown_keys_are_rejected_by_name(mutate, field):
    msg = _bad(mutate)
    assert "unknown key" in msg and field in msg


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.pop("stem"), "stem"),
        (lambda d: d.pop("stages"), "stages"),
        (lambda d: d.pop("resolution"), "resolution"),
        (lambda d: d.pop("head_channels"), "head_channels"),
        (lambda d: d["stem"].pop("out_channels"), "out_channels"),
        (lambda d: d["stages"][0].pop("kernel"), "kernel"),
    ],
)
def test_missing_keys_are_named(mutate, field):
    msg = _bad(mutate)
    assert "missing" in msg and field in msg


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(resolution="224"), "resolution"),
        (lambda d: d.update(resolution=224.5), "resolution"),
        (lambda d: d.update(num_classes=True), "num_classes"),
        (lambda d: d.update(dropout="0.2"), "dropout"),
        (lambda d: d.update(name=3), "name"),
        (lambda d: d.update(head_channels=[1280]), "head_channels"),
        (lambda d: d.update(fixed_stem_head="yes"), "fixed_stem_head"),
        (lambda d: d.update(stem=[32, 3, 2]), "stem"),
        (lambda d: d.update(stages={"op": "mbconv"}), "stages"),
        (lambda d: d["stages"].__setitem__(1, "mbconv"), "stage 1"),
        (lambda d: d["stem"].update(stride="2"), "stride"),
        (lambda d: d["stages"][3].update(repeats=2.5), "repeats"),
        (lambda d: d["stages"][3].update(skip=1), "skip"),
    ],
)
def test_wrong_types_are_named(mutate, field):
    assert field in _bad(mutate)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(resolution=0), "resolution"),
        (lambda d: d.update(dropout=1.0), "dropout"),
        (lambda d: d.update(dropout=float("nan")), "dropout"),
        (lambda d: d.update(activation="gelu"), "activation"),
        (lambda d: d.update(num_classes=-1), "num_classes"),
        (lambda d: d.update(divisor=0), "divisor"),
        (lambda d: d.update(stages=[]), "stages"),
        (lambda d: d.update(format="keras"), "format"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["stem"].update(kernel=4), "stem kernel"),
        (lambda d: d["stem"].update(stride=3), "stem stride"),
        (lambda d: d["stages"][0].update(op="transformer"), "op"),
        (lambda d: d["stages"][0].update(kernel=2), "kernel"),
        (lambda d: d["stages"][0].update(stride=4), "stride"),
        (lambda d: d["stages"][0].update(out_channels=0), "out_channels"),
        (lambda d: d["stages"][0].update(repeats=0), "repeats"),
        (lambda d: d["stages"][0].update(se_ratio=1.5), "se_ratio"),
        (lambda d: d["stages"][0].update(expand_ratio=-6), "expand_ratio"),
    ],
)
def test_bad_values_are_named(mutate, field):
    assert field in _bad(mutate)


def test_stage_errors_say_which_stage():
    assert _bad(lambda d: d["stages"][4].update(kernel=6)).startswith("stage 4")


def test_unreadable_description_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        Network.load(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"')
    with pytest.raises(ValueError, match="bad.json"):
        Network.load(bad)


def test_descriptions_are_frozen_and_replace_makes_copies():
    b0 = get_network("efficientnet_b0")
    with pytest.raises(AttributeError):
        b0.resolution = 300  # type: ignore[misc]
    b0_300 = b0.replace(resolution=300)
    assert b0_300.resolution == 300 and b0.resolution == 224
    with pytest.raises(ValueError, match="resolution"):
        b0.replace(resolution=-1)


def test_table_prints_the_paper_table_1_rows():
    text = get_network("efficientnet_b0").table()
    lines = [" ".join(line.split()) for line in text.splitlines()]
    expected = [
        "1 Conv3x3 224x224 32 1",
        "2 MBConv1, k3x3, SE0.25 112x112 16 1",
        "3 MBConv6, k3x3, SE0.25 112x112 24 2",
        "4 MBConv6, k5x5, SE0.25 56x56 40 2",
        "5 MBConv6, k3x3, SE0.25 28x28 80 3",
        "6 MBConv6, k5x5, SE0.25 14x14 112 3",
        "7 MBConv6, k5x5, SE0.25 14x14 192 4",
        "8 MBConv6, k3x3, SE0.25 7x7 320 1",
        "9 Conv1x1 & Pooling & FC 7x7 1280 1",
    ]
    for row in expected:
        assert row in lines
    assert "Operator" in text and "#Channels" in text and "#Layers" in text


def test_table_at_another_resolution_and_for_resnet():
    assert "300x300" in get_network("efficientnet_b0").table(resolution=300)
    lines = [" ".join(line.split()) for line in get_network("resnet50").table().splitlines()]
    assert "1 Conv7x7 224x224 64 1" in lines
    assert "2 Bottleneck0.25, k3x3 56x56 256 3" in lines  # after the stem's max-pool
    assert "6 Pooling & FC 7x7 1000 1" in lines


def test_other_family_bases_match_their_papers():
    v2 = get_network("mobilenet_v2")
    assert [(s.expand_ratio, s.out_channels, s.repeats, s.stride) for s in v2.stages] == [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]
    r50 = get_network("resnet50")
    assert [s.repeats for s in r50.stages] == [3, 4, 6, 3]
    assert r50.stem.pool and r50.stem.kernel == 7
    v1 = get_network("mobilenet_v1")
    assert sum(s.repeats for s in v1.stages) == 13
    assert EFFICIENTNET_LITE0.fixed_stem_head and not EFFICIENTNET_B0.fixed_stem_head
