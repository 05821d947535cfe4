"""The rounding rules of the reference implementation."""
from __future__ import annotations

import math


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping below ``round_limit`` of it."""
    minimum = divisor if min_value is None else min_value
    new = max(minimum, int(value + divisor / 2) // divisor * divisor)
    if new < round_limit * value:
        new += divisor
    return int(new)


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels after width scaling: ``max(8, int(c*w + 4) // 8 * 8)``, plus 8 if that lost over 10%."""
    return make_divisible(channels * width, divisor)


def round_repeats(repeats: int, depth: float) -> int:
    """Blocks after depth scaling: ``ceil(d * repeats)``."""
    return int(math.ceil(depth * repeats))
