"""``effnet search arch``: search a baseline architecture under a FLOPs (multiply-add) target."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from .common import add_json, add_recipe, emit_json

_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_macs(text: str) -> int:
    """``400000000``, ``4e8``, ``400M`` or ``0.4G`` multiply-adds; ValueError unless positive."""
    m = re.fullmatch(r"\s*([+-]?[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmg]?)\s*", str(text), flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"--target-macs must be a number of multiply-adds such as 400M or 4e8, got {text!r}")
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not value >= 1:
        raise ValueError(f"--target-macs must be positive, got {text!r}")
    return int(round(value))


def add_search_arguments(p: argparse.ArgumentParser, *, out_default: str, out_help: str) -> None:
    """The data, target, space and training budget of an architecture search, and where it is kept."""
    from ..archsearch.space import BASES  # pure Python: building the parser stays cheap

    p.add_argument("--data", required=True, help="'elpv', 'fashion-mnist', 'synthetic', an image folder or a CSV list")
    p.add_argument("--target-macs", required=True, metavar="N",
                   help="target T in multiply-adds at --img-size (e.g. 30M)")
    p.add_argument("--base", default="efficientnet_b0", help=f"network the space is laid over: {', '.join(BASES)}")
    p.add_argument("--trials", type=int, default=20, metavar="N", help="finished trials the study should hold")
    p.add_argument("--budget-epochs", type=int, default=1, metavar="N", help="training epochs per candidate")
    p.add_argument("--budget-steps", type=int, default=None, metavar="N",
                   help="training budget per candidate in optimiser steps instead of epochs (see `effnet study budget`)")
    p.add_argument("--budget-from", default=None, metavar="BUDGET.json",
                   help="take the budget in steps (and its batch size) from `effnet study budget`'s budget.json")
    p.add_argument("--img-size", type=int, default=64, metavar="PX", help="search resolution")
    p.add_argument("--w", type=float, default=-0.07, help="reward exponent on MACs / T (default -0.07)")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="database URL or SQLite file (default: study.db in --out)")
    p.add_argument("--out", default=out_default, metavar="DIR", help=out_help)
    add_json(p, "the summary with its statistics")
    p.add_argument("--seed", type=int, default=0, help="first training seed; it also draws the data split")
    p.add_argument("--seeds", type=int, default=1, metavar="K",
                   help="train every candidate with K seeds (the same for all) and reward their mean accuracy")
    p.add_argument("--task", default="default", help="labelling of the elpv data ('default' or 'binary')")
    p.add_argument("--limit-per-class", type=int, default=None, metavar="N", help="use at most N images per class")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size")
    add_recipe(p, "short")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="stop each candidate's training after N steps")
    p.add_argument("--no-base", action="store_true", help="do not evaluate the base network as the first trial")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "arch",
        help="search a baseline network under a FLOPs target (MnasNet-style)",
        description="Search the factorised MnasNet space around a base network for the architecture with the "
                    "highest reward ACC * (MACs / T) ** w, training every candidate briefly. Trials live in an "
                    "Optuna study (SQLite file in --out by default, or --storage URL), so an interrupted search "
                    "resumes where it stopped and several workers can share one study. FLOPs are multiply-adds "
                    "at --img-size.",
    )
    # base and strategy are checked by the library, so a bad value is one line, not a usage dump
    p.add_argument("--strategy", default="rl",
                   help="rl (default): policy-gradient controller; tpe: Optuna TPE on the reward; nsga2: Pareto search "
                        "on (accuracy, MACs); random: uniform sampling")
    p.add_argument("--study", default=None, metavar="NAME", help="study name (default arch-<base>-<strategy>)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="candidates (by reward, plus the base) given paired statistics in the report (default 10)")
    add_search_arguments(p, out_default="runs/arch-search",
                         out_help="folder for best.json, search.json, trials.csv/.md, accuracy_vs_macs.png and the "
                                  "default study.db")
    p.set_defaults(func=run)


def prepare(args: argparse.Namespace, strategy: str, *, score_test: bool = True):
    """Checks the options, reads the data once; returns the settings (for ``strategy``), the training
    evaluator (seeds ``--seed`` .. ``--seed + --seeds - 1`` for every candidate; test images scored
    only with ``score_test``) and the storage URL."""
    from ..archsearch.search import ArchSearchSettings
    from ..checks import check_int, optional
    from ..data.spec import DataSpec
    from ..search.storage import normalise_url
    from ..search.training import QuickTrainer, SeedMean
    from .search_scale import training_budget

    target_macs = parse_macs(args.target_macs)
    for flag in ("--trials", "--budget-epochs", "--img-size", "--batch-size"):
        check_int(flag, getattr(args, flag[2:].replace("-", "_")), 1)
    for flag in ("--limit-per-class", "--max-steps"):
        optional(check_int, flag, getattr(args, flag[2:].replace("-", "_")), 1)
    out = Path(args.out)
    url = normalise_url(args.storage, out)
    if args.storage is None:
        out.mkdir(parents=True, exist_ok=True)

    data = DataSpec(args.data, task=args.task, seed=args.seed, limit_per_class=args.limit_per_class)
    budget = training_budget(args)
    trainer = QuickTrainer(data, budget, score_test=score_test).load(args.img_size)
    trainer.show_progress = False
    where = args.data if args.data in ("elpv", "fashion-mnist", "synthetic") else str(Path(args.data).resolve())
    label = f"{where} (task {args.task}" + (f", {args.limit_per_class} per class" if args.limit_per_class else "") + ")"
    settings = ArchSearchSettings(
        target_macs=target_macs, base=args.base, strategy=strategy, w=args.w, img_size=args.img_size,
        num_classes=trainer.num_classes, data=label, budget=budget, include_base=not args.no_base,
        seeds=args.seeds, seed=args.seed,
    )
    evaluate = SeedMean(trainer, img_size=args.img_size, seed=args.seed, seeds=args.seeds)
    return settings, evaluate, url


def describe_trial(trial) -> str:
    """One line for a finished trial."""
    a = trial.user_attrs
    if "reward" in a:
        return (f"trial {trial.number}: accuracy {a['accuracy']:.4f}  MACs {a['macs'] / 1e6:.1f}M  "
                f"reward {a['reward']:.4f}  {a.get('train_time_s', 0):.0f} s  {a.get('code', '')}")
    return f"trial {trial.number}: {trial.state.name.lower()} {a.get('error') or ''}".rstrip()


def run(args: argparse.Namespace) -> int:
    import optuna

    from ..archsearch.search import analyse_search, best_trial, count_finished, run_arch_search, write_outputs
    from ..search.storage import redact

    if args.top < 1:
        raise ValueError(f"--top must be a positive integer, got {args.top}")
    settings, evaluate, url = prepare(args, args.strategy)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"search: {settings.strategy} over {settings.base} at {settings.img_size} px, target {settings.target_macs / 1e6:g}M "
          f"MACs (multiply-adds), w={settings.w}, {args.trials} trials, storage {redact(url)}", flush=True)
    study = run_arch_search(settings, evaluate, n_trials=args.trials, storage=url, study_name=args.study,
                            seed=args.seed, on_trial=lambda t: print(describe_trial(t), flush=True))
    summary = analyse_search(study, settings, top=args.top)
    paths = write_outputs(study, Path(args.out), settings, summary)
    best = best_trial(study)
    a = best.user_attrs
    print(summary["verdict"])
    print(f"study {study.study_name}: {count_finished(study)} finished trials; highest reward trial {best.number}: "
          f"accuracy {a['accuracy']:.4f}, {a['macs'] / 1e6:.1f}M MACs, {a['params'] / 1e6:.2f}M params, "
          f"reward {a['reward']:.4f}")
    for key in ("best", "summary", "markdown", "csv", "plot"):
        print(f"  {paths[key]}")
    if args.json:
        emit_json(summary, args.json)
    return 0
