"""The typed form of what a study writes (its summary JSON) and what the report reads.

Every kind of study writes a summary with a verdict, a positive control and one row per
candidate; :class:`StudySummary`, :class:`ControlResult` and :class:`CandidateRow` name those
fields once. ``from_dict`` reads a summary (older files too: a missing field is ``None``, a field
this schema does not name is kept in ``extra``), ``to_dict`` writes it back unchanged, so a summary
survives a round trip. :mod:`effnet.analysis.report` reads studies only through these classes.
Pure Python: reading a summary needs neither torch nor numpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

#: the summary file each kind of study writes, in the order a folder is searched for one
SUMMARY_FILES = ("scaling.json", "transfer.json", "proxy.json", "race.json", "strategies.json", "search.json",
                 "best.json")
#: where a summary keeps its per-candidate rows (kinds differ; the first present is used)
ROW_KEYS = ("per_candidate", "rows", "candidates", "points")


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class _Record:
    """``from_dict``/``to_dict`` for a flat dataclass with an ``extra`` mapping of unnamed fields."""

    extra: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        names = {f.name for f in fields(cls) if f.name != "extra"}
        obj = cls(**{k: v for k, v in data.items() if k in names})
        obj.present = frozenset(k for k in data if k in names)
        obj.extra = {k: v for k, v in data.items() if k not in names}
        return obj

    def to_dict(self) -> dict[str, Any]:
        present = getattr(self, "present", None)
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"
               and (present is None or f.name in present or getattr(self, f.name) is not None)}
        return {**out, **self.extra}


@dataclass
class CandidateRow(_Record):
    """One candidate: what it is, what it cost, what training it got, and its interval and paired
    differences (95%, validation images; ``test_*`` on the test images, never used to choose)."""

    key: str | None = None
    role: str | None = None  # "candidate", "baseline", "control", "reference"
    method: str | None = None
    target_ratio: float | None = None
    achieved_ratio: float | None = None
    macs: int | None = None
    params: int | None = None
    resolution: int | None = None
    seeds: int | None = None
    seeds_done: int | None = None
    mean: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    is_best: bool | None = None
    indistinguishable_from_best: bool | None = None
    diff_to_best: float | None = None
    diff_to_best_ci_low: float | None = None
    diff_to_best_ci_high: float | None = None
    diff_to_baseline: float | None = None
    diff_to_baseline_ci_low: float | None = None
    diff_to_baseline_ci_high: float | None = None
    test_mean: float | None = None
    test_ci_low: float | None = None
    test_ci_high: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def accuracy(self) -> float | None:
        """The mean validation accuracy (older files call it ``acc`` or ``val_acc``)."""
        return _number(self.mean) if self.mean is not None else (_number(self.extra.get("acc"))
                                                                  if self.extra.get("acc") is not None
                                                                  else _number(self.extra.get("val_acc")))

    def label(self) -> str:
        if self.key not in (None, ""):
            return str(self.key)
        if self.method is not None:
            ratio = _number(self.target_ratio)
            return self.method + (f" {ratio:g}x" if ratio is not None and self.method != "baseline" else "")
        abc = [_number(self.extra.get(k)) for k in ("alpha", "beta", "gamma")]
        if all(v is not None for v in abc):
            return "alpha {:g}, beta {:g}, gamma {:g}".format(*abc)
        return "-"


@dataclass
class ControlResult(_Record):
    """The positive control: the bigger network minus the smaller, its interval, whether it separated."""

    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ratio: float | None = None
    separated: bool | None = None
    missing: list[str] | None = None
    verdict: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str | None:
        """The control in one sentence, as the report prints it first."""
        if isinstance(self.extra.get("text"), str):  # written by the study itself
            return self.extra["text"]
        if isinstance(self.verdict, str):
            return self.verdict
        if self.missing:
            return (f"Positive control: missing ({', '.join(map(str, self.missing))}); a missing control is a "
                    "failed control, so no winner is named.")
        diff, lo, hi, ratio = _number(self.diff), _number(self.ci_low), _number(self.ci_high), _number(self.ratio)
        if diff is None:
            return None
        text = (f"Positive control: the base at {ratio:.2f}x multiply-adds minus the base = {diff:+.4f}" if ratio
                else f"Positive control: difference {diff:+.4f}")
        if lo is not None and hi is not None:
            text += f" (95% CI {lo:+.4f} to {hi:+.4f})"
        if isinstance(self.separated, bool):
            text += (": separated." if self.separated
                     else ": not separated; this data and budget cannot resolve scaling differences.")
        return text


@dataclass
class StudySummary(_Record):
    """A study's summary: the verdict (said first), whether it decided, the best and the winner (a
    winner only when every rule passed), the positive control, and the rows."""

    verdict: Any = None  # a sentence (some older files: a mapping with "text")
    decided: bool | None = None
    best: Any = None
    winner: Any = None
    control: Mapping[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def verdict_text(self) -> str | None:
        v = self.verdict
        if isinstance(v, Mapping):
            v = v.get("text") or v.get("verdict")
        return v.strip() if isinstance(v, str) and v.strip() else None

    def control_result(self) -> ControlResult | None:
        c = self.control if self.control is not None else self.extra.get("positive_control")
        return ControlResult.from_dict(c) if isinstance(c, Mapping) else None

    def negative_result(self) -> ControlResult | None:
        """The negative control (the base twice, other training seeds), where the study has one."""
        c = self.extra.get("negative_control")
        return ControlResult.from_dict(c) if isinstance(c, Mapping) else None

    def rows(self) -> list[CandidateRow]:
        for key in ROW_KEYS:
            rows = self.extra.get(key)
            if isinstance(rows, list) and rows and all(isinstance(r, Mapping) for r in rows):
                return [CandidateRow.from_dict(r) for r in rows]
        return []

    def is_summary(self) -> bool:
        """Whether the file this came from is a study summary at all."""
        return bool(self.present & {"verdict", "best"}) or "study" in self.extra or "rows" in self.extra
