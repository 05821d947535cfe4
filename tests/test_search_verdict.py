"""The rules for naming a winner (effnet.search.verdict), on synthetic per-image scores."""
from __future__ import annotations

import numpy as np
import pytest

from effnet.search.verdict import Design, decide


def scores(accs: dict[str, float], seeds: int = 3, images: int = 600, seed: int = 0) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {k: [(rng.random(images) < p).astype(float) for _ in range(seeds)] for k, p in accs.items()}


ROLES = {"base": "baseline", "big": "control", "a": "candidate", "b": "candidate", "c": "candidate"}
CLEAR = {"base": 0.50, "big": 0.80, "a": 0.90, "b": 0.60, "c": 0.55}


def run(accs=CLEAR, *, seeds=3, groups=None, control=("base", "big"), keys=None, **kw):
    sc = scores(accs, seeds=seeds)
    keys = keys or list(sc)
    return decide(keys, sc, Design(seeds, draws=600), roles=ROLES, groups=groups or {"": ["a", "b", "c"]},
                  control=control, **kw)


def test_a_clear_winner_with_every_rule_met_is_named():
    out = run()
    assert out["decided"] and out["groups"][""]["winner"] == "a"
    assert out["verdict"].startswith("Winner a")


def test_a_missing_control_is_a_failed_control():
    out = run(keys=["base", "a", "b", "c"])  # the control's trials did not complete
    assert not out["decided"] and out["groups"][""]["winner"] is None
    assert out["control"]["missing"] == ["big"] and not out["control"]["separated"]
    assert out["verdict"].startswith("Not decided: the positive control did not complete")
    assert not run(control=None)["decided"]


def test_a_control_that_is_not_separated_names_nothing_and_says_what_it_would_take():
    out = run({**CLEAR, "big": 0.51})
    assert not out["decided"] and out["groups"][""]["winner"] is None
    assert out["verdict"].startswith("Not decided: this data and budget cannot resolve")
    assert "would need" in out["verdict"]


def test_a_group_of_one_has_no_winner():
    out = run(groups={"": ["a"]})
    assert not out["decided"] and out["groups"][""]["winner"] is None
    assert "one candidate in the group" in out["groups"][""]["reasons"]


def test_one_seed_names_no_winner_however_large_the_gap():
    out = run(seeds=1)
    assert not out["decided"] and out["groups"][""]["winner"] is None
    assert out["verdict"].startswith("Not decided: one seed")


def test_the_control_and_the_table_quote_one_interval_for_one_quantity():
    out = run()
    row = out["per_key"]["big"]  # big minus the baseline, in the table
    assert (out["control"]["ci_low"], out["control"]["ci_high"]) == pytest.approx(
        (row["diff_to_baseline_ci_low"], row["diff_to_baseline_ci_high"]))


def test_an_undecided_group_says_the_resolvable_difference_and_what_would_resolve_the_gap():
    out = run({**CLEAR, "a": 0.62, "b": 0.60})
    g = out["groups"][""]
    assert g["winner"] is None and g["runner_up"] == "b" and "a" in g["indistinguishable"]
    assert f"resolves differences above {g['range_bound']:.3f}" in out["verdict"]
    assert (g["seeds_to_resolve"] or 0) > 3 or (g["images_to_resolve"] or 0) > 600 or g["both_times_to_resolve"] > 1


def test_saturation_is_printed_only_after_a_separated_gain_followed_by_a_flat_step():
    accs = {"base": 0.50, "big": 0.80, "w2": 0.70, "w4": 0.70, "d2": 0.52, "d4": 0.53, "a": 0.9, "b": 0.6, "c": 0.5}
    out = run(accs, chains={"width": [("base", "w2"), ("w2", "w4")], "depth": [("base", "d2"), ("d2", "d4")]})
    sat = out["saturation"]["methods"]
    assert sat["width"]["saturates_at"] == "w4" and sat["width"]["text"].startswith("saturates")
    assert sat["depth"]["saturates_at"] is None  # never gained, so it cannot saturate


def test_a_negative_control_that_separates_names_nothing_and_one_that_does_not_lets_the_winner_stand():
    roles = {**ROLES, "twin": "control"}
    sc = scores({**CLEAR, "twin": 0.50})
    ok = decide(list(sc), sc, Design(3, draws=600), roles=roles, groups={"": ["a", "b", "c"]},
                control=("base", "big"), negative=("base", "twin"), control_text="the base against 4x")
    assert ok["decided"] and ok["negative_control"]["passed"] and ok["groups"][""]["winner"] == "a"
    assert ok["negative_control"]["text"].startswith("Negative control") and "indistinguishable" in ok["negative_control"]["text"]
    assert ok["control"]["text"].startswith("Positive control (the base against 4x): big minus base")
    # a twin that differs from the base by 0.2 on 600 images x 3 seeds: the intervals cannot be trusted
    sc = scores({**CLEAR, "twin": 0.70})
    bad = decide(list(sc), sc, Design(3, draws=600), roles=roles, groups={"": ["a", "b", "c"]},
                 control=("base", "big"), negative=("base", "twin"))
    assert not bad["decided"] and bad["groups"][""]["winner"] is None and not bad["negative_control"]["passed"]
    assert bad["verdict"].startswith("Not decided: the negative control is separated")
    missing = decide(["base", "big", "a", "b", "c"], sc, Design(3, draws=600), roles=roles,
                     groups={"": ["a", "b", "c"]}, control=("base", "big"), negative=("base", "twin"))
    assert not missing["decided"] and missing["verdict"].startswith("Not decided: the negative control did not complete")
