"""Compound scaling: a pure function from description to description."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..checks import check_int
from .rounding import round_filters, round_repeats
from .types import Network

#: The coefficients the paper's grid search found for B0 (phi = 1).
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Multipliers:
    """Depth, width and resolution multipliers (the paper's d, w, r)."""

    depth: float
    width: float
    resolution: float

    @property
    def flops_factor(self) -> float:
        """FLOPs grow about d * w^2 * r^2."""
        return self.depth * self.width**2 * self.resolution**2


def compound_multipliers(phi: float, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> Multipliers:
    """d = alpha^phi, w = beta^phi, r = gamma^phi, with alpha, beta, gamma >= 1."""
    phi = _finite("phi", phi)
    for name, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if _finite(name, v) < 1.0:
            raise ValueError(f"{name} must be >= 1 for compound scaling, got {v!r}")
    try:
        return Multipliers(alpha**phi, beta**phi, gamma**phi)
    except OverflowError:
        raise ValueError(f"phi {phi:g} overflows the multipliers alpha^phi, beta^phi, gamma^phi") from None


def scale(
    desc: Network,
    phi: float | None = None,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
    *,
    depth: float | None = None,
    width: float | None = None,
    resolution: float | None = None,
    image_size: int | None = None,
    dropout: float | None = None,
    name: str | None = None,
) -> Network:
    """Scale a description.

    Either by the compound coefficient ``phi`` with ``alpha, beta, gamma`` (depth alpha^phi,
    width beta^phi, resolution gamma^phi), or by explicit multipliers ``depth``, ``width`` and
    ``resolution`` (any left out stays 1). ``image_size`` sets the input resolution in pixels
    instead of multiplying it. Channels round to multiples of the description's divisor with the
    90% rule; repeats round up. Lite-style descriptions (``fixed_stem_head``) keep the stem, the
    head and the depth of the first and last stages.
    """
    explicit = (depth, width, resolution)
    if phi is not None:
        if any(v is not None for v in explicit):
            raise ValueError("give either phi or explicit depth/width/resolution, not both")
        m = compound_multipliers(phi, alpha, beta, gamma)
        label = f"{desc.name}-phi{phi:g}"
    else:
        vals = []
        for n, v in zip(("depth", "width", "resolution"), explicit):
            v = 1.0 if v is None else _finite(n, v)
            if v <= 0:
                raise ValueError(f"{n} multiplier must be > 0, got {v!r}")
            vals.append(v)
        m = Multipliers(*vals)
        label = f"{desc.name}-d{m.depth:g}-w{m.width:g}-r{m.resolution:g}"

    limit = 1e6  # beyond this a multiplier describes no buildable network, and int() of c*w may overflow
    for n, v in (("depth", m.depth), ("width", m.width), ("resolution", m.resolution)):
        if v > limit:
            raise ValueError(f"{n} multiplier {v:.3g} is too large (limit {limit:g})")

    if image_size is not None:
        check_int("image_size", image_size, 1)
        res = image_size
    else:
        res = int(round(desc.resolution * m.resolution))
        if res < 1:
            raise ValueError(f"resolution {desc.resolution} x {m.resolution:g} rounds to {res} pixels")

    repeats, channels, stem_channels, head = scaled_shape(desc, depth=m.depth, width=m.width)
    stages = []
    for i, (st, r, c) in enumerate(zip(desc.stages, repeats, channels)):
        if r < 1 or c < 1:
            raise ValueError(f"stage {i} scales to {c} channels x {r} blocks")
        stages.append(replace(st, out_channels=c, repeats=r))
    stem = desc.stem if stem_channels == desc.stem.out_channels else replace(desc.stem, out_channels=stem_channels)
    return replace(
        desc,
        name=name or label,
        stem=stem,
        stages=tuple(stages),
        head_channels=head,
        resolution=res,
        dropout=desc.dropout if dropout is None else dropout,
    )


def scaled_shape(desc: Network, *, depth: float, width: float) -> tuple[tuple[int, ...], tuple[int, ...], int, int | None]:
    """What depth and width multipliers round ``desc`` to: (repeats per stage, output channels per
    stage, stem channels, head channels). Two multipliers with the same shape build the same network
    (at the same pixels), so this is a cheap key for anything that searches over multipliers."""
    div = desc.divisor
    fixed = desc.fixed_stem_head
    last = len(desc.stages) - 1
    repeats = tuple(st.repeats if fixed and i in (0, last) else round_repeats(st.repeats, depth)
                    for i, st in enumerate(desc.stages))
    channels = tuple(round_filters(st.out_channels, width, div) for st in desc.stages)
    stem = desc.stem.out_channels if fixed else round_filters(desc.stem.out_channels, width, div)
    head = desc.head_channels
    if head is not None and not fixed:
        head = round_filters(head, width, div)
    return repeats, channels, stem, head


def implied_phi(
    width: float,
    depth: float,
    resolution: float,
    base_resolution: int = 224,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
) -> dict[str, float]:
    """The phi each dimension of a hand-set variant corresponds to under the formula."""
    return {
        "depth": math.log(depth) / math.log(alpha),
        "width": math.log(width) / math.log(beta),
        "resolution": math.log(resolution / base_resolution) / math.log(gamma),
    }
