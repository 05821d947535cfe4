"""Scaling studies (the paper's Figures 3 and 8, Table 3): one dimension at a time vs compound.

For each FLOPs ratio (2x, 4x, 8x the base) four networks are made from the base:

* ``depth``: depth multiplier d alone, * ``width``: width multiplier w alone,
* ``resolution``: input pixels alone, * ``compound``: phi with fixed alpha, beta, gamma,

each with the multiplier whose multiply-adds (``effnet.arch.cost`` at its training resolution) are
closest to ``ratio`` times the base's. Rounding (whole blocks, channels in multiples of 8, whole
pixels) makes cost a step function of the multiplier, so the match is the nearer of the two steps
around the target; the achieved ratio is recorded and plotted. Every network is then trained with
the same recipe, budget and seeds, as trials keyed by (method, ratio, seed) in one resumable study.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from ..arch import ALPHA, BETA, GAMMA, Network, cost, scale
from ..errors import EffnetError
from ..fsutil import atomic_write_text
from . import plots
from .keyed_study import KeyedStudy, TrialSpec, check_existing
from .recipes import DEFAULT_RECIPE, check_recipe
from .scale_search import data_label
from .runner import StudyOptions, check_float, check_int, run_local_workers, timed_training, with_classes
from .storage import normalise_url, open_storage, redact
from .tables import Column, fixed, millions, plain, to_markdown, write_tables

KIND = "scaling study"
METHODS = ("depth", "width", "resolution", "compound")


@dataclass(frozen=True)
class ScaledNetwork:
    """One matched network: what was scaled, by how much, and what it costs."""

    method: str
    target_ratio: float
    multiplier: float  # d, w, r (pixels / base pixels) or phi for compound
    desc: Network
    img_size: int
    macs: int
    params: int
    ratio: float  # achieved multiply-adds / base multiply-adds


def _build(base: Network, method: str, x: float, img_size: int, coeffs: tuple[float, float, float]) -> tuple[Network, int]:
    if method == "depth":
        return scale(base, depth=x, image_size=img_size, name=f"{base.name}-d{x:.4g}"), img_size
    if method == "width":
        return scale(base, width=x, image_size=img_size, name=f"{base.name}-w{x:.4g}"), img_size
    if method == "resolution":
        px = max(1, int(round(img_size * x)))
        return scale(base, resolution=1.0, image_size=px, name=f"{base.name}-r{px / img_size:.4g}"), px
    if method == "compound":
        a, b, g = coeffs
        px = max(1, int(round(img_size * g**x)))
        return scale(base, x, a, b, g, image_size=px, name=f"{base.name}-phi{x:.4g}"), px
    raise EffnetError(f"unknown scaling method {method!r}; choose from {', '.join(METHODS)}")


def match_flops(
    base: Network,
    method: str,
    ratio: float,
    *,
    img_size: int,
    coefficients: tuple[float, float, float] = (ALPHA, BETA, GAMMA),
    iterations: int = 60,
) -> ScaledNetwork:
    """The network scaled by ``method`` whose multiply-adds are closest to ``ratio`` x the base's.

    Cost never falls as a multiplier grows, so bisection finds the smallest multiplier reaching the
    target; the network one rounding step below is the other candidate, and the one nearer to the
    target on a log scale wins.
    """
    ratio = check_float("FLOPs ratio", ratio, 1.0, strict=True)
    base_macs = cost(base, img_size).macs

    def f(x: float) -> tuple[float, Network, int]:
        desc, px = _build(base, method, x, img_size, coefficients)
        return cost(desc, px).macs / base_macs, desc, px

    lo = 0.0 if method == "compound" else 1.0
    hi = 2.0 if method == "compound" else 2.0
    grow = 0
    while f(hi)[0] < ratio:
        lo, hi = hi, hi * 2
        grow += 1
        if grow > 12:
            raise EffnetError(f"{method} scaling of {base.name} cannot reach {ratio:g}x its FLOPs")
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if f(mid)[0] >= ratio:
            hi = mid
        else:
            lo = mid
    best = None
    for x in (lo, hi):
        r, desc, px = f(x)
        gap = abs(math.log(r / ratio))
        if best is None or gap < best[0] - 1e-12:
            best = (gap, x, r, desc, px)
    _, x, r, desc, px = best
    if method == "resolution":
        x = px / img_size
    c = cost(desc, px)
    return ScaledNetwork(method, ratio, x, desc, px, c.macs, c.params, r)


@dataclass(frozen=True)
class ScalingStudyConfig:
    """Everything that defines a scaling study and its results (stored with the study)."""

    base: Network
    data: str = "elpv"
    ratios: tuple[float, ...] = (2.0, 4.0, 8.0)
    methods: tuple[str, ...] = METHODS
    img_size: int = 64
    budget_epochs: int = 2
    alpha: float = ALPHA
    beta: float = BETA
    gamma: float = GAMMA
    seeds: int = 1
    batch_size: int = 32
    lr: float | None = None
    limit_per_class: int | None = None
    task: str = "default"
    augment: str = "none"
    max_steps: int | None = None
    recipe: str = DEFAULT_RECIPE

    def check(self) -> None:
        if not isinstance(self.base, Network):
            raise EffnetError("base must be a network description")
        check_int("training budget (epochs)", self.budget_epochs, 1)
        check_int("image size", self.img_size, 8)
        check_int("number of seeds", self.seeds, 1)
        check_int("batch size", self.batch_size, 1)
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
        if self.lr is not None:
            check_float("learning rate", self.lr, 0.0, strict=True)
        if self.limit_per_class is not None:
            check_int("limit per class", self.limit_per_class, 1)
        if self.max_steps is not None:
            check_int("max steps", self.max_steps, 1)
        check_recipe(self.recipe)

    def settings(self) -> dict[str, Any]:
        d = asdict(self)
        d["base"] = self.base.to_dict()
        return json.loads(json.dumps(d))

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

    def specs(self, num_classes: int | None = None) -> list[TrialSpec]:
        specs = []
        for net in self.plan(num_classes):
            for seed in range(self.seeds):
                key = f"{net.method}-x{net.target_ratio:g}-s{seed}"
                specs.append(TrialSpec(
                    key, {"method": net.method, "ratio": float(net.target_ratio), "seed": seed},
                    {"multiplier": net.multiplier, "resolution": net.img_size, "planned_macs": net.macs,
                     "achieved_ratio": net.ratio, "description": net.desc.to_dict()},
                ))
        return specs

    def trainer(self):
        from .training import QuickTrainer

        return QuickTrainer(self.data, self.budget_epochs, batch_size=self.batch_size, lr=self.lr,
                            limit_per_class=self.limit_per_class, task=self.task, augment=self.augment,
                            max_steps=self.max_steps, recipe=self.recipe)


def plan_scaling_study(config: ScalingStudyConfig, num_classes: int | None = None) -> list[ScaledNetwork]:
    return config.plan(num_classes)


class _StudyObjective:
    def __init__(self, trainer) -> None:
        self.trainer = trainer

    def __call__(self, spec: TrialSpec, reporter) -> dict[str, Any]:
        desc = with_classes(Network.from_dict(spec.info["description"]), self.trainer)
        px = int(spec.info["resolution"])
        out = timed_training(self.trainer, desc, px, int(spec.params["seed"]), reporter)
        c = cost(desc, px)
        return {"value": float(out["val_acc"]), **out, "params": c.params, "macs": c.macs, "resolution": px,
                "num_classes": desc.num_classes}


def default_study_name(config: ScalingStudyConfig) -> str:
    return f"scaling-study-{config.base.name}"


def _open(config: ScalingStudyConfig, opts: StudyOptions, name: str):
    config.check()
    Path(opts.out_dir).mkdir(parents=True, exist_ok=True)
    url = normalise_url(opts.storage, opts.out_dir)
    storage = open_storage(url, heartbeat_interval=opts.heartbeat_interval, grace_period=opts.grace_period,
                           max_retry=opts.max_retry)
    check_existing(storage, name, KIND, config.settings())
    return storage


def _worker(config: ScalingStudyConfig, opts: StudyOptions, name: str) -> int:
    storage = _open(config, opts, name)
    trainer = config.trainer().load(config.img_size)
    study = KeyedStudy(storage, name, KIND, config.settings(), config.specs(trainer.num_classes),
                       max_retry=opts.max_retry).prepare()
    return study.run(_StudyObjective(trainer), max_trials=opts.n_trials, wait=opts.wait)


def run_scaling_study(
    config: ScalingStudyConfig,
    opts: StudyOptions,
    *,
    trainer=None,
    on_event: Callable | None = None,
) -> dict[str, Any]:
    """Run (or resume, or join) a scaling study and write its report; returns the summary."""
    opts.check()
    name = opts.study_name or default_study_name(config)
    storage = _open(config, opts, name)
    if trainer is None:
        trainer = config.trainer().load(config.img_size)
    study = KeyedStudy(storage, name, KIND, config.settings(), config.specs(getattr(trainer, "num_classes", None)),
                       max_retry=opts.max_retry).prepare()
    objective = _StudyObjective(trainer)
    run_local_workers(_worker, (config, opts, name), opts.workers,
                      local=lambda: study.run(objective, max_trials=opts.n_trials, wait=opts.wait, on_event=on_event))
    return write_report(study, config, opts.out_dir)


# ----- report ------------------------------------------------------------------------------

ROW_COLUMNS = [
    Column("method", "method", plain), Column("target_ratio", "target x", plain),
    Column("multiplier", "multiplier", fixed(3)), Column("resolution", "px", plain),
    Column("achieved_ratio", "FLOPs x base", fixed(2)), Column("macs", "FLOPs (M mult-adds)", millions),
    Column("params", "params (M)", millions), Column("seeds_done", "seeds", plain),
    Column("acc", "val acc (mean)", fixed(4)), Column("std", "std", fixed(4)),
    Column("time_s", "train s (mean)", fixed(1)),
]


def study_rows(study: KeyedStudy, config: ScalingStudyConfig) -> list[dict[str, Any]]:
    results = study.results()
    groups: dict[tuple[str, float], list] = {}
    for key, spec in study.specs.items():
        groups.setdefault((spec.params["method"], spec.params["ratio"]), []).append((spec, results.get(key)))
    rows = []
    order = {m: i for i, m in enumerate(("baseline",) + METHODS)}
    for (method, ratio), items in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        spec = items[0][0]
        done = [r for _, r in items if r is not None and r.state == "COMPLETE"]
        accs = [r.value for r in done]
        times = [r.attrs.get("train_time_s") for r in done if r.attrs.get("train_time_s") is not None]
        macs = next((r.attrs["macs"] for r in done if r.attrs.get("macs") is not None), spec.info["planned_macs"])
        params = next((r.attrs["params"] for r in done if r.attrs.get("params") is not None), None)
        rows.append({
            "method": method, "target_ratio": ratio, "multiplier": spec.info["multiplier"],
            "resolution": spec.info["resolution"], "achieved_ratio": spec.info["achieved_ratio"], "macs": macs,
            "params": params, "seeds_done": f"{len(done)}/{config.seeds}",
            "acc": statistics.fmean(accs) if accs else None,
            "std": statistics.stdev(accs) if len(accs) > 1 else None,
            "time_s": statistics.fmean(times) if times else None,
        })
    return rows


def write_report(study: KeyedStudy, config: ScalingStudyConfig, out_dir: str | Path) -> dict[str, Any]:
    out = Path(out_dir)
    rows = study_rows(study, config)
    progress = study.progress()
    what = (f"{config.base.name} on {data_label(config)}, {config.budget_epochs} epoch(s) from {config.img_size} px, "
            f"{config.seeds} seed(s); validation accuracy (mean over seeds); FLOPs are multiply-adds; compound uses "
            f"alpha {config.alpha:g}, beta {config.beta:g}, gamma {config.gamma:g}")
    write_tables(rows, ROW_COLUMNS, out / "scaling")
    baseline = [r for r in rows if r["method"] == "baseline"]
    series = {m: baseline + [r for r in rows if r["method"] == m] for m in config.methods}
    for pts in series.values():
        for p in pts:
            p["label"] = "base" if p["method"] == "baseline" else f"{p['target_ratio']:g}x"
    plots.accuracy_vs_flops(series, out / "scaling.png", connect=True, label_key="label",
                            title=f"Scaling {config.base.name}: one dimension vs compound", note=what)
    summary = {"study": study.name, "storage": redact(study.storage.url), "kind": KIND, "measured": what,
               "progress": progress, "finished": progress["waiting"] == 0 and progress["running"] == 0,
               "rows": rows, "settings": {k: v for k, v in config.settings().items() if k != "base"}}
    atomic_write_text(out / "scaling.json", json.dumps(summary, indent=2) + "\n")
    lines = [f"# Scaling study: {study.name}", "", f"Measured: {what}.", "",
             f"Trials: {progress['complete']} complete, {progress['failed']} failed, {progress['running']} running, "
             f"{progress['waiting']} waiting.", "", "![accuracy vs FLOPs](scaling.png)", "",
             to_markdown(rows, ROW_COLUMNS)]
    atomic_write_text(out / "summary.md", "\n".join(lines))
    return summary
