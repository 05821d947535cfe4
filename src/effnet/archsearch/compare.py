"""Does the architecture search beat random search? Strategies compared at equal trials over search seeds.

One architecture-search study (:func:`effnet.archsearch.search.run_arch_search`) runs per
(strategy, search seed), all with the same settings and the same evaluator (so the same training
budget and training seeds); only the strategy and the sampler's seed change. Each study is named
after both, lives in one storage and resumes like any arch search: rerunning trains only the
missing trials.

What a run found is its best reward after ``n_trials`` finished trials (and that candidate's
accuracy). Per strategy: their mean over search seeds with a Student t interval. Against the
reference (``random`` when compared): the difference of best rewards per search seed, paired by
search seed, with its t interval; with few search seeds that interval is wide and the summary gives
its half-width. "Cannot be told apart" when the interval contains 0 is a result, not a failure.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..checks import check_int
from ..errors import EffnetError
from ..fsutil import atomic_savefig, atomic_write_text
from .search import ArchSearchSettings, Evaluator, STRATEGIES, open_storage, run_arch_search
from ..search.stats import mean_interval

REFERENCE = "random"


def check_plan(strategies: Sequence[str], search_seeds: int, n_trials: int) -> tuple[str, ...]:
    """The strategies as a tuple, after checking the plan; EffnetError with one line otherwise."""
    if isinstance(strategies, str):
        raise EffnetError("strategies must be a sequence of names, not one string")
    strategies = tuple(strategies)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise EffnetError(f"unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}")
    if len(strategies) < 2 or len(set(strategies)) != len(strategies):
        raise EffnetError(f"compare at least two different strategies, got {', '.join(strategies) or 'none'}")
    for what, v in (("number of search seeds", search_seeds), ("number of trials", n_trials)):
        check_int(what, v, 1)
    return strategies


def study_name(settings: ArchSearchSettings, strategy: str, search_seed: int) -> str:
    return f"arch-{settings.base}-{strategy}-search{search_seed}"


def run_strategy_comparison(settings: ArchSearchSettings, evaluate: Evaluator, *, strategies: Sequence[str],
                            search_seeds: int, n_trials: int, storage=None,
                            on_trial: Callable[[str, int, FrozenTrial], None] | None = None
                            ) -> dict[tuple[str, int], optuna.Study]:
    """Run (or resume) one study per (strategy, search seed), search seed by search seed, until each
    holds ``n_trials`` finished trials; ``on_trial(strategy, search_seed, trial)`` after every trial."""
    strategies = check_plan(strategies, search_seeds, n_trials)
    storage = open_storage(storage)
    studies = {}
    for seed in range(search_seeds):
        for strategy in strategies:
            report = None if on_trial is None else (lambda t, s=strategy, k=seed: on_trial(s, k, t))
            studies[strategy, seed] = run_arch_search(
                replace(settings, strategy=strategy), evaluate, n_trials=n_trials, storage=storage,
                study_name=study_name(settings, strategy, seed), seed=seed, on_trial=report)
    return studies


def run_record(study: optuna.Study, n_trials: int) -> dict[str, Any]:
    """The first ``n_trials`` finished trials of a study: reward per trial (None for a failed one),
    best reward so far, and the best-reward trial with its accuracy and MACs."""
    finished = [t for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
                if t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and t.user_attrs.get("error"))]
    finished = finished[:n_trials]
    rewards = [t.user_attrs.get("reward") if t.state == TrialState.COMPLETE else None for t in finished]
    so_far, best = [], None
    for r in rewards:
        best = r if best is None or (r is not None and r > best) else best
        so_far.append(best)
    done = [t for t in finished if t.user_attrs.get("reward") is not None]
    top = max(done, key=lambda t: (t.user_attrs["reward"], -t.number)) if done else None
    return {"study": study.study_name, "finished": len(finished), "rewards": rewards, "best_so_far": so_far,
            "best_reward": top.user_attrs["reward"] if top else None,
            "best_accuracy": top.user_attrs["accuracy"] if top else None,
            "best_trial": top.number if top else None, "best_macs": top.user_attrs["macs"] if top else None,
            "best_architecture": top.user_attrs.get("code") if top else None}


def _interval_text(d: Mapping[str, Any]) -> str:
    if d["ci_low"] is None:
        return "one search seed: no interval"
    return f"95% CI {d['ci_low']:+.4f} to {d['ci_high']:+.4f}"


def summarise(records: Mapping[str, Sequence[Mapping[str, Any]]], *, n_trials: int,
              reference: str | None = None, chance: float | None = None) -> dict[str, Any]:
    """The comparison from ``records[strategy][search_seed]`` (:func:`run_record`): per strategy the best
    reward and its candidate's accuracy per search seed, their means with t intervals; per strategy
    other than ``reference`` (default ``random`` if present, else the first) the paired difference of
    best rewards per search seed with its t interval; the verdict line first. ``chance`` (the accuracy
    of guessing, e.g. 1 / classes): when no run's best candidate beats it by a point, the verdict says
    first that nothing learned, since rewards then differ only by their cost factor."""
    strategies = list(records)
    if len(strategies) < 2:
        raise EffnetError("compare at least two strategies")
    reference = reference or (REFERENCE if REFERENCE in records else strategies[0])
    if reference not in records:
        raise EffnetError(f"reference strategy {reference!r} was not run")
    n_seeds = {len(runs) for runs in records.values()}
    if len(n_seeds) != 1:
        raise EffnetError("every strategy needs the same search seeds")
    seeds = n_seeds.pop()
    scope = f"{n_trials} trials x {seeds} search seed(s)"
    unfinished = [r["study"] for runs in records.values() for r in runs
                  if r["finished"] < n_trials or r["best_reward"] is None]
    out: dict[str, Any] = {"strategies": strategies, "reference": reference, "trials": n_trials,
                           "search_seeds": seeds, "scope": scope, "per_strategy": {}, "differences": {},
                           "runs": {s: [dict(r) for r in runs] for s, runs in records.items()}}
    if unfinished:
        out.update(decided=False, finished=False,
                   verdict=f"Not finished: {len(unfinished)} run(s) hold fewer than {n_trials} finished trials or no "
                           f"complete one ({', '.join(unfinished[:4])}{', ...' if len(unfinished) > 4 else ''}); "
                           "strategies are compared only at equal trials. Rerun the same command to continue.")
        return out
    for s, runs in records.items():
        out["per_strategy"][s] = {
            "best_reward": [r["best_reward"] for r in runs], "best_accuracy": [r["best_accuracy"] for r in runs],
            "best_reward_mean": mean_interval([r["best_reward"] for r in runs]),
            "best_accuracy_mean": mean_interval([r["best_accuracy"] for r in runs])}
    lines, decided = [], False
    for s in strategies:
        if s == reference:
            continue
        per_seed = [a["best_reward"] - b["best_reward"] for a, b in zip(records[s], records[reference])]
        d = mean_interval(per_seed)
        separated = d["ci_low"] is not None and (d["ci_low"] > 0 or d["ci_high"] < 0)
        out["differences"][s] = {"per_search_seed": per_seed, **d, "separated": separated, "method":
                                 f"Student t interval over {seeds} search seed(s), paired by search seed"}
        detail = (f"best reward {s} - {reference} {d['mean']:+.4f}, {_interval_text(d)}"
                  + (f", t interval over {seeds} search seeds, half-width {d['half_width']:.4f}"
                     if d["half_width"] is not None else ""))
        if separated:
            decided = True
            better = "higher" if d["ci_low"] > 0 else "lower"
            lines.append(f"{s} finds a {better} best reward than {reference} at {scope} ({detail})")
        else:
            lines.append(f"{s} and {reference} cannot be told apart at {scope} ({detail})")
    verdict = "; ".join(lines)
    verdict = verdict[:1].upper() + verdict[1:] + "."
    best = max(r["best_accuracy"] for runs in records.values() for r in runs)
    learned = chance is None or best is None or best > chance + 0.01
    if not learned:
        decided = False
        verdict = (f"Nothing learned: every run's best candidate is at chance accuracy ({best:.3f}, chance "
                   f"{chance:.3f}), so rewards differ only by their cost factor and this budget cannot compare "
                   f"strategies. {verdict}")
    out.update(decided=decided, finished=True, learned=learned, verdict=verdict)
    return out


def compare_studies(studies: Mapping[tuple[str, int], optuna.Study], *, n_trials: int,
                    reference: str | None = None, chance: float | None = None) -> dict[str, Any]:
    """:func:`summarise` of the studies :func:`run_strategy_comparison` returned."""
    strategies = list(dict.fromkeys(s for s, _ in studies))
    seeds = sorted({k for _, k in studies})
    return summarise({s: [run_record(studies[s, k], n_trials) for k in seeds] for s in strategies},
                     n_trials=n_trials, reference=reference, chance=chance)


def plot_best_so_far(summary: Mapping[str, Any], path: str | Path, *, title: str = "") -> Path:
    """Best reward so far against trial number: the mean over search seeds per strategy, with a band
    from the lowest to the highest search seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for s, runs in summary["runs"].items():
        n = min(len(r["best_so_far"]) for r in runs)
        curves = np.array([[np.nan if v is None else v for v in r["best_so_far"][:n]] for r in runs], dtype=float)
        if n == 0 or np.all(np.isnan(curves)):
            continue
        x = np.arange(1, n + 1)
        ax.plot(x, np.nanmean(curves, axis=0), lw=1.6, label=f"{s} (mean of {len(runs)})")
        ax.fill_between(x, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), alpha=0.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("best reward so far  ACC x (MACs/T)^w")
    band = f"band: lowest to highest of {summary['search_seeds']} search seed(s)"
    ax.set_title(f"{title}\n{band}" if title else f"best reward so far; {band}", fontsize=8)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return Path(path)


def write_comparison(summary: Mapping[str, Any], out_dir: str | Path,
                     settings: ArchSearchSettings | None = None) -> dict[str, Path]:
    """``strategies.json`` (the summary) and ``best_so_far.png`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = dict(summary)
    if settings is not None:
        data["settings"] = {k: v for k, v in settings.to_dict().items() if k != "strategy"}
    paths = {"summary": out / "strategies.json", "plot": out / "best_so_far.png"}
    atomic_write_text(paths["summary"], json.dumps(data, indent=2) + "\n")
    title = "" if settings is None else (
        f"best reward so far: {settings.base} space at {settings.img_size} px, T = {settings.target_macs / 1e6:g}M "
        f"MACs, w = {settings.w}\n{settings.data or 'data n/a'}, {settings.budget.label()} x "
        f"{settings.seeds} training seed(s)")
    plot_best_so_far(summary, paths["plot"], title=title)
    return paths
