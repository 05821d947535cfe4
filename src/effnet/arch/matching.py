"""Networks scaled one way to a target cost: the base grown by depth, width, resolution or compound
scaling until its multiply-adds are nearest ``ratio`` times the base's.

Rounding (whole blocks, channels in multiples of 8, whole pixels) makes cost a step function of the
multiplier, so the match is the nearer of the two rounding steps around the target; the achieved
ratio is kept. Torch-free, like the rest of :mod:`effnet.arch`.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

from ..checks import check_float
from ..errors import EffnetError
from .cost import cost
from .scale import ALPHA, BETA, GAMMA, scale, scaled_shape
from .types import Network

METHODS = ("depth", "width", "resolution", "compound")


@dataclass(frozen=True)
class ScaledNetwork:
    """One matched network: what was scaled, by how much, and what it costs."""

    method: str
    target_ratio: float
    multiplier: float  # d, w, r (pixels / base pixels) or phi for compound
    desc: Network
    img_size: int
    macs: int
    params: int
    ratio: float  # achieved multiply-adds / base multiply-adds


def _multipliers(method: str, x: float, img_size: int, coeffs: tuple[float, float, float]) -> tuple[float, float, int]:
    """Depth and width multipliers and pixels of ``method`` at multiplier ``x``."""
    if method == "depth":
        return x, 1.0, img_size
    if method == "width":
        return 1.0, x, img_size
    if method == "resolution":
        return 1.0, 1.0, max(1, int(round(img_size * x)))
    if method == "compound":
        a, b, g = coeffs
        return a**x, b**x, max(1, int(round(img_size * g**x)))
    raise EffnetError(f"unknown scaling method {method!r}; choose from {', '.join(METHODS)}")


def _build(base: Network, method: str, x: float, img_size: int, coeffs: tuple[float, float, float]) -> tuple[Network, int]:
    d, w, px = _multipliers(method, x, img_size, coeffs)
    tag = {"depth": f"d{x:.4g}", "width": f"w{x:.4g}", "resolution": f"r{px / img_size:.4g}",
           "compound": f"phi{x:.4g}"}[method]
    return scale(base, depth=d, width=w, image_size=px, name=f"{base.name}-{tag}"), px


@functools.lru_cache(maxsize=8192)
def _macs(base: Network, shape: tuple, px: int) -> int:
    """Multiply-adds of ``base`` rounded to ``shape`` (:func:`effnet.arch.scale.scaled_shape`) at
    ``px``: the bisection below visits the same rounded network many times, so the key is what the
    multipliers round to, and the network is built once per key."""
    repeats, channels, stem, head = shape
    stages = tuple(replace(st, repeats=r, out_channels=c) for st, r, c in zip(base.stages, repeats, channels))
    desc = replace(base, stages=stages, stem=replace(base.stem, out_channels=stem), head_channels=head, resolution=px)
    return cost(desc, px).macs


def match_flops(
    base: Network,
    method: str,
    ratio: float,
    *,
    img_size: int,
    coefficients: tuple[float, float, float] = (ALPHA, BETA, GAMMA),
    iterations: int = 32,
) -> ScaledNetwork:
    """The network scaled by ``method`` whose multiply-adds are closest to ``ratio`` x the base's.

    Cost never falls as a multiplier grows, so bisection finds the smallest multiplier reaching the
    target; the network one rounding step below is the other candidate, and the one nearer to the
    target on a log scale wins.
    """
    ratio = check_float("FLOPs ratio", ratio, 1.0, strict=True)
    base_macs = cost(base, img_size).macs

    def f(x: float) -> float:
        d, w, px = _multipliers(method, x, img_size, coefficients)
        return _macs(base, scaled_shape(base, depth=d, width=w), px) / base_macs

    lo = 0.0 if method == "compound" else 1.0
    hi = 2.0 if method == "compound" else 2.0
    grow = 0
    while f(hi) < ratio:
        lo, hi = hi, hi * 2
        grow += 1
        if grow > 12:
            raise EffnetError(f"{method} scaling of {base.name} cannot reach {ratio:g}x its FLOPs")
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if f(mid) >= ratio:
            hi = mid
        else:
            lo = mid
    best = None
    for x in (lo, hi):
        r = f(x)
        gap = abs(math.log(r / ratio))
        if best is None or gap < best[0] - 1e-12:
            best = (gap, x, r)
    _, x, r = best
    desc, px = _build(base, method, x, img_size, coefficients)
    if method == "resolution":
        x = px / img_size
    c = cost(desc, px)
    return ScaledNetwork(method, ratio, x, desc, px, c.macs, c.params, c.macs / base_macs)
