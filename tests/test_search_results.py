"""The typed study summary: every summary the studies wrote reads back through it unchanged, and
the report's sentences come from it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from effnet.search.results import CandidateRow, ControlResult, StudySummary

DOCS = Path(__file__).resolve().parents[1] / "docs"
# the studies' summaries (each has a verdict); other results in docs/ (a cost table, the fine-tuning suite) are not
WRITTEN = sorted(p for p in DOCS.glob("*.json") if "verdict" in json.loads(p.read_text())
                 and not p.name.startswith("finetune-suite"))


@pytest.mark.parametrize("path", WRITTEN, ids=lambda p: p.name)
def test_every_recorded_study_summary_survives_a_round_trip(path):
    data = json.loads(path.read_text())
    summary = StudySummary.from_dict(data)
    assert summary.to_dict() == data
    assert summary.is_summary()
    for row in summary.rows():
        assert CandidateRow.from_dict(row.to_dict()).to_dict() == row.to_dict()
        assert row.label() != "-" or row.key is None


def test_fields_are_typed_and_the_rest_is_kept():
    row = CandidateRow.from_dict({"key": "w2", "mean": 0.81, "ci_low": 0.78, "ci_high": 0.84, "custom": [1, 2]})
    assert row.mean == 0.81 and row.accuracy() == 0.81 and row.extra == {"custom": [1, 2]}
    assert CandidateRow.from_dict({"acc": 0.5}).accuracy() == 0.5  # an older file's name for the mean
    assert CandidateRow.from_dict({"method": "width", "target_ratio": 2.0}).label() == "width 2x"


def test_the_control_sentence_says_whether_the_budget_can_resolve():
    c = ControlResult.from_dict({"diff": 0.02, "ci_low": -0.01, "ci_high": 0.05, "ratio": 3.9, "separated": False})
    assert c.text().startswith("Positive control: the base at 3.90x multiply-adds minus the base = +0.0200")
    assert "cannot resolve" in c.text()
    assert "missing (control-4x)" in ControlResult.from_dict({"missing": ["control-4x"]}).text()
    s = StudySummary.from_dict({"verdict": {"text": " Not decided. "}, "positive_control": {"diff": 0.1}})
    assert s.verdict_text() == "Not decided." and s.control_result().diff == 0.1
