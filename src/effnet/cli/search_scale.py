"""``effnet search scale``: step 1 of compound scaling, the grid search for alpha, beta, gamma."""
from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path

from .common import add_augment, add_json, add_recipe, emit_json, load_base, parse_phis

CONSTRAINT_HELP = ("candidates are alpha, beta, gamma >= 1 on the grid with |alpha*beta^2*gamma^2 - 2| <= "
                   "TOLERANCE * 2 (relative), so each costs about 2^phi times the base in FLOPs (multiply-adds)")


def add_study_arguments(p: argparse.ArgumentParser, *, out_default: str, data_default: str | None = None,
                        img_size_default: int = 64) -> None:
    """Options every training study shares: data, budget, storage, workers."""
    p.add_argument("--data", required=data_default is None, default=data_default,
                   help="'elpv', 'fashion-mnist', 'synthetic', an image folder or a CSV list"
                        + (f" (default {data_default})" if data_default else ""))
    p.add_argument("--img-size", type=int, default=img_size_default, metavar="PX",
                   help=f"base training resolution (default {img_size_default})")
    p.add_argument("--budget-epochs", type=int, default=2, metavar="N", help="training epochs per trial (default 2)")
    p.add_argument("--budget-steps", type=int, default=None, metavar="N",
                   help="training budget per trial in optimiser steps instead of epochs (the same training on any "
                        "data size; `effnet study budget` finds one that can resolve differences)")
    p.add_argument("--budget-from", default=None, metavar="BUDGET.json",
                   help="take the budget in steps (and its batch size) from `effnet study budget`'s budget.json")
    p.add_argument("--seeds", type=int, default=1, metavar="K",
                   help="paired training seeds per candidate (seed k: same initialisation and data order for every "
                        "candidate); 3 or more where time allows")
    p.add_argument("--split-seeds", action="store_true",
                   help="seed k also re-draws the train/validation/test split (shared by every candidate of seed k)")
    add_json(p, "the summary (verdict, control, per-candidate intervals, per-image predictions)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size")
    add_recipe(p, "short")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    add_augment(p, "none")
    p.add_argument("--task", default="default", help="labelling of the elpv data ('default' or 'binary')")
    p.add_argument("--limit-per-class", type=int, default=None, metavar="N", help="use at most N images per class")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="stop each training after N steps")
    p.add_argument("--out", default=out_default, metavar="DIR",
                   help=f"folder for the report and the default study.db (default {out_default})")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="database URL (e.g. postgresql+psycopg2://user:pw@host/db) or SQLite file; "
                        "default: study.db in --out")
    p.add_argument("--study", default=None, metavar="NAME", help="study name (workers sharing a study use the same)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes on this machine (default 1)")
    p.add_argument("--n-trials", type=int, default=None, metavar="N",
                   help="run at most N trials in this invocation, then write the report")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines for running trials (on a terminal they show each trial's steps, one "
                        "line per worker)")
    p.add_argument("--no-wait", action="store_true",
                   help="exit when no trial is waiting instead of waiting for trials other workers are running")
    p.add_argument("--heartbeat", type=int, default=10, metavar="S",
                   help="seconds between heartbeats of a running trial (default 10)")
    p.add_argument("--grace", type=int, default=60, metavar="S",
                   help="a running trial without a heartbeat for S seconds is retried (default 60)")
    p.add_argument("--storage-wait", type=float, default=120.0, metavar="S",
                   help="when the database goes away, retry with back-off for up to S seconds, then stop "
                        "(rerun to resume; default 120)")


def study_options(args: argparse.Namespace):
    from ..search.runner import StudyOptions

    return StudyOptions(out_dir=args.out, storage=args.storage, study_name=args.study,
                        heartbeat_interval=args.heartbeat, grace_period=args.grace, n_trials=args.n_trials,
                        workers=args.workers, wait=not args.no_wait, storage_wait_s=args.storage_wait,
                        progress=not args.quiet).check()


def data_spec(args: argparse.Namespace):
    """The data the shared options name (``--data``, ``--task``, ``--limit-per-class``)."""
    from ..data.spec import DataSpec

    return DataSpec(args.data, task=args.task, limit_per_class=args.limit_per_class)


def training_budget(args: argparse.Namespace):
    """The training budget the shared options set."""
    from ..search.budget import Budget

    steps, batch = getattr(args, "budget_steps", None), args.batch_size
    if getattr(args, "budget_from", None):
        steps, batch = ladder_answer(args.budget_from)
    return Budget(epochs=args.budget_epochs, batch_size=batch, max_steps=args.max_steps,
                  recipe=args.recipe, lr=getattr(args, "lr", None), augment=getattr(args, "augment", "none"),
                  steps=steps)


def ladder_answer(path: str) -> tuple[int, int]:
    """The budget in steps and the batch size a budget ladder found (its ``budget.json``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--budget-from: cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != "budget ladder":
        raise ValueError(f"--budget-from: {path} is not the budget.json of `effnet study budget`")
    if data.get("budget_steps") is None:
        raise ValueError(f"--budget-from: the ladder in {path} found no budget: {data.get('verdict', '')}")
    return int(data["budget_steps"]), int(data.get("settings", {}).get("batch_size", 32))


def add_control(p: argparse.ArgumentParser) -> None:
    p.add_argument("--control", choices=("budget", "compound"), default="budget",
                   help="positive control: 'budget' (the base at a quarter of the budget against the full budget, a "
                        "difference no scaling method makes; default) or 'compound' (the base against compound "
                        "scaling to 4x, as studies before this choice); the negative control (the base twice, other "
                        "seeds) comes with 'budget'")


def budget_arguments(args: argparse.Namespace) -> dict:
    """The ``StudyConfig`` fields the shared options set."""
    return dict(data=data_spec(args), budget=training_budget(args), img_size=args.img_size, seeds=args.seeds,
                split_seeds=args.split_seeds)


def print_verdict(summary: dict, json_path: str | None) -> None:
    """The verdict first, then the control; writes ``--json`` when asked."""
    for c in (summary.get("control"), summary.get("negative_control")):  # the controls first
        if c and c.get("text"):
            print(c["text"])
    print(summary["verdict"])
    if json_path:
        emit_json(summary, json_path)


@contextlib.contextmanager
def interrupt_on_sigterm():
    """SIGTERM (a scheduler preempting the job) is handled like Ctrl-C: the running trial is re-queued."""
    def handler(signum, frame):  # noqa: ANN001
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class EventPrinter:
    """One line per finished trial."""

    def __init__(self, total: int, describe) -> None:
        self.total, self.describe, self.done = total, describe, 0

    def __call__(self, event: str, number: int, spec, frozen) -> None:
        if event == "start":
            return
        if spec is None:
            print("a trial's result was refused (it was retried elsewhere after missing heartbeats)", flush=True)
            return
        self.done += event in ("complete", "pruned")
        head = f"trial {number} ({self.done} done here, {self.total} planned): {self.describe(spec)}"
        if event == "complete":
            r = frozen.user_attrs.get("effnet.result") or {}
            print(f"{head}: val acc {frozen.value:.4f}, {r.get('macs', 0) / 1e6:.1f} M mult-adds at "
                  f"{r.get('resolution')} px, {r.get('trial_time_s', 0):.1f} s", flush=True)
        elif event == "pruned":
            print(f"{head}: pruned", flush=True)
        elif event == "fail":
            print(f"{head}: interrupted or failed; queued again", flush=True)
        elif event == "refused":
            print(f"{head}: result refused (trial was retried elsewhere after missing heartbeats)", flush=True)


def _one_phi(text: str) -> float:
    phis = parse_phis(text)
    if len(phis) != 1:
        raise ValueError(f"--phi takes one value in a grid search, got {text!r}")
    return phis[0]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "scale", help="grid-search the compound-scaling coefficients alpha, beta, gamma",
        description="Step 1 of compound scaling: train the base scaled by every (alpha, beta, gamma) on the grid "
                    f"and keep the most accurate. {CONSTRAINT_HELP}. Each candidate trains at "
                    "round(img-size * gamma^phi) px with the same recipe, budget and seeds. Trials live in an "
                    "Optuna study: Ctrl-C or a killed worker loses no finished trial; rerunning resumes.",
    )
    p.add_argument("--base", default="efficientnet_b0", help="registered network name or description JSON")
    p.add_argument("--phi", default="1",
                   help="compound coefficient the candidates are trained at, written as `effnet scale --phi` takes "
                        "it (one value here; default 1)")
    p.add_argument("--grid-step", type=float, default=0.05, help="grid spacing of alpha, beta, gamma (0.05)")
    p.add_argument("--tolerance", type=float, default=0.1,
                   help="relative tolerance on alpha*beta^2*gamma^2 = 2 (0.1: products in [1.8, 2.2])")
    p.add_argument("--max-coefficient", type=float, default=None, metavar="C",
                   help="upper bound on each of alpha, beta, gamma (default: only the constraint)")
    p.add_argument("--cost-tolerance", type=float, default=0.1, metavar="T",
                   help="a point whose real multiply-adds are off 2^phi x the base's by more than T (relative) is "
                        "re-solved along its direction; grid points still off are dropped (default 0.1)")
    p.add_argument("--prune", action="store_true",
                   help="evaluate after every epoch and stop trials below the median (Optuna MedianPruner)")
    p.add_argument("--list", action="store_true", help="print the candidate grid and exit (no training)")
    p.add_argument("--race", type=int, default=None, metavar="ROUNDS",
                   help="successive halving: after each round keep the top third plus every candidate "
                        "indistinguishable from the best, then double the epochs and the seeds (writes race.json)")
    add_study_arguments(p, out_default="runs/scale-search")
    add_control(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..search.kinds.grid import ScaleSearchConfig, default_study_name, run_scale_search
    from ..search.storage import normalise_url, redact

    config = ScaleSearchConfig(
        base=load_base(args.base), phi=_one_phi(args.phi), grid_step=args.grid_step, tolerance=args.tolerance,
        max_coefficient=args.max_coefficient, cost_tolerance=args.cost_tolerance, prune=args.prune,
        control=args.control, **budget_arguments(args),
    )
    config.check()
    candidates, notes = config.plan_with_notes()
    if args.list:
        print(f"{len(candidates)} candidates (the base, the paper's point and the corners, the grid, then the controls), "
              f"matched "
              f"to {2 ** config.phi:.3g}x the base's multiply-adds (cost tolerance {config.cost_tolerance:g}); "
              f"{notes['dropped_off_target']} grid points dropped off target; {CONSTRAINT_HELP} "
              f"(tolerance {args.tolerance:g})")
        print(f"{'candidate':>22} {'role':>9} {'phi':>6} {'depth x':>7} {'width x':>7} {'px':>4} {'FLOPs x':>7}  merged")
        for c in candidates:
            f = c.facts
            print(f"{c.key:>22} {c.role:>9} {f['phi']:>6.3f} {f['depth']:>7.2f} {f['width']:>7.2f} {c.img_size:>4} "
                  f"{f['achieved_ratio']:>7.2f}  {' '.join(f.get('merged', []))}".rstrip())
        return 0
    import optuna  # not before --list: listing the grid answers at once

    opts = study_options(args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = opts.study_name or default_study_name(config)
    print(f"grid search: {config.base.name} on {config.data.source}, {len(candidates)} candidates x {config.seeds} "
          f"seed(s), phi {config.phi:g}, {config.budget.label()} at {config.img_size} px "
          f"x gamma^phi; study {name!r} in {redact(normalise_url(opts.storage, opts.out_dir))}", flush=True)
    printer = EventPrinter(len(candidates) * config.seeds,
                           lambda s: f"{s.params['candidate']} seed {s.params['seed']}")
    if args.race is not None:
        from ..search.kinds.racing import run_race
        from ..search.kinds.grid import KIND

        with interrupt_on_sigterm():
            race = run_race(KIND, config, opts, name, config.plan, rounds=args.race, on_event=printer)
        print_verdict(race, args.json)
        for r in race["rounds"]:
            print(f"round {r['round']}: {r['candidates']} candidates, {r['epochs']} epoch(s) x {r['seeds']} seed(s); "
                  f"kept {len(r['kept'])}: {', '.join(r['kept'][:8])}")
        print("training received (epochs x seeds): " + ", ".join(
            f"{k} {v['epoch_seeds']}" for k, v in race["training_received"].items()))
        print(f"  {Path(opts.out_dir) / 'race.json'}")
        return 0
    with interrupt_on_sigterm():
        summary = run_scale_search(config, opts, on_event=printer)
    print_verdict(summary, args.json)
    p = summary["progress"]
    print(f"trials: {p['complete']} complete, {p['pruned']} pruned, {p['failed']} failed, {p['running']} running, "
          f"{p['waiting']} waiting")
    best = summary["best"]
    out = Path(opts.out_dir)
    if best:
        word = "best" if summary["winner"] else "leader on validation (not a winner)"
        print(f"{word}: alpha {best['alpha']:g}, beta {best['beta']:g}, gamma {best['gamma']:g} "
              f"(alpha*beta^2*gamma^2 = {best['product']:.3f}): val acc {best['val_acc']:.4f} "
              f"[{best['ci_low']:.4f}, {best['ci_high']:.4f}] ({best['seeds_done']} seeds), "
              f"{best['macs'] / 1e6:.2f} M mult-adds ({best['achieved_ratio']:.2f}x base) at {best['resolution']} px")
        print(f"next: effnet scale --base {args.base} --coefficients {out / 'best.json'} --phi 0,1,2,3 "
              f"--out {out / 'family'}")
    for f in ("summary.md", "trials.csv", "points.csv", "best.json", "heatmap.png", "acc_vs_flops.png"):
        print(f"  {out / f}")
    if not summary["finished"]:
        print("the study is not finished: rerun the same command to continue", file=sys.stderr)
    return 0
