"""``effnet study budget``: the controls at doubling budgets, stopping at the first that resolves."""
from __future__ import annotations

import contextlib
import io
import json
import random

import pytest

from effnet.arch import get_network
from effnet.data import DataSpec
from effnet.search.budget import Budget
from effnet.search.kinds.budget import BudgetLadderConfig, run_budget_ladder
from effnet.search.runner import StudyOptions


class StepQuickTrain:
    """Stands in for quick_train: each image right with probability 0.3 (chance, 3 classes) below
    ``learns_at / 4`` optimiser steps, 0.6 from there and 0.9 from ``learns_at``; per-image
    randomness from (network name, seed). Records the step caps."""

    def __init__(self, learns_at: int) -> None:
        self.learns_at, self.steps = learns_at, []

    def __call__(self, desc, splits, *, seed, max_steps=None, **kwargs):
        self.steps.append(max_steps)
        s = max_steps or 0
        p = 0.9 if s >= self.learns_at else (0.6 if s >= self.learns_at / 4 else 0.3)
        out = {"val_acc": 0.0, "train_time_s": 0.01, "steps": max_steps or 0}
        for name in ("val", "test"):
            targets = list(getattr(splits, name).targets)
            rng = random.Random(f"{desc.name}:{seed}:{name}")
            pred = [t if rng.random() < p else (t + 1) % splits.num_classes for t in targets]
            out[f"{name}_pred"], out[f"{name}_target"] = pred, targets
            out[f"{name}_acc"] = sum(a == b for a, b in zip(pred, targets)) / len(targets)
        return out


def _config(**kw):
    base = dict(base=get_network("efficientnet_b0"), data=DataSpec("synthetic", limit_per_class=200), img_size=32,
                budget=Budget(batch_size=8), seeds=3, start_steps=4, max_budget_steps=32, ratios=(2.0,))
    base.update(kw)
    return BudgetLadderConfig(**base)


def test_the_ladder_stops_at_the_first_budget_where_the_positive_control_separates(tmp_path, monkeypatch):
    import effnet.train

    fake = StepQuickTrain(learns_at=8)
    monkeypatch.setattr(effnet.train, "quick_train", fake)
    summary = run_budget_ladder(_config(), StudyOptions(tmp_path, progress=False))
    # 4 steps: the full budget learns a little and its quarter nothing: separated, but a control between training
    # and none resolves nothing; 8 steps: both runs learned and the full budget is ahead
    assert [r["steps"] for r in summary["rungs"]] == [4, 8] and summary["budget_steps"] == 8 and summary["decided"]
    first, found = summary["rungs"]
    assert first["positive"]["separated"] and not first["quarter_learned"] and 0.3 <= first["chance"] <= 0.4
    assert found["positive"]["separated"] and found["quarter_learned"] and found["negative"]["passed"]
    assert sorted(set(fake.steps)) == [1, 2, 4, 8]  # full budgets and their quarters; no rung above the answer
    assert summary["verdict"].startswith("Budget found: at 8 steps (64 images seen)")
    est = summary["estimate"]
    assert est["candidates"] == 7 and est["seeds"] == 3 and est["seconds"] > 0  # base, 4 methods at 2x, 2 controls
    for name in ("budget.json", "budget.md", "budget.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "budget.json").read_text())["budget_steps"] == 8
    again = StepQuickTrain(learns_at=8)
    monkeypatch.setattr(effnet.train, "quick_train", again)
    assert run_budget_ladder(_config(), StudyOptions(tmp_path, progress=False))["budget_steps"] == 8
    assert again.steps == []  # every rung is a resumable study: nothing is trained twice


def test_a_ladder_that_never_resolves_says_how_far_it_went(tmp_path, monkeypatch):
    import effnet.train

    monkeypatch.setattr(effnet.train, "quick_train", StepQuickTrain(learns_at=10**6))
    summary = run_budget_ladder(_config(max_budget_steps=8), StudyOptions(tmp_path, progress=False))
    assert [r["steps"] for r in summary["rungs"]] == [4, 8] and summary["budget_steps"] is None
    assert summary["verdict"].startswith("No budget found up to 8 steps, the largest tried")
    assert not summary["decided"] and summary["estimate"] is None


def test_the_command_prints_the_controls_first_and_refuses_one_seed(tmp_path, monkeypatch):
    import effnet.train
    from effnet.cli import main

    monkeypatch.setattr(effnet.train, "quick_train", StepQuickTrain(learns_at=4))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["study", "budget", "--data", "synthetic", "--limit-per-class", "200", "--img-size", "32",
                     "--batch-size", "8", "--start-steps", "4", "--max-budget-steps", "8", "--ratios", "2",
                     "--out", str(tmp_path), "--quiet"])
    assert code == 0
    lines = [line for line in out.getvalue().splitlines() if not line.startswith(("budget ladder:", "trial "))]
    assert lines[0].strip().startswith("4 steps: base") and lines[1].startswith("Positive control")
    assert lines[2].startswith("Negative control") and lines[3].startswith("Budget found: at 4 steps")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["study", "budget", "--data", "synthetic", "--seeds", "1", "--out", str(tmp_path / "one")])
    assert code == 2 and "at least 2 seeds" in err.getvalue()


@pytest.mark.parametrize("kw, words", [({"start_steps": 0}, "first budget"),
                                       ({"start_steps": 8, "max_budget_steps": 4}, "largest budget")])
def test_bad_ladders_are_refused(kw, words):
    with pytest.raises(ValueError, match=words):
        _config(**kw).check()


def test_a_study_starts_from_the_ladders_answer(tmp_path, monkeypatch):
    import effnet.train
    from effnet.cli import main

    monkeypatch.setattr(effnet.train, "quick_train", StepQuickTrain(learns_at=4))
    common = ["--data", "synthetic", "--limit-per-class", "200", "--img-size", "32", "--quiet"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["study", "budget", *common, "--batch-size", "8", "--start-steps", "4", "--max-budget-steps", "8",
                     "--ratios", "2", "--out", str(tmp_path / "ladder")]) == 0
    rec = StepQuickTrain(learns_at=4)
    monkeypatch.setattr(effnet.train, "quick_train", rec)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["study", "scaling", *common, "--ratios", "2", "--methods", "width", "--seeds", "2",
                     "--budget-from", str(tmp_path / "ladder" / "budget.json"), "--out", str(tmp_path / "s")]) == 0
    assert "4 steps of batch 8" in out.getvalue() and set(rec.steps) == {4, 1}  # full budgets and the quarter
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["study", "scaling", *common, "--budget-from", str(tmp_path / "s" / "scaling.json"),
                     "--out", str(tmp_path / "t")])
    assert code == 2 and "is not the budget.json of `effnet study budget`" in err.getvalue()
