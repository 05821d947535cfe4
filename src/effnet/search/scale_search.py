"""Step 1 of compound scaling: a grid search for the coefficients alpha, beta, gamma.

Candidates are ``alpha, beta, gamma >= 1`` on a grid of step ``grid_step`` whose product
``alpha * beta**2 * gamma**2`` lies within a *relative* tolerance of 2:
``|alpha * beta**2 * gamma**2 - 2| <= tolerance * 2``. Under compound scaling FLOPs grow about
``(alpha * beta**2 * gamma**2) ** phi``, so every candidate costs about ``2**phi`` times the base.
Each candidate is the base scaled by ``effnet.arch.scale(base, phi, alpha, beta, gamma)`` and
trained with one recipe, budget and seed at ``round(img_size * gamma**phi)`` pixels; its score is
the validation accuracy, averaged over seeds. FLOPs are multiply-adds (``effnet.arch.cost``).
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..arch import Network, cost, scale
from ..errors import EffnetError
from ..fsutil import atomic_write_text
from . import plots
from .keyed_study import KeyedStudy, TrialSpec, check_existing
from .recipes import DEFAULT_RECIPE, check_recipe
from .runner import StudyOptions, check_float, check_int, run_local_workers, timed_training, with_classes
from .storage import normalise_url, open_storage, redact
from .tables import Column, fixed, millions, plain, write_tables

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
class ScaleSearchConfig:
    """Everything that defines a grid search and its results (stored with the study)."""

    base: Network
    data: str = "elpv"
    phi: float = 1.0
    img_size: int = 64
    budget_epochs: int = 2
    grid_step: float = 0.05
    tolerance: float = 0.1
    max_coefficient: float | None = None
    seeds: int = 1
    batch_size: int = 32
    lr: float | None = None
    limit_per_class: int | None = None
    task: str = "default"
    augment: str = "none"
    max_steps: int | None = None
    prune: bool = False
    recipe: str = DEFAULT_RECIPE

    def check(self) -> list[Coefficients]:
        """Validate and return the candidates (one-line errors for bad settings)."""
        if not isinstance(self.base, Network):
            raise EffnetError("base must be a network description")
        check_int("training budget (epochs)", self.budget_epochs, 1)
        check_int("image size", self.img_size, 8)
        check_int("number of seeds", self.seeds, 1)
        check_int("batch size", self.batch_size, 1)
        phi = check_float("phi", self.phi, 0.0, strict=True)
        if phi > 8:
            raise EffnetError(f"phi must be at most 8 for a search, got {phi:g}")
        if self.lr is not None:
            check_float("learning rate", self.lr, 0.0, strict=True)
        if self.limit_per_class is not None:
            check_int("limit per class", self.limit_per_class, 1)
        if self.max_steps is not None:
            check_int("max steps", self.max_steps, 1)
        if not isinstance(self.data, str) or not self.data:
            raise EffnetError("data must name a data source")
        check_recipe(self.recipe)
        return grid_candidates(self.grid_step, self.tolerance, max_coefficient=self.max_coefficient)

    def settings(self) -> dict[str, Any]:
        d = asdict(self)
        d["base"] = self.base.to_dict()
        return json.loads(json.dumps(d))

    def specs(self) -> list[TrialSpec]:
        specs = []
        for c in self.check():
            for seed in range(self.seeds):
                key = f"a{c.alpha:g}-b{c.beta:g}-g{c.gamma:g}-s{seed}"
                res = max(1, int(round(self.img_size * c.gamma**self.phi)))
                specs.append(TrialSpec(key, {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "seed": seed},
                                       {"product": round(c.product, 6), "resolution": res}))
        return specs

    def trainer(self):
        from .training import QuickTrainer

        return QuickTrainer(self.data, self.budget_epochs, batch_size=self.batch_size, lr=self.lr,
                            limit_per_class=self.limit_per_class, task=self.task, augment=self.augment,
                            max_steps=self.max_steps, per_epoch=self.prune, recipe=self.recipe)


def _pruner(enabled: bool):
    if not enabled:
        return None
    import optuna

    # Compare with the median of finished trials at the same epoch once a few have finished.
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)


class _GridObjective:
    def __init__(self, config: ScaleSearchConfig, trainer) -> None:
        self.config, self.trainer = config, trainer

    def __call__(self, spec: TrialSpec, reporter) -> dict[str, Any]:
        p = spec.params
        c = Coefficients(p["alpha"], p["beta"], p["gamma"])
        desc, res = scaled_candidate(self.config.base, c, self.config.phi, self.config.img_size)
        desc = with_classes(desc, self.trainer)
        out = timed_training(self.trainer, desc, res, int(p["seed"]), reporter)
        cst = cost(desc, res)
        return {"value": float(out["val_acc"]), **out, "params": cst.params, "macs": cst.macs, "resolution": res,
                "num_classes": desc.num_classes, "depth_multiplier": c.alpha**self.config.phi, "width_multiplier": c.beta**self.config.phi}


def _open(config: ScaleSearchConfig, opts: StudyOptions, name: str) -> KeyedStudy:
    specs = config.specs()
    Path(opts.out_dir).mkdir(parents=True, exist_ok=True)
    url = normalise_url(opts.storage, opts.out_dir)
    storage = open_storage(url, heartbeat_interval=opts.heartbeat_interval, grace_period=opts.grace_period,
                           max_retry=opts.max_retry)
    check_existing(storage, name, KIND, config.settings())
    return KeyedStudy(storage, name, KIND, config.settings(), specs, pruner=_pruner(config.prune),
                      max_retry=opts.max_retry)


def _worker(config: ScaleSearchConfig, opts: StudyOptions, name: str, trainer, on_event) -> int:
    study = _open(config, opts, name)
    if trainer is None:
        trainer = config.trainer().load(config.img_size)
    study.prepare()
    return study.run(_GridObjective(config, trainer), max_trials=opts.n_trials, wait=opts.wait, on_event=on_event)


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

    ``trainer`` replaces the default training (``QuickTrainer``): a callable
    ``trainer(desc, img_size, seed, reporter) -> {"val_acc": ...}``. Bad settings, an unreachable
    storage and a study created with other settings raise one-line errors before any trial runs.
    """
    opts.check()
    name = opts.study_name or default_study_name(config)
    study = _open(config, opts, name)  # validates everything that can be checked without data
    if trainer is None:
        trainer = config.trainer().load(config.img_size)
    study.prepare()
    objective = _GridObjective(config, trainer)
    run_local_workers(_worker, (config, opts, name, None, None), opts.workers,
                      local=lambda: study.run(objective, max_trials=opts.n_trials, wait=opts.wait, on_event=on_event))
    return write_report(study, config, opts.out_dir)


# ----- report ------------------------------------------------------------------------------

TRIAL_COLUMNS = [
    Column("alpha", "alpha", plain), Column("beta", "beta", plain), Column("gamma", "gamma", plain),
    Column("seed", "seed", plain), Column("product", "α·β²·γ²", fixed(3)),
    Column("resolution", "px", plain), Column("params", "params (M)", millions),
    Column("macs", "FLOPs (M mult-adds)", millions), Column("val_acc", "val acc", fixed(4)),
    Column("train_time_s", "train s", fixed(1)), Column("trial_time_s", "trial s", fixed(1)),
    Column("state", "state", plain), Column("trial", "trial #", plain), Column("attempts", "attempts", plain),
]
POINT_COLUMNS = [
    Column("rank", "rank", plain), Column("alpha", "alpha", plain), Column("beta", "beta", plain),
    Column("gamma", "gamma", plain), Column("product", "α·β²·γ²", fixed(3)), Column("resolution", "px", plain),
    Column("params", "params (M)", millions), Column("macs", "FLOPs (M mult-adds)", millions),
    Column("seeds_done", "seeds", plain), Column("acc", "val acc (mean)", fixed(4)),
    Column("std", "std", fixed(4)), Column("time_s", "train s (mean)", fixed(1)),
]


def trial_rows(study: KeyedStudy, config: ScaleSearchConfig) -> list[dict[str, Any]]:
    rows = []
    results = study.results()
    attempts: dict[str, int] = {}
    for r in study.records():
        if r.key is not None and r.attrs.get("duplicate_of") is None:
            attempts[r.key] = attempts.get(r.key, 0) + 1
    for key, spec in study.specs.items():
        r = results.get(key)
        p = spec.params
        c = Coefficients(p["alpha"], p["beta"], p["gamma"])
        a = r.attrs if r else {}
        rows.append({
            "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "seed": p["seed"], "product": c.product,
            "resolution": a.get("resolution", spec.info.get("resolution")), "params": a.get("params"),
            "macs": a.get("macs"), "val_acc": r.value if r and r.state == "COMPLETE" else None,
            "train_time_s": a.get("train_time_s"), "trial_time_s": a.get("trial_time_s"),
            "state": r.state if r else "MISSING", "trial": r.number if r else None,
            "attempts": attempts.get(key, 0),
        })
    return rows


def point_rows(trials: Sequence[Mapping[str, Any]], seeds: int) -> list[dict[str, Any]]:
    groups: dict[tuple, list] = {}
    for t in trials:
        groups.setdefault((t["alpha"], t["beta"], t["gamma"]), []).append(t)
    points = []
    for (a, b, g), ts in groups.items():
        done = [t for t in ts if t["val_acc"] is not None]
        accs = [t["val_acc"] for t in done]
        times = [t["train_time_s"] for t in done if t["train_time_s"] is not None]
        first = next((t for t in ts if t["macs"] is not None), ts[0])
        points.append({
            "alpha": a, "beta": b, "gamma": g, "product": a * b * b * g * g, "resolution": first["resolution"],
            "params": first["params"], "macs": first["macs"], "seeds_done": f"{len(done)}/{seeds}",
            "complete": len(done) == seeds, "acc": statistics.fmean(accs) if accs else None,
            "std": statistics.stdev(accs) if len(accs) > 1 else None,
            "time_s": statistics.fmean(times) if times else None,
        })
    ranked = sorted((p for p in points if p["acc"] is not None), key=lambda p: (-p["acc"], p["macs"] or 0))
    for i, p in enumerate(ranked, 1):
        p["rank"] = i
    return sorted(points, key=lambda p: (p.get("rank") or 10**9, p["alpha"], p["beta"], p["gamma"]))


def data_label(config) -> str:
    """The data source as measured: name, labelling and per-class cap."""
    extra = [f"task {config.task}"] if config.task != "default" else []
    if config.limit_per_class:
        extra.append(f"at most {config.limit_per_class} images per class")
    return f"{config.data} ({', '.join(extra)})" if extra else config.data


def write_report(study: KeyedStudy, config: ScaleSearchConfig, out_dir: str | Path) -> dict[str, Any]:
    """Tables (CSV and Markdown), ``best.json``, a heat map and an accuracy-vs-FLOPs plot."""
    out = Path(out_dir)
    trials = trial_rows(study, config)
    points = point_rows(trials, config.seeds)
    progress = study.progress()
    complete = [p for p in points if p["complete"] and p["acc"] is not None]
    pool = complete or [p for p in points if p["acc"] is not None]
    best = pool[0] if pool else None
    base_cost = cost(config.base.replace(num_classes=_classes(study, config)), config.img_size)
    what = (f"{config.base.name} on {data_label(config)}, phi {config.phi:g}, {config.budget_epochs} epoch(s) at "
            f"{config.img_size} px x gamma^phi, {config.seeds} seed(s); validation accuracy (mean over seeds); "
            f"FLOPs are multiply-adds")
    write_tables(trials, TRIAL_COLUMNS, out / "trials")
    write_tables(points, POINT_COLUMNS, out / "points")
    summary: dict[str, Any] = {
        "study": study.name, "storage": redact(study.storage.url), "kind": KIND,
        "constraint": f"|alpha*beta^2*gamma^2 - 2| <= {config.tolerance:g} * 2 (relative tolerance)",
        "candidates": len(points), "trials": len(trials), "progress": progress,
        "finished": progress["waiting"] == 0 and progress["running"] == 0,
        "base": {"name": config.base.name, "img_size": config.img_size, "params": base_cost.params,
                 "macs": base_cost.macs},
        "best": None, "measured": what, "settings": {k: v for k, v in config.settings().items() if k != "base"},
    }
    if best is not None:
        summary["best"] = {k: best[k] for k in ("alpha", "beta", "gamma", "product", "acc", "std", "macs", "params",
                                                 "resolution", "seeds_done")}
        summary["best"]["val_acc"] = summary["best"].pop("acc")
    atomic_write_text(out / "best.json", json.dumps(summary, indent=2) + "\n")
    plots.grid_heatmap(points, out / "heatmap.png", best=best,
                       title=f"Grid search on {config.data}: best accuracy per (beta, gamma)", note=what)
    plots.accuracy_vs_flops({"candidates": [p for p in points if p["macs"] is not None]}, out / "acc_vs_flops.png",
                            highlight=best, title=f"Grid search on {config.data}: accuracy vs FLOPs", note=what)
    _write_summary_md(out, summary, points, trials)
    return summary


def _classes(study: KeyedStudy, config: ScaleSearchConfig) -> int:
    """The classifier size the trials trained with (recorded by each trial)."""
    for r in study.records():
        if r.attrs.get("num_classes") is not None:
            return int(r.attrs["num_classes"])
    return config.base.num_classes


def _write_summary_md(out: Path, summary: Mapping[str, Any], points, trials) -> None:
    from .tables import to_markdown

    best = summary["best"]
    p = summary["progress"]
    lines = [f"# Compound-scaling grid search: {summary['study']}", "",
             f"Measured: {summary['measured']}.", "",
             f"Constraint: {summary['constraint']}; {summary['candidates']} candidates, {summary['trials']} trials "
             f"({p['complete']} complete, {p['pruned']} pruned, {p['failed']} failed, {p['running']} running, "
             f"{p['waiting']} waiting).", ""]
    if best:
        std = f" ± {best['std']:.4f}" if best.get("std") is not None else ""
        lines += [f"Best: alpha {best['alpha']:g}, beta {best['beta']:g}, gamma {best['gamma']:g} "
                  f"(α·β²·γ² = {best['product']:.3f}): validation accuracy {best['val_acc']:.4f}{std} "
                  f"over {best['seeds_done']} seed(s), {best['macs'] / 1e6:.2f} M multiply-adds at "
                  f"{best['resolution']} px.", ""]
    lines += ["![accuracy per (beta, gamma)](heatmap.png)", "", "![accuracy vs FLOPs](acc_vs_flops.png)", "",
              "## Candidates (mean over seeds)", "", to_markdown(points, POINT_COLUMNS), "## Every trial", "",
              to_markdown(trials, TRIAL_COLUMNS)]
    atomic_write_text(out / "summary.md", "\n".join(lines))
