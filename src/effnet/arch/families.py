"""Base descriptions and the official variant tables. Variants are rows, not functions."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .scale import implied_phi, scale
from .types import Network, Stage, Stem

#               op       expand kernel stride out  repeats se
_B0_ROWS = [
    ("mbconv", 1, 3, 1, 16, 1, 0.25),
    ("mbconv", 6, 3, 2, 24, 2, 0.25),
    ("mbconv", 6, 5, 2, 40, 2, 0.25),
    ("mbconv", 6, 3, 2, 80, 3, 0.25),
    ("mbconv", 6, 5, 1, 112, 3, 0.25),
    ("mbconv", 6, 5, 2, 192, 4, 0.25),
    ("mbconv", 6, 3, 1, 320, 1, 0.25),
]

EFFICIENTNET_B0 = Network(
    name="efficientnet_b0",
    stem=Stem(out_channels=32, kernel=3, stride=2),
    stages=tuple(Stage(*row) for row in _B0_ROWS),
    head_channels=1280,
    resolution=224,
    dropout=0.2,
    activation="silu",
)

EFFICIENTNET_LITE0 = EFFICIENTNET_B0.replace(
    name="efficientnet_lite0",
    stages=tuple(replace(s, se_ratio=0.0) for s in EFFICIENTNET_B0.stages),
    activation="relu6",
    fixed_stem_head=True,
)

#: (width, depth, resolution, dropout) as released with the reference code.
EFFICIENTNET_VARIANTS: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
    "b8": (2.2, 3.6, 672, 0.5),
    "l2": (4.3, 5.3, 800, 0.5),
}

LITE_VARIANTS: dict[str, tuple[float, float, int, float]] = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}

MOBILENET_V1 = Network(
    name="mobilenet_v1",
    stem=Stem(out_channels=32, kernel=3, stride=2),
    stages=(
        Stage("dsconv", 1, 3, 1, 64, 1),
        Stage("dsconv", 1, 3, 2, 128, 2),
        Stage("dsconv", 1, 3, 2, 256, 2),
        Stage("dsconv", 1, 3, 2, 512, 6),
        Stage("dsconv", 1, 3, 2, 1024, 2),
    ),
    head_channels=None,
    resolution=224,
    dropout=0.001,
    activation="relu",
)

MOBILENET_V2 = Network(
    name="mobilenet_v2",
    stem=Stem(out_channels=32, kernel=3, stride=2),
    stages=(
        Stage("mbconv", 1, 3, 1, 16, 1),
        Stage("mbconv", 6, 3, 2, 24, 2),
        Stage("mbconv", 6, 3, 2, 32, 3),
        Stage("mbconv", 6, 3, 2, 64, 4),
        Stage("mbconv", 6, 3, 1, 96, 3),
        Stage("mbconv", 6, 3, 2, 160, 3),
        Stage("mbconv", 6, 3, 1, 320, 1),
    ),
    head_channels=1280,
    resolution=224,
    dropout=0.2,
    activation="relu6",
)

RESNET50 = Network(
    name="resnet50",
    stem=Stem(out_channels=64, kernel=7, stride=2, pool=True),
    stages=(
        Stage("bottleneck", 0.25, 3, 1, 256, 3),
        Stage("bottleneck", 0.25, 3, 2, 512, 4),
        Stage("bottleneck", 0.25, 3, 2, 1024, 6),
        Stage("bottleneck", 0.25, 3, 2, 2048, 3),
    ),
    head_channels=None,
    resolution=224,
    dropout=0.0,
    activation="relu",
)


#: EfficientNetV2 (Tan & Le, 2021) as torchvision builds it: (op, expand, kernel, stride, out,
#: repeats, se) per stage, the stem's width, and the training resolution and dropout.
_V2_ROWS: dict[str, tuple[int, tuple[tuple, ...], int, float]] = {
    "s": (24, (("fused_mbconv", 1, 3, 1, 24, 2, 0.0), ("fused_mbconv", 4, 3, 2, 48, 4, 0.0),
               ("fused_mbconv", 4, 3, 2, 64, 4, 0.0), ("mbconv", 4, 3, 2, 128, 6, 0.25),
               ("mbconv", 6, 3, 1, 160, 9, 0.25), ("mbconv", 6, 3, 2, 256, 15, 0.25)), 384, 0.2),
    "m": (24, (("fused_mbconv", 1, 3, 1, 24, 3, 0.0), ("fused_mbconv", 4, 3, 2, 48, 5, 0.0),
               ("fused_mbconv", 4, 3, 2, 80, 5, 0.0), ("mbconv", 4, 3, 2, 160, 7, 0.25),
               ("mbconv", 6, 3, 1, 176, 14, 0.25), ("mbconv", 6, 3, 2, 304, 18, 0.25),
               ("mbconv", 6, 3, 1, 512, 5, 0.25)), 480, 0.3),
    "l": (32, (("fused_mbconv", 1, 3, 1, 32, 4, 0.0), ("fused_mbconv", 4, 3, 2, 64, 7, 0.0),
               ("fused_mbconv", 4, 3, 2, 96, 7, 0.0), ("mbconv", 4, 3, 2, 192, 10, 0.25),
               ("mbconv", 6, 3, 1, 224, 19, 0.25), ("mbconv", 6, 3, 2, 384, 25, 0.25),
               ("mbconv", 6, 3, 1, 640, 7, 0.25)), 480, 0.4),
}


def _v2(key: str) -> Network:
    stem, rows, resolution, dropout = _V2_ROWS[key]
    return Network(name=f"efficientnet_v2_{key}", stem=Stem(out_channels=stem, kernel=3, stride=2),
                   stages=tuple(Stage(*row) for row in rows), head_channels=1280, resolution=resolution,
                   dropout=dropout, activation="silu")


def _variant(base: Network, prefix: str, row: tuple[float, float, int, float], key: str) -> Network:
    width, depth, res, drop = row
    return scale(base, width=width, depth=depth, image_size=res, dropout=drop, name=f"{prefix}_{key}")


def _registry() -> dict[str, Callable[[], Network]]:
    reg: dict[str, Callable[[], Network]] = {}
    for key, row in EFFICIENTNET_VARIANTS.items():
        reg[f"efficientnet_{key}"] = lambda row=row, key=key: _variant(EFFICIENTNET_B0, "efficientnet", row, key)
    for key, row in LITE_VARIANTS.items():
        reg[f"efficientnet_{key}"] = lambda row=row, key=key: _variant(EFFICIENTNET_LITE0, "efficientnet", row, key)
    for key in _V2_ROWS:
        reg[f"efficientnet_v2_{key}"] = lambda key=key: _v2(key)
    for base in (MOBILENET_V1, MOBILENET_V2, RESNET50):
        reg[base.name] = lambda base=base: base
    return reg


_REGISTRY = _registry()


def list_networks() -> list[str]:
    """Names accepted by :func:`get_network` (and ``effnet.create_model``)."""
    return list(_REGISTRY)


def get_network(name: str) -> Network:
    """The description of a named network, e.g. ``efficientnet_b3`` or ``resnet50``."""
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(_REGISTRY)}") from None


def official_vs_formula(alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15) -> list[dict]:
    """For each official B-variant, the phi that its hand-set width, depth and resolution imply."""
    rows = []
    for key, (w, d, r, _) in EFFICIENTNET_VARIANTS.items():
        phis = implied_phi(w, d, r, EFFICIENTNET_B0.resolution, alpha, beta, gamma)
        rows.append({"name": f"efficientnet_{key}", "width": w, "depth": d, "resolution": r,
                     "phi_depth": phis["depth"], "phi_width": phis["width"], "phi_resolution": phis["resolution"]})
    return rows
