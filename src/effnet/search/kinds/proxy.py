"""Proxy fidelity: does a short training budget rank candidates the way a longer one does?

The same candidates (a scaling study's networks) are trained with the same paired seeds at the
proxy budget and at ``factor`` times it, as two studies on the engine. The answer is Kendall's tau
between the two rankings of the candidates' mean validation accuracies, with a 95% bootstrap
interval over seeds (seed ``k`` is resampled jointly at both budgets, since it fixes the same
initialisation and data order). A proxy whose interval includes 0 ranks nothing; one that leaves
most candidates at chance accuracy learned nothing to rank, and the verdict says so first. The
figure (``proxy.png``) plots each candidate's proxy accuracy against its long-budget accuracy.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...checks import check_int
from ...errors import EffnetError
from ..plots import proxy_scatter
from ..runner import StudyOptions
from .scaling import ScalingStudyConfig, default_study_name
from ..stats import kendall_tau
from ..study import analyse, run_study, trained_classes, write_json

KIND = "scaling study"
CHANCE_MARGIN = 0.05


def run_proxy_check(config: ScalingStudyConfig, opts: StudyOptions, factor: int = 3, *, trainer=None,
                    on_event: Callable | None = None, draws: int = 2000) -> dict[str, Any]:
    """Train ``config``'s candidates at its budget and at ``factor`` x it; Kendall tau with its interval."""
    config.check()
    check_int("budget factor", factor, 2)
    if config.seeds < 2:
        raise EffnetError("proxy fidelity needs at least 2 seeds (--seeds) for an interval over seeds")
    # the check ranks candidates and names no winner, so it trains no budget controls: its plan is the
    # study's candidates (with the compound control when the plan lacks it, as before the choice existed)
    config = dataclasses.replace(config, control="compound")
    name = opts.study_name or default_study_name(config)
    long = dataclasses.replace(config, budget=config.budget.scaled(factor))
    means, per_seed = {}, {}
    for label, cfg in (("proxy", config), ("long", long)):
        amount, unit = cfg.budget.amount()
        study = run_study(KIND, cfg, opts, f"{name}-{label}-{amount}{unit[:2]}", cfg.candidates, trainer=trainer,
                          on_event=on_event)
        analysis = analyse(study, cfg, cfg.candidates(getattr(trainer, "num_classes", None) or trained_classes(study)),
                           cfg.groups(), control=cfg.control_keys(),
                           negative=cfg.negative_keys(), control_kind=cfg.control)
        rows = [r for r in analysis["rows"] if r["seeds_done"] == cfg.seeds]
        means[label] = {r["key"]: r["run_mean"] for r in rows}
        per_seed[label] = {r["key"]: r["run_acc"] for r in rows}
    keys = [k for k in means["proxy"] if k in means["long"]]
    if len(keys) < 3:
        raise EffnetError("proxy fidelity needs at least 3 finished candidates; rerun the same command to continue")
    short = np.array([per_seed["proxy"][k] for k in keys])  # candidates x seeds
    longer = np.array([per_seed["long"][k] for k in keys])
    tau = kendall_tau(short.mean(1), longer.mean(1))
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(draws):
        pick = rng.integers(0, config.seeds, config.seeds)
        boot.append(kendall_tau(short[:, pick].mean(1), longer[:, pick].mean(1)))
    lo, hi = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    classes = getattr(trainer, "num_classes", None) or trained_classes(study)
    chance = 1.0 / classes if classes else None
    # a candidate the proxy left within 5 points of chance was not ranked by it, only tied
    at_chance = [k for k, row in zip(keys, short) if chance is not None and row.mean() <= chance + CHANCE_MARGIN]
    if len(at_chance) > len(keys) / 2:
        verdict = (f"The {_amount(config)} proxy learned nothing to rank: {len(at_chance)} of {len(keys)} "
                   f"candidates are within {CHANCE_MARGIN * 100:.0f} points of chance ({chance:.2f}) at the proxy budget, against "
                   f"{min(longer.mean(1)):.2f} to {max(longer.mean(1)):.2f} at {_amount(long)} budget; Kendall "
                   f"tau {tau:+.2f} (95% CI {lo:+.2f} to {hi:+.2f}). Use a longer proxy.")
    elif lo > 0:
        verdict = (f"The {_amount(config)} proxy ranks like the {_amount(long)} budget: Kendall tau "
                   f"{tau:+.2f} (95% CI {lo:+.2f} to {hi:+.2f}) over {len(keys)} candidates.")
    else:
        verdict = (f"The {_amount(config)} proxy ranks nothing: Kendall tau {tau:+.2f} against "
                   f"the {_amount(long)} budget, 95% CI {lo:+.2f} to {hi:+.2f} includes 0 ({len(keys)} candidates).")
    summary = {"verdict": verdict + f" [{config.seeds} paired seeds, {draws} bootstrap draws over seeds]",
               "tau": tau, "tau_ci_low": lo, "tau_ci_high": hi, "separated_from_zero": lo > 0,
               "proxy_epochs": config.budget.epochs, "long_epochs": long.budget.epochs, "seeds": config.seeds,
               "chance": chance, "at_chance": at_chance,
               "candidates": [{"key": k, "proxy_mean": means["proxy"][k], "long_mean": means["long"][k],
                               "proxy_runs": per_seed["proxy"][k], "long_runs": per_seed["long"][k]} for k in keys]}
    write_json(Path(opts.out_dir) / "proxy.json", summary)
    proxy_scatter(summary, Path(opts.out_dir) / "proxy.png",
                  title=f"Proxy fidelity: {config.base.name}, {_amount(config)} against {_amount(long)}",
                  note=summary["verdict"])
    return summary


def _amount(config) -> str:
    """The budget as said in a verdict: "2 epochs" or "400 steps"."""
    n, unit = config.budget.amount()
    return f"{n}-{unit[:-1]}"
