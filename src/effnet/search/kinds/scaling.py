"""Scaling studies (the paper's Figures 3 and 8, Table 3): one dimension at a time vs compound.

For each FLOPs ratio (2x, 4x, 8x the base) four networks are made from the base:

* ``depth``: depth multiplier d alone, * ``width``: width multiplier w alone,
* ``resolution``: input pixels alone, * ``compound``: phi with fixed alpha, beta, gamma,

each with the multiplier whose multiply-adds (``effnet.arch.cost`` at its training resolution) are
closest to ``ratio`` times the base's. Rounding (whole blocks, channels in multiples of 8, whole
pixels) makes cost a step function of the multiplier, so the match is the nearer of the two steps
around the target; the achieved ratio is recorded and plotted. Every network is then trained with
the same recipe, budget and paired seeds, as trials keyed by (method, ratio, seed) in one resumable
study. At each ratio the methods are compared with paired statistics (:mod:`effnet.search.stats`);
the positive control is the base against compound scaling at 4x (added when the plan lacks it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ...arch import ALPHA, BETA, GAMMA, cost
from ...arch.matching import METHODS, ScaledNetwork, match_flops
from ...checks import check_choice, check_float
from ...errors import EffnetError
from ...fsutil import atomic_write_text
from .. import plots
from ..runner import StudyOptions
from ..storage import redact
from ..study import (CONTROL_RATIO, CONTROLS, Candidate, analyse, budget_controls, control_lines, control_pair,
                     run_record, run_study, trained_classes)
from ..study import StudyConfig as StudyConfigBase
from ..tables import Column, decorate, fixed, millions, plain, public_row, to_markdown, write_tables

KIND = "scaling study"


@dataclass(frozen=True)
class ScalingStudyConfig(StudyConfigBase):
    """Everything that defines a scaling study and its results (stored with the study)."""

    ratios: tuple[float, ...] = (2.0, 4.0, 8.0)
    methods: tuple[str, ...] = METHODS
    alpha: float = ALPHA
    beta: float = BETA
    gamma: float = GAMMA
    control: str = "budget"  # the positive control (effnet.search.study.CONTROLS)

    def check(self) -> None:
        self.check_budget()
        check_choice("control", self.control, CONTROLS)
        if not self.ratios:
            raise EffnetError("give at least one FLOPs ratio")
        for r in self.ratios:
            r = check_float("FLOPs ratio", r, 1.0, strict=True)
            if r > 64:
                raise EffnetError(f"FLOPs ratios above 64 are not supported, got {r:g}")
        if len(set(self.ratios)) != len(self.ratios):
            raise EffnetError("FLOPs ratios must be distinct")
        if not self.methods or any(m not in METHODS for m in self.methods):
            raise EffnetError(f"methods must be among {', '.join(METHODS)}, got {', '.join(map(str, self.methods))}")
        for name in ("alpha", "beta", "gamma"):
            check_float(name, getattr(self, name), 1.0)
        if "compound" in self.methods and self.alpha * self.beta**2 * self.gamma**2 <= 1.0:
            raise EffnetError("compound scaling needs alpha*beta^2*gamma^2 > 1")

    def plan(self, num_classes: int | None = None) -> list[ScaledNetwork]:
        """The baseline and each (method, ratio) network, matched on FLOPs."""
        self.check()
        base = self.base if num_classes is None else self.base.replace(num_classes=num_classes)
        c = cost(base, self.img_size)
        out = [ScaledNetwork("baseline", 1.0, 1.0, base.replace(name=f"{base.name}-base"), self.img_size,
                             c.macs, c.params, 1.0)]
        for method in self.methods:
            for ratio in self.ratios:
                out.append(match_flops(base, method, ratio, img_size=self.img_size,
                                       coefficients=(self.alpha, self.beta, self.gamma)))
        return out

    def candidates(self, num_classes: int | None = None) -> list[Candidate]:
        """:meth:`plan` as study candidates, plus the positive control when the plan lacks compound 4x."""
        out = []
        for net in self.plan(num_classes):
            key = "base" if net.method == "baseline" else f"{net.method}-x{net.target_ratio:g}"
            out.append(Candidate(key, net.desc, net.img_size, "baseline" if net.method == "baseline" else "candidate",
                                 {"method": net.method, "target_ratio": net.target_ratio, "multiplier": net.multiplier,
                                  "achieved_ratio": net.ratio}))
        base = self.base if num_classes is None else self.base.replace(num_classes=num_classes)
        if self.control == "budget":
            out.extend(budget_controls(base, self.img_size))
        elif self.control_keys()[1] == "control-4x":
            out.append(control_pair(base, self.img_size)[1])
        return out

    def control_keys(self) -> tuple[str, str]:
        """The positive control's (smaller, bigger) pair."""
        if self.control == "budget":
            return ("base-quarter", "base")
        has = "compound" in self.methods and CONTROL_RATIO in self.ratios and (self.alpha, self.beta, self.gamma) == (
            ALPHA, BETA, GAMMA)
        return ("base", f"compound-x{CONTROL_RATIO:g}" if has else "control-4x")

    def negative_keys(self) -> tuple[str, str] | None:
        """The negative control's pair (the base and its twin), where the study has one."""
        return ("base", "base-twin") if self.control == "budget" else None

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        if self.control == "compound":  # as studies made before the choice stored it
            out.pop("control")
        return out

    def groups(self) -> dict[str, list[str]]:
        """Methods compared with each other at each FLOPs ratio."""
        return {f"{r:g}x": [f"{m}-x{r:g}" for m in self.methods] for r in self.ratios}

    def chains(self) -> dict[str, list[tuple[str, str]]]:
        """Per method, the successive steps (base -> lowest ratio -> next ...) the saturation test compares."""
        out = {}
        for m in self.methods:
            keys = ["base"] + [f"{m}-x{r:g}" for r in sorted(self.ratios)]
            out[m] = list(zip(keys, keys[1:]))
        return out


def plan_scaling_study(config: ScalingStudyConfig, num_classes: int | None = None) -> list[ScaledNetwork]:
    return config.plan(num_classes)


def default_study_name(config: ScalingStudyConfig) -> str:
    return f"scaling-study-{config.base.name}"


def run_scaling_study(
    config: ScalingStudyConfig,
    opts: StudyOptions,
    *,
    trainer=None,
    on_event: Callable | None = None,
) -> dict[str, Any]:
    """Run (or resume, or join) a scaling study and write its report; returns the summary."""
    config.check()
    name = opts.study_name or default_study_name(config)
    study = run_study(KIND, config, opts, name, config.candidates, trainer=trainer, on_event=on_event)
    return write_report(study, config, opts.out_dir, num_classes=getattr(trainer, "num_classes", None))


# ----- report ------------------------------------------------------------------------------

ROW_COLUMNS = [
    Column("method", "method", plain), Column("target_ratio", "target x", plain),
    Column("multiplier", "multiplier", fixed(3)), Column("resolution", "px", plain),
    Column("achieved_ratio", "FLOPs x base", fixed(2)), Column("macs", "FLOPs (M mult-adds)", millions),
    Column("params", "params (M)", millions), Column("seeds_done", "seeds", plain),
    Column("acc", "val acc", fixed(4)), Column("ci_text", "95% CI", plain),
    Column("dbest_text", "d(best at ratio) 95% CI (simultaneous)", plain), Column("indist_text", "same as best?", plain),
    Column("diff_to_baseline", "d(base)", lambda v: "" if v is None else f"{v:+.4f}"),
    Column("dbase_text", "d(base) 95% CI", plain), Column("test_text", "test acc [95% CI]", plain),
    Column("time_s", "train s (mean)", fixed(1)),
]


def write_report(study, config: ScalingStudyConfig, out_dir: str | Path, *, num_classes: int | None = None) -> dict[str, Any]:

    out = Path(out_dir)
    n_classes = num_classes or trained_classes(study) or config.base.num_classes
    analysis = analyse(study, config, config.candidates(n_classes), config.groups(), control=config.control_keys(),
                       chains=config.chains(), negative=config.negative_keys(), control_kind=config.control)
    rows = analysis["rows"]
    decorate(rows)
    for r in rows:
        r["acc"] = r.get("mean")
        r["time_s"] = r["train_time_s"] / r["seeds_done"] if r.get("train_time_s") and r["seeds_done"] else None
        r["seeds_done"] = f"{r['seeds_done']}/{config.seeds}"
    progress = study.progress()
    what = (f"{config.base.name} on {config.data_label()}, {config.budget_label()}, from {config.img_size} px; "
            f"validation accuracy with paired-bootstrap 95% intervals; FLOPs are multiply-adds; compound uses "
            f"alpha {config.alpha:g}, beta {config.beta:g}, gamma {config.gamma:g}")
    write_tables(rows, ROW_COLUMNS, out / "scaling")
    baseline = [r for r in rows if r["method"] == "baseline"]
    series = {m: baseline + [r for r in rows if r["method"] == m and r["role"] != "control"] for m in config.methods}
    for pts in series.values():
        for p in pts:
            p["label"] = "base" if p["method"] == "baseline" else f"{p['target_ratio']:g}x"
    plots.accuracy_vs_flops(series, out / "scaling.png", connect=True, label_key="label",
                            title=f"Scaling {config.base.name}: one dimension vs compound", note=what)
    summary = {"verdict": analysis["verdict"], "decided": analysis["decided"], "study": study.name,
               "storage": redact(study.storage.url), "kind": KIND, "measured": what, "progress": progress,
               "finished": progress["waiting"] == 0 and progress["running"] == 0, "control": analysis.get("control"),
               "negative_control": analysis.get("negative_control"), "groups": analysis.get("groups"), "selection": analysis.get("selection"),
               "saturation": analysis.get("saturation"), "rows": [public_row(r) for r in rows],
               "per_candidate": [public_row(r) for r in rows],
               "settings": {k: v for k, v in config.settings().items() if k != "base"},
               "run": run_record(study), "predictions": analysis.get("predictions")}
    atomic_write_text(out / "scaling.json", json.dumps(summary, indent=2, default=float) + "\n")
    lines = [f"# Scaling study: {study.name}", "", *control_lines(analysis), f"**{analysis['verdict']}**", "",
             f"Measured: {what}.", "",
             f"Trials: {progress['complete']} complete, {progress['failed']} failed, {progress['running']} running, "
             f"{progress['waiting']} waiting.", "", "![accuracy vs FLOPs](scaling.png)", "",
             to_markdown(rows, ROW_COLUMNS)]
    sat = analysis.get("saturation")
    if sat:
        lines += ["", "## Saturation (Figure 3): each step's gain, paired, Holm-corrected over every step", ""]
        lines += [f"- {m}: {v['text']}" for m, v in sat["methods"].items()]
        lines += [f"  - {t['lower']} -> {t['higher']}: " + ("missing" if t["missing"] else
                  f"{t['gain']:+.4f} (95% CI {t['ci_low']:+.4f} to {t['ci_high']:+.4f}, Holm p {t['p_holm']:.3f})")
                  for t in sat["steps"]]
    atomic_write_text(out / "summary.md", "\n".join(lines))
    return summary
