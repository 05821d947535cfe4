"""Overhead of the grid-search machinery, and the timing of a finished grid search.

    python benchmarks/bench_search.py overhead            # storage/orchestration cost per trial
    python benchmarks/bench_search.py timing RUN_DIR      # a finished `effnet search scale` run

``overhead`` runs a small grid (with its reference points and control pair) with a trainer that returns at once, so everything measured is
the study machinery (SQLite storage, heartbeats, queueing) plus the report. ``timing`` reads a real
run's study: per trial, the wall time in storage (start to complete), the objective's own time
(``trial_time_s``: data, model build, training, evaluation) and the training loop alone
(``train_time_s``), and the gaps between one trial's end and the next one's start.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path


def overhead() -> None:
    from effnet.arch import get_network
    from effnet.search.runner import StudyOptions
    from effnet.search.budget import Budget
    from effnet.search.kinds.grid import ScaleSearchConfig, run_scale_search

    class Instant:
        num_classes = 2

        def __call__(self, desc, img_size, seed, reporter):
            return {"val_acc": 0.5, "train_time_s": 0.0}

    cfg = ScaleSearchConfig(get_network("efficientnet_b0"), data="synthetic", img_size=64, budget=Budget(1),
                            grid_step=0.1, tolerance=0.05, max_coefficient=1.4)
    n = len(cfg.plan(Instant.num_classes))  # grid points after matching and merging, references, control pair
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_scale_search(cfg, StudyOptions(tmp, heartbeat_interval=10, grace_period=60), trainer=Instant())
        first = time.perf_counter() - start
        start = time.perf_counter()  # a rerun: opens the study, finds nothing to do, writes the report
        run_scale_search(cfg, StudyOptions(tmp, heartbeat_interval=10, grace_period=60), trainer=Instant())
        rerun = time.perf_counter() - start
    print("| trials | first run s | rerun (open + report) s | per trial s: (first - rerun) / trials |")
    print("|---|---|---|---|")
    print(f"| {n} | {first:.1f} | {rerun:.1f} | {(first - rerun) / n:.3f} |")


def timing(run_dir: str) -> None:
    import optuna

    storage = f"sqlite:///{Path(run_dir).resolve() / 'study.db'}"
    names = optuna.study.get_all_study_names(storage)
    study = optuna.load_study(study_name=names[0], storage=storage)
    trials = sorted((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.datetime_start)
    rows = []
    for t in trials:
        r = t.user_attrs.get("effnet.result", {})
        wall = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append((t.number, wall, r.get("trial_time_s", 0.0), r.get("train_time_s", 0.0)))
    gaps = [(b.datetime_start - a.datetime_complete).total_seconds() for a, b in zip(trials, trials[1:])]
    first, last = trials[0].datetime_start, trials[-1].datetime_complete
    print("| trial | wall s | objective s | training loop s | outside training s |")
    print("|---|---|---|---|---|")
    for n, wall, obj, train in rows:
        print(f"| {n} | {wall:.1f} | {obj:.1f} | {train:.1f} | {wall - train:.1f} |")
    outside = [w - tr for _, w, _, tr in rows]
    print()
    print(f"complete trials: {len(rows)}; first start to last completion: {(last - first).total_seconds() / 60:.1f} min")
    print(f"mean outside-training time per trial (data, model build, evaluation, storage): "
          f"{statistics.fmean(outside):.1f} s; mean gap between trials: {statistics.fmean(gaps) if gaps else 0:.2f} s")
    eight = trials[7].datetime_complete if len(trials) >= 8 else None
    if eight is not None:
        print(f"time to 8 complete points: {(eight - first).total_seconds() / 60:.1f} min")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "overhead":
        overhead()
    elif len(sys.argv) == 3 and sys.argv[1] == "timing":
        timing(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)
