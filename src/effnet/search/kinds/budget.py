"""Find the budget: the controls at doubling training budgets, until the positive control separates.

A study can only decide differences its budget resolves. Before a study, this kind trains three
networks at each rung of a ladder of budgets in optimiser steps (``start``, ``2 x start``, ...):

* the base at the rung's budget and the base at a quarter of it (the positive control: a
  difference of known direction that no scaling method produces);
* the base again with other training seeds (the negative control: it must come out
  indistinguishable from the base).

The ladder stops at the first rung where the positive control is separated, its quarter-budget
run has learned (its interval lies above the majority class's rate: otherwise the control compares
training with none, which any budget separates) and the negative control is not separated
(racing: no rung beyond the answer is trained), or at ``max_budget_steps``. The answer is
that budget, with what one study at it would cost on this machine: the base's measured time per
trial there, scaled by each candidate's multiply-adds, times the seeds. Every rung is its own
resumable study (``<name>-<steps>steps``), so an interrupted ladder continues where it stopped.
"""
from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ...checks import check_int
from ...errors import EffnetError
from ...fsutil import atomic_write_text
from ..runner import StudyOptions
from ..storage import redact
from .. import plots
from ..study import (CONTROL_FRACTION, Candidate, StudyConfig, analyse, budget_controls, control_description,
                     control_lines, majority_rate, run_record, run_study, trained_classes, write_json)
from .scaling import ScalingStudyConfig

KIND = "budget ladder"


@dataclass(frozen=True)
class BudgetLadderConfig(StudyConfig):
    """The base, the data, the seeds and the ladder: budgets from ``start_steps``, doubling, up to
    ``max_budget_steps``. ``ratios`` and ``methods`` describe the scaling study whose cost the
    answer estimates."""

    start_steps: int = 100
    max_budget_steps: int = 3200
    ratios: tuple[float, ...] = (2.0, 4.0, 8.0)

    def check(self) -> None:
        self.check_budget()
        check_int("first budget (steps)", self.start_steps, 1)
        check_int("largest budget (steps)", self.max_budget_steps, self.start_steps)
        if self.seeds < 2:
            raise EffnetError("the budget ladder needs at least 2 seeds (--seeds; 3 or more where time allows): "
                              "with one, no interval can be computed")

    def rungs(self) -> list[int]:
        out, steps = [], self.start_steps
        while steps <= self.max_budget_steps:
            out.append(steps)
            steps *= 2
        return out

    def at(self, steps: int) -> "BudgetLadderConfig":
        """This config with every trial's budget ``steps`` optimiser steps."""
        return dataclasses.replace(self, budget=dataclasses.replace(self.budget, steps=steps, max_steps=None))

    def candidates(self, num_classes: int | None = None) -> list[Candidate]:
        base = self.base if num_classes is None else self.base.replace(num_classes=num_classes)
        base = base.replace(name=f"{base.name}-base")
        return [Candidate("base", base, self.img_size, "baseline",
                          {"method": "baseline", "target_ratio": 1.0, "achieved_ratio": 1.0}),
                *budget_controls(base, self.img_size)]


def default_study_name(config: BudgetLadderConfig) -> str:
    return f"budget-ladder-{config.base.name}"


def study_cost(config: BudgetLadderConfig, num_classes: int | None) -> dict[str, Any]:
    """The scaling study (``config.ratios``, every method, with its controls) in units of one base
    trial: each candidate's multiply-adds over the base's, times its share of the budget."""
    scaling = ScalingStudyConfig(config.base, data=config.data, budget=config.budget, img_size=config.img_size,
                                 seeds=config.seeds, ratios=config.ratios)
    cands = scaling.candidates(num_classes)
    units = sum(float(c.facts.get("achieved_ratio") or 1.0) * c.budget_fraction for c in cands)
    return {"candidates": len(cands), "seeds": config.seeds, "base_trial_units": units * config.seeds,
            "ratios": list(config.ratios)}


def run_budget_ladder(config: BudgetLadderConfig, opts: StudyOptions, *, trainer=None,
                      on_event: Callable | None = None, on_rung: Callable[[dict], None] | None = None
                      ) -> dict[str, Any]:
    """Climb the ladder (resuming finished rungs); returns the summary and writes ``budget.json``,
    ``budget.md`` and ``budget.png`` in ``opts.out_dir``."""
    config.check()
    name = opts.study_name or default_study_name(config)
    rungs: list[dict[str, Any]] = []
    found, storage = None, None
    classes = getattr(trainer, "num_classes", None)
    for steps in config.rungs():
        cfg = config.at(steps)
        study = run_study(KIND, cfg, opts, f"{name}-{steps}steps", cfg.candidates, trainer=trainer,
                          on_event=on_event)
        classes = classes or trained_classes(study)
        storage = redact(study.storage.url)
        cands = cfg.candidates(classes)
        analysis = analyse(study, cfg, cands, groups={}, control=("base-quarter", "base"),
                           negative=("base", "base-twin"), control_kind="budget")
        rows = {r["key"]: r for r in analysis["rows"]}
        if any(r["seeds_done"] < cfg.seeds for r in rows.values()):
            raise EffnetError(f"the rung at {steps} steps is not finished (some trials failed or run elsewhere); "
                              "rerun the same command to continue")
        base_trials = [r for r in study.records() if r.state == "COMPLETE" and r.params.get("candidate") == "base"]
        trial_s = [float(r.attrs["trial_time_s"]) for r in base_trials if r.attrs.get("trial_time_s") is not None]
        pos, neg = analysis.get("control") or {}, analysis.get("negative_control") or {}
        chance = majority_rate(base_trials)
        quarter_low = rows["base-quarter"].get("ci_low")
        learned = chance is None or (quarter_low is not None and quarter_low > chance)
        rung = {"steps": steps, "images_seen": steps * cfg.budget.batch_size, "study": study.name,
                "positive": pos, "negative": neg, "base_accuracy": rows["base"]["run_mean"],
                "quarter_accuracy": rows["base-quarter"]["run_mean"], "twin_accuracy": rows["base-twin"]["run_mean"],
                "base_trial_s": statistics.median(trial_s) if trial_s else None, "chance": chance,
                "quarter_learned": learned, "run": run_record(study)}
        rungs.append(rung)
        if on_rung is not None:
            on_rung(rung)
        if pos.get("separated") and neg.get("passed") and learned:
            found = rung
            break
    summary = _summary(config, name, rungs, found, classes, storage)
    out = Path(opts.out_dir)
    write_json(out / "budget.json", summary)
    plots.budget_ladder(rungs, out / "budget.png", title=f"Budget ladder: {config.base.name} on {config.data.source}",
                        note=summary["measured"])
    atomic_write_text(out / "budget.md", "\n".join([f"# Budget ladder: {name}", "", *control_lines(summary),
                                              f"**{summary['verdict']}**", "", f"Measured: {summary['measured']}.", "",
                                              "![the controls at each budget](budget.png)", "",
                                              *_rung_table(rungs), ""]))
    return summary


def _summary(config: BudgetLadderConfig, name: str, rungs: list[dict], found: dict | None,
             classes: int | None, storage: str | None) -> dict[str, Any]:
    what = (f"{config.base.name} on {config.data_label()} at {config.img_size} px, batch {config.budget.batch_size}, "
            f"{config.budget.recipe} recipe, {config.seeds} paired seeds; positive control: "
            f"{control_description('budget')}; negative control: the base again with other training seeds; "
            f"budgets from {config.start_steps} steps, doubling, up to {config.max_budget_steps}")
    last = rungs[-1] if rungs else None
    estimate = None
    if found is not None:
        cost = study_cost(config.at(found["steps"]), classes)
        seconds = cost["base_trial_units"] * found["base_trial_s"] if found["base_trial_s"] else None
        estimate = {**cost, "seconds": seconds, "base_trial_s": found["base_trial_s"]}
        minutes = f"about {seconds / 60:.0f} minutes" if seconds else "an unmeasured time"
        verdict = (f"Budget found: at {found['steps']} steps ({found['images_seen']:,} images seen) the positive control "
                   f"separates (full minus quarter budget {found['positive']['diff']:+.4f}, 95% CI "
                   f"{found['positive']['ci_low']:+.4f} to {found['positive']['ci_high']:+.4f}) between two runs that "
                   f"learned (the quarter's {found['quarter_accuracy']:.4f} against the majority class's "
                   f"{found['chance']:.4f}), and the negative control does not. A scaling study at this budget ({cost['candidates']} candidates x "
                   f"{config.seeds} seeds, ratios {', '.join(f'{r:g}' for r in config.ratios)}) would take {minutes} "
                   f"of one worker on this machine (the base's median trial time at this budget, scaled by each "
                   f"candidate's multiply-adds).")
    elif last is not None:
        pos = last["positive"]
        if not pos.get("separated"):
            why = (f"the positive control is not separated (full minus quarter {pos.get('diff', 0):+.4f}, 95% CI "
                   f"{pos.get('ci_low', 0):+.4f} to {pos.get('ci_high', 0):+.4f})")
        elif not last["negative"].get("passed"):
            why = "the negative control came out separated, so the intervals understate the noise"
        else:
            why = (f"the quarter-budget run has not learned (accuracy {last['quarter_accuracy']:.4f}, not separated "
                   f"from the majority class's {last['chance']:.4f}), so the control compares training with none")
        verdict = (f"No budget found up to {last['steps']} steps, the largest tried: at it {why}. A decision needs a "
                   f"larger budget (--max-budget-steps), more seeds or more validation images.")
    else:
        verdict = "No rung was trained."
    return {"verdict": verdict, "decided": found is not None, "kind": KIND, "study": name,
            "budget_steps": found["steps"] if found else None, "measured": what,
            "control": (found or last or {}).get("positive"), "negative_control": (found or last or {}).get("negative"),
            "rungs": rungs, "estimate": estimate, "control_fraction": CONTROL_FRACTION,
            "settings": {k: v for k, v in config.settings().items() if k != "base"}, "storage": storage}


def _rung_table(rungs: list[dict]) -> list[str]:
    lines = ["| steps | images seen | base acc | quarter acc | twin acc | full - quarter [95% CI] | "
             "twin - base [95% CI] | base trial s |", "|---|---|---|---|---|---|---|---|"]
    for r in rungs:
        p, n = r["positive"], r["negative"]
        lines.append(f"| {r['steps']} | {r['images_seen']:,} | {r['base_accuracy']:.4f} | {r['quarter_accuracy']:.4f} | "
                     f"{r['twin_accuracy']:.4f} | {p['diff']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] | "
                     f"{n['diff']:+.4f} [{n['ci_low']:+.4f}, {n['ci_high']:+.4f}] | "
                     + (f"{r['base_trial_s']:.1f} |" if r["base_trial_s"] is not None else "- |"))
    return lines
