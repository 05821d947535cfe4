"""Validators shared by every layer: each returns the checked value or raises one-line ``EffnetError``.

Library code validates its own arguments with these; the command line turns the same errors into a
one-line message naming the flag.
"""
from __future__ import annotations

from typing import Any

from .errors import EffnetError


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` if it is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise EffnetError(f"{name} must be {what}, got {value!r}")
    return value


def check_float(name: str, value: Any, minimum: float, *, strict: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")
    if not ok or value < minimum or (strict and value == minimum):
        if minimum == 0:
            what = "a positive number" if strict else "a non-negative number"
        else:
            what = f"a finite number {'>' if strict else '>='} {minimum:g}"
        raise EffnetError(f"{name} must be {what}, got {value!r}")
    return float(value)


def check_range(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
                high_open: bool = False) -> float:
    """``value`` if it is a finite number in the interval from ``low`` to ``high`` (each end closed
    unless said open), written in the message as ``[low, high)`` and so on."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise EffnetError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: Any) -> Any:
    """``value`` if it is one of ``choices``; the message lists them."""
    if value not in tuple(choices):
        raise EffnetError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def optional(check, name: str, value: Any, *args: Any, **kwargs: Any) -> Any:
    """``None``, or ``value`` checked by ``check``: for settings where ``None`` means "the default"."""
    return None if value is None else check(name, value, *args, **kwargs)

