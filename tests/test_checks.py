"""The shared validators: one wording for every setting and flag, bools refused as numbers."""
from __future__ import annotations

import math

import pytest

from effnet.checks import check_choice, check_float, check_int, check_range, optional
from effnet.errors import EffnetError


@pytest.mark.parametrize("value, minimum, words", [(0, 1, "a positive integer"), (-1, 0, "a non-negative integer"),
                                                   (7, 8, "an integer >= 8"), (True, 0, "a non-negative integer"),
                                                   (2.0, 1, "a positive integer")])
def test_integers_below_the_minimum_or_not_integers_are_refused_in_one_wording(value, minimum, words):
    with pytest.raises(EffnetError, match=f"^seeds must be {words}, got {value!r}$"):
        check_int("seeds", value, minimum)


def test_numbers_and_intervals():
    assert check_float("lr", 0.1, 0.0, strict=True) == 0.1
    for bad in (0.0, -1.0, math.nan, math.inf, False):
        with pytest.raises(EffnetError, match="lr must be a positive number"):
            check_float("lr", bad, 0.0, strict=True)
    assert check_range("momentum", 1.0, 0.0, 1.0) == 1.0
    with pytest.raises(EffnetError, match=r"^dropout must be in \[0, 1\), got 1.0$"):
        check_range("dropout", 1.0, 0.0, 1.0, high_open=True)
    with pytest.raises(EffnetError, match=r"crop_scale must be in \(0, 1\]"):
        check_range("crop_scale", 0.0, 0.0, 1.0, low_open=True)


def test_choices_and_optional_settings():
    assert check_choice("augment", "none", ("none", "randaugment")) == "none"
    with pytest.raises(EffnetError, match="augment must be one of none, randaugment, got 'auto'"):
        check_choice("augment", "auto", ("none", "randaugment"))
    assert optional(check_int, "max steps", None, 1) is None
    with pytest.raises(EffnetError, match="max steps must be a positive integer"):
        optional(check_int, "max steps", 0, 1)
