"""``effnet study arch-strategies``: the architecture search against random search at equal trials."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import emit_json
from .search_arch import add_search_arguments


def register(sub) -> None:
    p = sub.add_parser(
        "arch-strategies", help="architecture-search strategies against random search, over search seeds",
        description="Run one architecture search per (strategy, search seed) with identical training settings "
                    "(the same data, budget and training seeds), each to --trials finished trials, and compare "
                    "the best reward found (ACC * (MACs / T) ** w; MACs are multiply-adds at --img-size) with a "
                    "t interval over search seeds. Studies share one Optuna storage, so rerunning the command "
                    "trains only the missing trials.",
    )
    p.add_argument("--strategies", default="rl,random",
                   help="strategies to compare, comma-separated (rl, tpe, nsga2, random; default rl,random); "
                        "each is compared with random when random is listed, else with the first")
    p.add_argument("--search-seeds", type=int, default=3, metavar="S",
                   help="independent searches per strategy, sampler seeds 0..S-1 (default 3)")
    p.add_argument("--no-controls", action="store_true",
                   help="skip the negative control (the reference strategy again with search seeds 1000 and up: "
                        "one more strategy's trials); without it no strategy is named better or worse. The "
                        "positive control (the reference's best after a quarter of the trials) costs nothing")
    add_search_arguments(p, out_default="runs/arch-strategies",
                         out_help="folder for strategies.json, best_so_far.png and the default study.db")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import optuna

    from ..archsearch.compare import (TWIN_SEARCH_OFFSET, check_plan, compare_studies, control_trials, reference_of,
                                      run_strategy_comparison, write_comparison)
    from ..search.storage import redact
    from .search_arch import describe_trial, prepare

    strategies = check_plan([s.strip() for s in args.strategies.split(",") if s.strip()], args.search_seeds,
                            args.trials)
    # the comparison is made on validation only, so the test images are not scored (on Fashion-MNIST
    # every trial would otherwise score all 10,000)
    settings, evaluate, url = prepare(args, strategies[0], score_test=False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"strategies {', '.join(strategies)}: {args.trials} trials x {args.search_seeds} search seed(s) each, "
          f"{settings.base} at {settings.img_size} px, target {settings.target_macs / 1e6:g}M MACs (multiply-adds), "
          f"w={settings.w}, {settings.budget.label()} x {settings.seeds} training seed(s) per candidate; "
          f"storage {redact(url)}", flush=True)
    if not args.no_controls:
        print(f"negative control: {reference_of(strategies)} again with search seeds {TWIN_SEARCH_OFFSET} to "
              f"{TWIN_SEARCH_OFFSET + args.search_seeds - 1}; positive control: {reference_of(strategies)}'s best after "
              f"{control_trials(args.trials)} trial(s) against after {args.trials}", flush=True)

    def report(strategy: str, search_seed: int, trial) -> None:
        print(f"{strategy} search seed {search_seed}: {describe_trial(trial)}", flush=True)

    studies = run_strategy_comparison(settings, evaluate, strategies=strategies, search_seeds=args.search_seeds,
                                      n_trials=args.trials, storage=url, negative_control=not args.no_controls,
                                      on_trial=report)
    summary = compare_studies(studies, n_trials=args.trials, chance=1.0 / settings.num_classes)
    paths = write_comparison(summary, Path(args.out), settings)
    for line in summary.get("controls", []):
        print(line)
    print(summary["verdict"])
    for s, st in summary["per_strategy"].items():
        m = st["best_reward_mean"]
        ci = f"95% CI {m['ci_low']:.4f} to {m['ci_high']:.4f}" if m["ci_low"] is not None else "no interval"
        print(f"  {s:>7}: best reward per search seed {' '.join(f'{v:.4f}' for v in st['best_reward'])}; "
              f"mean {m['mean']:.4f} ({ci}); its accuracy {' '.join(f'{v:.4f}' for v in st['best_accuracy'])}")
    for key in ("summary", "plot"):
        print(f"  {paths[key]}")
    if args.json:
        emit_json(summary, args.json)
    return 0
