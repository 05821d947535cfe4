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

Two controls, reported before the comparison, that assume nothing about the strategies under test:

* positive: the reference's own best reward after all ``n_trials`` against its best after a quarter
  of them (rounded down), paired by search seed. At least four times the search is a gain of known
  direction; a comparison that cannot separate it cannot resolve a strategy whose advantage is that
  size either.
* negative: the reference strategy run again with other sampler seeds (``TWIN_SEARCH_OFFSET`` + k),
  against the reference, paired by index: the same strategy twice must come out indistinguishable.

A strategy is named better or worse only when the positive control separates and the negative
control does not.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from .. import machine
from ..checks import check_int
from ..errors import EffnetError
from ..fsutil import atomic_savefig, atomic_write_text
from .search import ArchSearchSettings, Evaluator, STRATEGIES, open_storage, run_arch_search
from ..search.stats import mean_interval

REFERENCE = "random"
TWIN_SEARCH_OFFSET = 1000  # the negative control's sampler seeds: the reference again, seeds 1000 + k
CONTROL_SHARE = 4  # the positive control: the reference's best after n_trials // 4 trials against after n_trials


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


def reference_of(strategies: Sequence[str]) -> str:
    """The strategy the others are compared with: ``random`` when it is listed, else the first."""
    return REFERENCE if REFERENCE in strategies else strategies[0]


def run_strategy_comparison(settings: ArchSearchSettings, evaluate: Evaluator, *, strategies: Sequence[str],
                            search_seeds: int, n_trials: int, storage=None, negative_control: bool = False,
                            on_trial: Callable[[str, int, FrozenTrial], None] | None = None
                            ) -> dict[tuple[str, int], optuna.Study]:
    """Run (or resume) one study per (strategy, search seed), search seed by search seed, until each
    holds ``n_trials`` finished trials; ``on_trial(strategy, search_seed, trial)`` after every trial.
    ``negative_control`` adds the reference strategy at search seeds ``TWIN_SEARCH_OFFSET + k``
    (keyed by those seeds)."""
    strategies = check_plan(strategies, search_seeds, n_trials)
    storage = open_storage(storage)
    reference = reference_of(strategies)
    studies = {}
    for seed in range(search_seeds):
        plan = [(strategy, seed) for strategy in strategies]
        if negative_control:
            plan.append((reference, TWIN_SEARCH_OFFSET + seed))
        for strategy, k in plan:
            report = None if on_trial is None else (lambda t, s=strategy, k=k: on_trial(s, k, t))
            studies[strategy, k] = run_arch_search(
                replace(settings, strategy=strategy), evaluate, n_trials=n_trials, storage=storage,
                study_name=study_name(settings, strategy, k), seed=k, on_trial=report)
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


def control_trials(n_trials: int) -> int:
    """The trial the positive control compares the last with: a quarter of them, rounded down (at least 1)."""
    return max(1, n_trials // CONTROL_SHARE)


def positive_control(runs: Sequence[Mapping[str, Any]], n_trials: int) -> dict[str, Any]:
    """The reference's best reward after ``n_trials`` minus its best after :func:`control_trials`,
    paired by search seed: a gain of known direction no strategy under test produces."""
    few = control_trials(n_trials)
    out: dict[str, Any] = {"trials": n_trials, "fewer_trials": few}
    if few >= n_trials:
        return {**out, "missing": [f"{n_trials} trial(s) have no quarter to compare with"], "separated": False}
    per_seed = []
    for r in runs:
        full, part = r["best_so_far"][n_trials - 1], r["best_so_far"][few - 1]
        if full is None or part is None:
            return {**out, "missing": [f"{r['study']} has no complete trial among its first {few}"],
                    "separated": False}
        per_seed.append(full - part)
    d = mean_interval(per_seed)
    return {**out, "missing": [], "per_search_seed": per_seed, **d,
            "separated": d["ci_low"] is not None and d["ci_low"] > 0}


def negative_control(twin: Sequence[Mapping[str, Any]] | None, runs: Sequence[Mapping[str, Any]]
                     ) -> dict[str, Any]:
    """The reference again with other sampler seeds minus the reference, paired by index: ``passed``
    when the interval contains 0 (with one search seed there is no interval, so it cannot pass)."""
    if twin is None:
        return {"run": False, "passed": False}
    if len(twin) != len(runs):
        raise EffnetError("the negative control needs as many search seeds as the reference")
    per_seed = [a["best_reward"] - b["best_reward"] for a, b in zip(twin, runs)]
    d = mean_interval(per_seed)
    return {"run": True, "per_search_seed": per_seed, **d,
            "passed": d["ci_low"] is not None and d["ci_low"] <= 0 <= d["ci_high"]}


def control_lines(summary: Mapping[str, Any]) -> list[str]:
    """The two controls in one line each, as the command and the documents print them first."""
    ref, pos, neg = summary["reference"], summary["control"], summary["negative_control"]
    if pos.get("missing"):
        first = f"Positive control: missing ({', '.join(pos['missing'])}); no strategy can be named."
    else:
        first = (f"Positive control ({ref} with {pos['trials']} trials against its first {pos['fewer_trials']}): "
                 f"best reward gained {pos['mean']:+.4f} ({_interval_text(pos)}): "
                 + ("separated: this comparison resolves a gain of that size." if pos["separated"] else
                    "not separated: this comparison cannot resolve a gain of that size, so no strategy is "
                    "named better or worse."))
    if not neg.get("run"):
        second = ("Negative control: not run (the reference again with other search seeds); no strategy can be "
                  "named.")
    else:
        second = (f"Negative control ({ref} again, search seeds {TWIN_SEARCH_OFFSET} and up): best reward "
                  f"{neg['mean']:+.4f} against {ref} ({_interval_text(neg)}): "
                  + ("indistinguishable, as it must be." if neg["passed"] else
                     "SEPARATED or no interval: the interval does not cover the noise between searches, so no "
                     "strategy is named."))
    return [first, second]


def summarise(records: Mapping[str, Sequence[Mapping[str, Any]]], *, n_trials: int,
              reference: str | None = None, chance: float | None = None,
              twin: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The comparison from ``records[strategy][search_seed]`` (:func:`run_record`): per strategy the best
    reward and its candidate's accuracy per search seed, their means with t intervals; per strategy
    other than ``reference`` (default ``random`` if present, else the first) the paired difference of
    best rewards per search seed with its t interval; the controls (``twin``: the reference's records
    at other search seeds, the negative control; None when it was not run) and the verdict. A
    strategy is named only when its interval excludes 0, the positive control separates and the
    negative control passes. ``chance`` (the accuracy of guessing, e.g. 1 / classes): when no run's
    best candidate beats it by a point, the verdict says first that nothing learned, since rewards
    then differ only by their cost factor."""
    strategies = list(records)
    if len(strategies) < 2:
        raise EffnetError("compare at least two strategies")
    reference = reference or reference_of(strategies)
    if reference not in records:
        raise EffnetError(f"reference strategy {reference!r} was not run")
    n_seeds = {len(runs) for runs in records.values()}
    if len(n_seeds) != 1:
        raise EffnetError("every strategy needs the same search seeds")
    seeds = n_seeds.pop()
    scope = f"{n_trials} trials x {seeds} search seed(s)"
    every = [r for runs in records.values() for r in runs] + list(twin or [])
    unfinished = [r["study"] for r in every if r["finished"] < n_trials or r["best_reward"] is None]
    out: dict[str, Any] = {"strategies": strategies, "reference": reference, "trials": n_trials,
                           "search_seeds": seeds, "scope": scope, "per_strategy": {}, "differences": {},
                           "runs": {s: [dict(r) for r in runs] for s, runs in records.items()}}
    if twin is not None:
        out["twin_runs"] = [dict(r) for r in twin]
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
    out["control"] = positive_control(records[reference], n_trials)
    out["negative_control"] = negative_control(twin, records[reference])
    controls_ok = out["control"]["separated"] and out["negative_control"]["passed"]
    lines, separated_any = [], False
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
        if separated and controls_ok:
            separated_any = True
            better = "higher" if d["ci_low"] > 0 else "lower"
            lines.append(f"{s} finds a {better} best reward than {reference} at {scope} ({detail})")
        elif separated:
            lines.append(f"{s} and {reference} are not compared at {scope}: the interval excludes 0 but the controls "
                         f"do not both pass ({detail})")
        else:
            lines.append(f"{s} and {reference} cannot be told apart at {scope} ({detail})")
    verdict = "; ".join(lines)
    verdict = verdict[:1].upper() + verdict[1:] + "."
    best = max(r["best_accuracy"] for runs in records.values() for r in runs)
    learned = chance is None or best is None or best > chance + 0.01
    if not learned:
        separated_any = False
        verdict = (f"Nothing learned: every run's best candidate is at chance accuracy ({best:.3f}, chance "
                   f"{chance:.3f}), so rewards differ only by their cost factor and this budget cannot compare "
                   f"strategies. {verdict}")
    out.update(decided=separated_any, finished=True, learned=learned, verdict=verdict)
    out["controls"] = control_lines(out)
    return out


def compare_studies(studies: Mapping[tuple[str, int], optuna.Study], *, n_trials: int,
                    reference: str | None = None, chance: float | None = None) -> dict[str, Any]:
    """:func:`summarise` of the studies :func:`run_strategy_comparison` returned (with its negative
    control when those studies hold it)."""
    strategies = list(dict.fromkeys(s for s, _ in studies))
    seeds = sorted({k for _, k in studies if k < TWIN_SEARCH_OFFSET})
    reference = reference or reference_of(strategies)
    twins = sorted(k for s, k in studies if k >= TWIN_SEARCH_OFFSET and s == reference)
    twin = [run_record(studies[reference, k], n_trials) for k in twins] if twins else None
    out = summarise({s: [run_record(studies[s, k], n_trials) for k in seeds] for s in strategies},
                    n_trials=n_trials, reference=reference, chance=chance, twin=twin)
    out["run"] = run_summary(studies.values())
    return out


def run_summary(studies: Iterable[optuna.Study]) -> dict[str, Any]:
    """When and where the studies' complete trials ran (first start to last finish, summed trial
    time) and on what machine, as every study summary records it."""
    def utc(moment) -> str:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    done = [t for st in studies for t in st.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.datetime_start and t.datetime_complete]
    out: dict[str, Any] = {"trials": len(done), **machine.environment()}
    if done:
        out.update(machine.span([utc(t.datetime_start) for t in done], [utc(t.datetime_complete) for t in done]),
                   trial_s=sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done))
    return out


def plot_best_so_far(summary: Mapping[str, Any], path: str | Path, *, title: str = "") -> Path:
    """Best reward so far against trial number: the mean over search seeds per strategy, with a band
    from the lowest to the highest search seed; the negative control's runs dashed, and the positive
    control's trial (a quarter of the trials) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    groups = [(s, runs, "-") for s, runs in summary["runs"].items()]
    if summary.get("twin_runs"):
        groups.append((f"{summary['reference']}, other search seeds (negative control)", summary["twin_runs"], "--"))
    for s, runs, style in groups:
        n = min(len(r["best_so_far"]) for r in runs)
        curves = np.array([[np.nan if v is None else v for v in r["best_so_far"][:n]] for r in runs], dtype=float)
        if n == 0 or np.all(np.isnan(curves)):
            continue
        x = np.arange(1, n + 1)
        ax.plot(x, np.nanmean(curves, axis=0), ls=style, lw=1.6, label=f"{s} (mean of {len(runs)})")
        ax.fill_between(x, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), alpha=0.15)
    few = (summary.get("control") or {}).get("fewer_trials")
    if few:
        ax.axvline(few, color="grey", lw=0.8, ls=":", label=f"positive control: trial {few} against the last")
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
