"""Step 1 of compound scaling: a grid search for the coefficients alpha, beta, gamma.

Grid points are ``alpha, beta, gamma >= 1`` on a grid of step ``grid_step`` whose product
``alpha * beta**2 * gamma**2`` lies within a *relative* tolerance of 2. The paper's point
(1.2, 1.1, 1.15) and the three single-dimension corners (2, 1, 1), (1, sqrt 2, 1), (1, 1, sqrt 2)
are always added.

Matched cost (the policy): rounding (whole blocks, channels in multiples of 8, whole pixels) makes
the real multiply-adds of ``scale(base, phi, alpha, beta, gamma)`` differ from ``2**phi`` times the
base's, by a lot for small networks at small resolutions. A point whose realised ratio is off the
target by more than ``cost_tolerance`` (relative) is re-solved along its own direction: phi is
bisected (``match_flops``) until the nearest rounding step to the target is found. A grid point that
is still off target is dropped (and counted); the paper's point and the corners are kept and
flagged. Points that then build the same network at the same resolution are merged into one
candidate. Every candidate reports its realised depth, width, resolution and multiply-adds ratio.

The positive control (the base, and the base at 4x its multiply-adds) is trained beside the grid
with the same seeds. Scores are validation accuracies, compared with paired statistics
(:mod:`effnet.search.stats`); test accuracy is reported, never used to choose. FLOPs are
multiply-adds (``effnet.arch.cost``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ...arch import ALPHA, BETA, GAMMA, Network, cost, scale
from ...arch.matching import match_flops
from ...checks import check_choice, check_float
from ...errors import EffnetError
from ...fsutil import atomic_write_text
from .. import plots
from ..engine import PlannedStudy
from ..runner import StudyOptions
from ..storage import redact
from ..study import (CONTROLS, Candidate, StudyConfig, analyse, budget_controls, control_lines, control_pair, run_record,
                     run_study, trained_classes, write_json)
from ..tables import Column, decorate, fixed, millions, plain, public_row, to_markdown, write_tables

KIND = "compound-scaling grid search"
TARGET = 2.0
MAX_GRID_POINTS = 5000


@dataclass(frozen=True, order=True)
class Coefficients:
    """Depth, width and resolution coefficients (the paper's alpha, beta, gamma)."""

    alpha: float
    beta: float
    gamma: float

    @property
    def product(self) -> float:
        """alpha * beta^2 * gamma^2: FLOPs grow about this much per unit of phi."""
        return self.alpha * self.beta**2 * self.gamma**2

    def label(self) -> str:
        return f"alpha {self.alpha:g}, beta {self.beta:g}, gamma {self.gamma:g}"

    @property
    def key(self) -> str:
        return f"a{self.alpha:g}-b{self.beta:g}-g{self.gamma:g}"


def _axis(step: float, upper: float) -> list[float]:
    values, k = [], 0
    while True:
        v = round(1.0 + k * step, 10)
        if v > upper + 1e-9:
            return values
        values.append(v)
        k += 1


def grid_candidates(
    step: float = 0.05,
    tolerance: float = 0.1,
    *,
    target: float = TARGET,
    max_coefficient: float | None = None,
) -> list[Coefficients]:
    """Every (alpha, beta, gamma) on the grid ``1, 1 + step, ...`` with alpha*beta^2*gamma^2 within
    ``tolerance`` (relative) of ``target``; ``max_coefficient`` caps each coefficient."""
    step = check_float("grid step", step, 0.0, strict=True)
    if step > 1:
        raise EffnetError(f"grid step must be at most 1, got {step:g}")
    tolerance = check_float("tolerance", tolerance, 0.0)
    if tolerance >= 1:
        raise EffnetError(f"tolerance is relative and must be below 1, got {tolerance:g}")
    high = target * (1 + tolerance)
    cap_a, cap_bg = high, math.sqrt(high)
    if max_coefficient is not None:
        max_coefficient = check_float("max coefficient", max_coefficient, 1.0)
        cap_a, cap_bg = min(cap_a, max_coefficient), min(cap_bg, max_coefficient)
    alphas, others = _axis(step, cap_a), _axis(step, cap_bg)
    if len(alphas) * len(others) ** 2 > 50_000_000:
        raise EffnetError(f"grid step {step:g} makes a grid too large to enumerate; use a coarser --grid-step")
    out = [Coefficients(a, b, g) for a in alphas for b in others for g in others
           if abs(a * b * b * g * g - target) <= tolerance * target + 1e-12]
    if not out:
        raise EffnetError(f"no alpha, beta, gamma >= 1 on a {step:g} grid has alpha*beta^2*gamma^2 within "
                          f"{tolerance:.0%} of {target:g}; use a finer --grid-step or a larger --tolerance")
    if len(out) > MAX_GRID_POINTS:
        raise EffnetError(f"the grid has {len(out)} candidates (more than {MAX_GRID_POINTS}); "
                          "use a coarser --grid-step or a smaller --tolerance")
    return out


def scaled_candidate(base: Network, c: Coefficients, phi: float, img_size: int) -> tuple[Network, int]:
    """The base scaled by ``c`` at ``phi``, and the pixels it trains at: ``round(img_size * gamma**phi)``."""
    res = max(1, int(round(img_size * c.gamma**phi)))
    name = f"{base.name}-a{c.alpha:g}-b{c.beta:g}-g{c.gamma:g}-phi{phi:g}"
    return scale(base, phi, c.alpha, c.beta, c.gamma, image_size=res, name=name), res


@dataclass(frozen=True)
class ScaleSearchConfig(StudyConfig):
    """Everything that defines a grid search and its results (stored with the study)."""

    phi: float = 1.0
    grid_step: float = 0.05
    tolerance: float = 0.1
    max_coefficient: float | None = None
    cost_tolerance: float = 0.1
    prune: bool = False
    control: str = "budget"  # the positive control (effnet.search.study.CONTROLS)

    def check(self) -> list[Coefficients]:
        """Validate and return the grid points (one-line errors for bad settings)."""
        self.check_budget()
        check_choice("control", self.control, CONTROLS)
        phi = check_float("phi", self.phi, 0.0, strict=True)
        if phi > 8:
            raise EffnetError(f"phi must be at most 8 for a search, got {phi:g}")
        cost_tol = check_float("cost tolerance", self.cost_tolerance, 0.0)
        if cost_tol >= 1:
            raise EffnetError(f"cost tolerance is relative and must be below 1, got {cost_tol:g}")
        return grid_candidates(self.grid_step, self.tolerance, max_coefficient=self.max_coefficient)

    def plan(self, num_classes: int | None = None) -> list[Candidate]:
        """The base, the reference points and the grid, matched on cost and merged, then the controls."""
        return self.plan_with_notes(num_classes)[0]

    def control_keys(self) -> tuple[str, str]:
        """The positive control's (smaller, bigger) pair."""
        return ("base-quarter", "base") if self.control == "budget" else ("base", "control-4x")

    def negative_keys(self) -> tuple[str, str] | None:
        return ("base", "base-twin") if self.control == "budget" else None

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        if self.control == "compound":  # as studies made before the choice stored it
            out.pop("control")
        return out

    def plan_with_notes(self, num_classes: int | None = None) -> tuple[list[Candidate], dict[str, Any]]:
        """:meth:`plan` and what planning did: grid points dropped off target, keys merged.

        Planning solves many points for cost, so the result is kept per (settings, classes).
        """
        key = (json.dumps(self.settings(), sort_keys=True), num_classes)
        if key not in _PLANS:
            if len(_PLANS) > 8:
                _PLANS.clear()
            _PLANS[key] = _cached_plan(key, lambda: self._plan(num_classes))
        cands, notes = _PLANS[key]
        return list(cands), dict(notes)

    def _plan(self, num_classes: int | None) -> tuple[list[Candidate], dict[str, Any]]:
        grid = self.check()
        base = self.base if num_classes is None else self.base.replace(num_classes=num_classes)
        small, big = control_pair(base, self.img_size)
        out = [_named(small, base, Coefficients(1.0, 1.0, 1.0), 0.0, self.img_size)]
        if self.control == "compound":
            out.append(_named(big, base, Coefficients(ALPHA, BETA, GAMMA), big.facts["multiplier"], self.img_size))
        seen = {_signature(c): c.key for c in out}
        merged: dict[str, list[str]] = {}
        dropped = 0
        points = [("reference", c) for c in REFERENCE_POINTS] + [("candidate", c) for c in grid
                                                                  if c not in REFERENCE_POINTS]
        for role, c in points:
            cand = self._matched(base, c, role)
            if cand is None:
                dropped += 1
                continue
            sig = _signature(cand)
            if sig in seen:
                merged.setdefault(seen[sig], []).append(cand.key)
                continue
            seen[sig] = cand.key
            out.append(cand)
        # the controls are the base (its coefficients and realised cost), trained on a quarter of the budget or
        # with other seeds
        controls = [dataclasses.replace(c, facts={**out[0].facts, **c.facts})
                    for c in budget_controls(out[0].desc, self.img_size)] if self.control == "budget" else []
        return ([Candidate(c.key, c.desc, c.img_size, c.role, {**c.facts, "merged": merged.get(c.key, [])})
                 for c in out] + controls, {"dropped_off_target": dropped, "merged": merged})

    def _matched(self, base: Network, c: Coefficients, role: str) -> Candidate | None:
        m = matched_point(base, c, phi=self.phi, img_size=self.img_size, cost_tolerance=self.cost_tolerance)
        if not m["on_target"] and role == "candidate":
            return None
        desc = m["desc"].replace(name=f"{base.name}-a{c.alpha:g}-b{c.beta:g}-g{c.gamma:g}-phi{m['phi']:.4g}")
        return Candidate(c.key, desc, m["img_size"], role, {
            **_realised(base, desc, m["img_size"], self.img_size), "alpha": c.alpha, "beta": c.beta,
            "gamma": c.gamma, "product": c.product, "phi": m["phi"], "target_ratio": m["target_ratio"],
            "achieved_ratio": m["ratio"], "on_target": m["on_target"]})


def matched_point(base: Network, c: Coefficients, *, phi: float, img_size: int,
                  cost_tolerance: float = 0.1) -> dict[str, Any]:
    """The base scaled by ``c`` to ``2**phi`` times its multiply-adds, as the grid search plans it.

    First at ``phi`` itself (``nominal_ratio``: the real multiply-adds over the base's); when that
    is off the target by more than ``cost_tolerance`` (relative), phi is re-solved along ``c``'s
    direction to the nearest rounding step. Returns the network (``desc``), the pixels it trains
    at, the ratio it realises, the phi used and whether it is on target."""
    target = TARGET ** phi
    base_macs = cost(base, img_size).macs
    desc, px = scaled_candidate(base, c, phi, img_size)
    nominal = ratio = cost(desc, px).macs / base_macs
    used = phi
    if abs(ratio / target - 1) > cost_tolerance:
        m = match_flops(base, "compound", target, img_size=img_size, coefficients=(c.alpha, c.beta, c.gamma),
                        iterations=20)
        desc, px, ratio, used = m.desc, m.img_size, m.ratio, m.multiplier
    return {"desc": desc, "img_size": px, "target_ratio": target, "nominal_ratio": nominal, "ratio": ratio,
            "phi": used, "on_target": abs(ratio / target - 1) <= cost_tolerance}


_PLANS: dict[tuple[str, int | None], tuple[list[Candidate], dict[str, Any]]] = {}
Plan = tuple[list[Candidate], dict[str, Any]]


def plan_cache_dir() -> Path | None:
    """Where solved grids are kept between runs: ``$EFFNET_PLAN_CACHE`` (``off`` disables), else
    ``$XDG_CACHE_HOME/effnet/plans`` (``~/.cache`` by default)."""
    env = os.environ.get("EFFNET_PLAN_CACHE")
    if env:
        return None if env.lower() == "off" else Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "effnet" / "plans"


@functools.cache
def _code_fingerprint() -> str:
    """Hash of the sources a plan depends on (descriptions, scaling, rounding, cost, matching), so a
    changed planner never reads an old plan."""
    package = Path(__file__).parents[2]  # src/effnet
    files = sorted((package / "arch").rglob("*.py")) + [package / "search" / "kinds" / "grid.py",
                                                         package / "search" / "kinds" / "scaling.py",
                                                         package / "search" / "study.py"]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _cached_plan(key: tuple[str, int | None], solve: Callable[[], Plan]) -> Plan:
    """``solve()``, kept on disk under :func:`plan_cache_dir`: solving a fine grid for matched cost
    takes most of a second, which every ``--list`` and every worker would otherwise pay. A missing,
    unreadable or damaged cache file is solved again; a cache that cannot be written is skipped."""
    folder = plan_cache_dir()
    if folder is None:
        return solve()
    name = hashlib.sha256(json.dumps([key, _code_fingerprint()]).encode()).hexdigest()[:32]
    path = folder / f"{name}.json"
    try:
        data = json.loads(path.read_text())
        cands = [Candidate(c["key"], Network.from_dict(c["desc"]), int(c["img_size"]), c["role"], c["facts"],
                           bool(c["pretrained"]), float(c["budget_fraction"]), int(c["seed_offset"]))
                 for c in data["candidates"]]
        return cands, dict(data["notes"])
    except (OSError, ValueError, KeyError, TypeError, EffnetError):
        pass
    cands, notes = solve()
    data = {"candidates": [{"key": c.key, "desc": c.desc.to_dict(), "img_size": c.img_size, "role": c.role,
                            "facts": dict(c.facts), "pretrained": c.pretrained, "budget_fraction": c.budget_fraction,
                            "seed_offset": c.seed_offset} for c in cands], "notes": notes}
    text = json.dumps(data)
    if json.loads(text) == data:  # only plans that come back from JSON exactly are kept
        with contextlib.suppress(OSError):
            atomic_write_text(path, text)
    return cands, notes
REFERENCE_POINTS = (Coefficients(ALPHA, BETA, GAMMA), Coefficients(2.0, 1.0, 1.0),
                    Coefficients(1.0, round(math.sqrt(2), 4), 1.0), Coefficients(1.0, 1.0, round(math.sqrt(2), 4)))


def _realised(base: Network, desc: Network, px: int, img_size: int) -> dict[str, float]:
    """Depth (blocks), width (channels of the last stage) and resolution, each relative to the base."""
    return {"depth": desc.num_blocks / base.num_blocks,
            "width": desc.stages[-1].out_channels / base.stages[-1].out_channels, "resolution_x": px / img_size}


def _signature(c: Candidate) -> str:
    return json.dumps([c.desc.replace(name="x").to_dict(), c.img_size], sort_keys=True)


def _named(cand: Candidate, base: Network, c: Coefficients, phi: float, img_size: int) -> Candidate:
    desc = cand.desc.replace(name=f"{base.name}-a{c.alpha:g}-b{c.beta:g}-g{c.gamma:g}-phi{phi:.4g}")
    return Candidate(cand.key, desc, cand.img_size, cand.role,
                     {**_realised(base, desc, cand.img_size, img_size),
                      **cand.facts, "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "product": c.product,
                      "phi": phi, "on_target": True})


def _pruner(enabled: bool):
    if not enabled:
        return None
    import optuna

    # Compare with the median of finished trials at the same epoch once a few have finished.
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)


def default_study_name(config: ScaleSearchConfig) -> str:
    return f"scale-search-{config.base.name}"


def run_scale_search(
    config: ScaleSearchConfig,
    opts: StudyOptions,
    *,
    trainer=None,
    on_event: Callable | None = None,
) -> dict[str, Any]:
    """Run (or resume, or join) a grid search and write its report; returns the summary.

    ``trainer`` replaces the default training (``QuickTrainer``): an
    :class:`~effnet.search.training.Evaluator`, ``trainer(desc, img_size, seed, reporter, **extra) ->
    {"val_acc": ..., optional "val_pred"/"val_target"}``, where the controls pass ``budget_fraction``
    (the quarter-budget run) and ``seed_offset`` (the twin) in ``extra``.
    Bad settings, an unreachable storage and a study created with other settings raise one-line
    errors before any trial runs.
    """
    config.check()
    name = opts.study_name or default_study_name(config)
    study = run_study(KIND, config, opts, name, config.plan, trainer=trainer, on_event=on_event,
                      pruner_factory=(lambda: _pruner(True)) if config.prune else None)
    return write_report(study, config, opts.out_dir, num_classes=getattr(trainer, "num_classes", None))


# ----- report ------------------------------------------------------------------------------

TRIAL_COLUMNS = [
    Column("key", "candidate", plain), Column("seed", "seed", plain), Column("resolution", "px", plain),
    Column("macs", "FLOPs (M mult-adds)", millions), Column("val_acc", "val acc", fixed(4)),
    Column("test_acc", "test acc", fixed(4)), Column("train_time_s", "train s", fixed(1)),
    Column("trial_time_s", "trial s", fixed(1)), Column("state", "state", plain), Column("trial", "trial #", plain),
    Column("attempts", "attempts", plain),
]
POINT_COLUMNS = [
    Column("key", "candidate", plain), Column("role", "role", plain), Column("alpha", "alpha", plain),
    Column("beta", "beta", plain), Column("gamma", "gamma", plain), Column("phi", "phi used", fixed(3)),
    Column("depth", "depth x", fixed(2)), Column("width", "width x", fixed(2)),
    Column("resolution", "px", plain), Column("macs", "FLOPs (M mult-adds)", millions),
    Column("achieved_ratio", "FLOPs x base", fixed(2)), Column("seeds_done", "seeds", plain),
    Column("mean", "val acc", fixed(4)), Column("ci_text", "95% CI", plain),
    Column("diff_to_best", "d(best)", lambda v: "" if v is None else f"{v:+.4f}"),
    Column("dbest_text", "d(best) 95% CI (simultaneous)", plain),
    Column("indist_text", "same as best?", plain),
    Column("diff_to_baseline", "d(base)", lambda v: "" if v is None else f"{v:+.4f}"),
    Column("dbase_text", "d(base) 95% CI", plain),
    Column("test_text", "test acc [95% CI]", plain), Column("train_time_s", "train s (all seeds)", fixed(1)),
]


def trial_rows(study: PlannedStudy) -> list[dict[str, Any]]:
    results, attempts = study.results(), study.attempts()
    rows = []
    for key, spec in study.specs.items():
        r = results.get(key)
        a = r.attrs if r else {}
        rows.append({"key": spec.params["candidate"], "seed": spec.params["seed"],
                     "resolution": spec.info.get("resolution"), "macs": a.get("macs"),
                     "val_acc": r.value if r and r.state == "COMPLETE" else None, "test_acc": a.get("test_acc"),
                     "train_time_s": a.get("train_time_s"), "trial_time_s": a.get("trial_time_s"),
                     "state": r.state if r else "MISSING", "trial": r.number if r else None,
                     "attempts": attempts.get(key, 0)})
    return rows


def write_report(study: PlannedStudy, config: ScaleSearchConfig, out_dir: str | Path, *,
                 num_classes: int | None = None) -> dict[str, Any]:
    """Tables (CSV and Markdown), ``best.json`` (also ``--json``), a heat map and an accuracy-vs-FLOPs plot."""
    out = Path(out_dir)
    n_classes = num_classes or trained_classes(study) or config.base.num_classes
    candidates, notes = config.plan_with_notes(n_classes)
    analysis = analyse(study, config, candidates, control=config.control_keys(), negative=config.negative_keys(),
                       control_kind=config.control)
    points = analysis["rows"]
    decorate(points)
    trials = trial_rows(study)
    progress = study.progress()
    by_key = {p["key"]: p for p in points}
    best = by_key.get(analysis["best"]) if analysis.get("best") else None
    base_cost = cost(config.base.replace(num_classes=n_classes), config.img_size)
    what = (f"{config.base.name} on {config.data_label()}, phi {config.phi:g} (target {TARGET ** config.phi:.3g}x "
            f"multiply-adds), {config.budget_label()} at {config.img_size} px x gamma^phi; validation accuracy with "
            f"paired-bootstrap 95% intervals; FLOPs are multiply-adds")
    write_tables(trials, TRIAL_COLUMNS, out / "trials")
    write_tables(points, POINT_COLUMNS, out / "points")
    summary: dict[str, Any] = {
        "verdict": analysis["verdict"], "decided": analysis["decided"],
        "study": study.name, "storage": redact(study.storage.url), "kind": KIND,
        "constraint": f"|alpha*beta^2*gamma^2 - 2| <= {config.tolerance:g} * 2 (relative tolerance)",
        "matched_cost": (f"each point re-solved along its direction to {TARGET ** config.phi:.3g}x the base's "
                         f"multiply-adds when off by more than {config.cost_tolerance:.0%}; grid points still off "
                         f"target dropped ({notes.get('dropped_off_target', 0)}); identical networks merged"),
        "candidates": len(points), "trials": len(trials), "progress": progress,
        "finished": progress["waiting"] == 0 and progress["running"] == 0,
        "base": {"name": config.base.name, "img_size": config.img_size, "params": base_cost.params,
                 "macs": base_cost.macs},
        "control": analysis.get("control"), "negative_control": analysis.get("negative_control"),
        "winner": analysis.get("winner"),
        "indistinguishable": analysis.get("indistinguishable"), "selection": analysis.get("selection"),
        "best": None, "measured": what, "settings": {k: v for k, v in config.settings().items() if k != "base"},
        "per_candidate": [public_row(p) for p in points], "groups": analysis.get("groups"),
        "run": run_record(study), "predictions": analysis.get("predictions"),
    }
    if best is not None:
        summary["best"] = {k: best.get(k) for k in ("alpha", "beta", "gamma", "product", "macs", "params",
                                                    "resolution", "seeds_done", "achieved_ratio", "ci_low", "ci_high",
                                                    "test_mean", "test_ci_low", "test_ci_high")}
        summary["best"].update(val_acc=best["mean"], role="winner" if analysis["winner"] else
                               "leader on validation, not separated from the others (see verdict)")
    write_json(out / "best.json", summary)
    grid_points = [dict(p, acc=p.get("mean")) for p in points if p["role"] in ("candidate", "reference")]
    plots.grid_heatmap([p for p in grid_points if p.get("alpha") is not None], out / "heatmap.png",
                       best=dict(best, acc=best["mean"]) if best and analysis["winner"] else None,
                       title=f"Grid search on {config.data.source}: best accuracy per (beta, gamma)", note=what)
    series = {"grid": grid_points, "base and controls": [dict(p, acc=p.get("mean")) for p in points
                                                         if p["role"] in ("baseline", "control")]}
    plots.accuracy_vs_flops(series, out / "acc_vs_flops.png",
                            highlight=dict(best, acc=best["mean"]) if best and analysis["winner"] else None,
                            title=f"Grid search on {config.data.source}: accuracy vs FLOPs", note=what)
    _write_summary_md(out, summary, points, trials)
    return summary


def _write_summary_md(out: Path, summary: Mapping[str, Any], points, trials) -> None:
    p = summary["progress"]
    lines = [f"# Compound-scaling grid search: {summary['study']}", "", *control_lines(summary),
             f"**{summary['verdict']}**", "",
             f"Measured: {summary['measured']}.", "",
             f"Constraint: {summary['constraint']}. Matched cost: {summary['matched_cost']}. "
             f"{summary['candidates']} candidates, {summary['trials']} trials ({p['complete']} complete, "
             f"{p['pruned']} pruned, {p['failed']} failed, {p['running']} running, {p['waiting']} waiting). "
             f"Selection: {summary['selection']}.", ""]
    lines += ["![accuracy per (beta, gamma)](heatmap.png)", "", "![accuracy vs FLOPs](acc_vs_flops.png)", "",
              "## Candidates", "", to_markdown(points, POINT_COLUMNS), "## Every trial", "",
              to_markdown(trials, TRIAL_COLUMNS)]
    atomic_write_text(out / "summary.md", "\n".join(lines))
