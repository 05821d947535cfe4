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
        bound = ">" if strict else ">="
        raise EffnetError(f"{name} must be a finite number {bound} {minimum:g}, got {value!r}")
    return float(value)
