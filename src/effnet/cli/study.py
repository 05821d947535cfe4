"""``effnet study scaling``, ``proxy`` and ``transfer``: the paper's Figures 3 and 8, proxy fidelity, Table 5 in small."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import comma_list, emit_json
from .scale import add_coefficient_arguments
from .search_scale import (EventPrinter, add_control, add_study_arguments, budget_arguments, interrupt_on_sigterm,
                           load_base, print_verdict, study_options)
from .study_arch import register as register_arch_strategies


TRANSFER_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def register(subparsers) -> None:
    p = subparsers.add_parser("study", help="studies of the paper's claims (scaling, proxy fidelity, transfer, search strategies)",
                              description="Studies that reproduce the paper's analyses on your data.")
    sub = p.add_subparsers(dest="study_command", metavar="STUDY")
    sub.required = True
    s = sub.add_parser(
        "scaling", help="depth-only, width-only, resolution-only and compound scaling at matched FLOPs",
        description="Scale the base by depth only, width only, resolution only and compound (alpha, beta, gamma) to "
                    "each FLOPs ratio (multiplier solved with the analytic cost model; FLOPs are multiply-adds), "
                    "train each with the same recipe and budget, and plot accuracy against FLOPs. Trials are keyed "
                    "by (method, ratio, seed) in a resumable Optuna study.",
    )
    s.add_argument("--base", default="efficientnet_b0",
                   help="registered network (efficientnet_b0, mobilenet_v2, resnet50, ...) or description JSON")
    s.add_argument("--ratios", default="2,4,8", help="FLOPs ratios to the base, comma-separated (default 2,4,8)")
    s.add_argument("--methods", default="depth,width,resolution,compound",
                   help="scaling methods, comma-separated (default all four)")
    add_coefficient_arguments(s)
    s.add_argument("--plan", action="store_true", help="print the matched networks and their FLOPs, train nothing")
    add_study_arguments(s, out_default="runs/scaling-study")
    add_control(s)
    s.set_defaults(func=run)
    x = sub.add_parser(
        "proxy", help="proxy fidelity: does the short budget rank candidates like a longer one (Kendall tau)",
        description="Train the scaling study's networks at --budget-epochs and at --factor times it, with the same "
                    "paired seeds, and report Kendall tau between the two rankings with a bootstrap interval over "
                    "seeds. A tau whose interval includes 0 means the proxy ranks nothing.",
    )
    x.add_argument("--base", default="efficientnet_b0", help="registered network or description JSON")
    x.add_argument("--ratios", default="2,4", help="FLOPs ratios to the base, comma-separated (default 2,4)")
    x.add_argument("--methods", default="depth,width,resolution,compound", help="scaling methods (default all four)")
    x.add_argument("--factor", type=int, default=3, metavar="K", help="the long budget is K x the proxy's (default 3)")
    add_coefficient_arguments(x)
    add_study_arguments(x, out_default="runs/proxy-study")
    x.set_defaults(func=run_proxy)
    t = sub.add_parser(
        "transfer", help="ImageNet initialisation vs training from scratch, against parameters and FLOPs",
        description="Fine-tune each model from its ImageNet weights (new classifier) and train the same network from "
                    "scratch, with the same paired seeds, each with the recipe the run decides (fine-tune or short "
                    "regime); report test accuracy with 95% intervals, paired differences ImageNet minus scratch and "
                    "bigger minus smaller, and one plot against multiply-adds and parameters. Three seeds by default. Trials are keyed by "
                    "(model, init, seed) in a resumable Optuna study.",
    )
    t.add_argument("--models", type=comma_list, default=list(TRANSFER_MODELS), metavar="MODEL,...",
                   help=f"comma-separated registered networks with offline ImageNet weights "
                        f"(default {','.join(TRANSFER_MODELS)})")
    add_study_arguments(t, out_default="runs/transfer-study", data_default="elpv", img_size_default=128)
    t.set_defaults(func=run_transfer, seeds=3)
    b = sub.add_parser(
        "budget", help="find the training budget a study needs: the controls at doubling budgets",
        description="Train the base at each budget of a ladder (--start-steps, doubling, up to --max-budget-steps "
                    "optimiser steps) beside the base at a quarter of that budget (the positive control) and the base "
                    "again with other seeds (the negative control). Stop at the first budget where the positive "
                    "control separates and the negative does not, and print it with the time one scaling study at "
                    "that budget would take on this machine. Each rung is a resumable study.",
    )
    b.add_argument("--base", default="efficientnet_b0", help="registered network or description JSON")
    b.add_argument("--start-steps", type=int, default=100, metavar="N", help="the first budget (default 100 steps)")
    b.add_argument("--max-budget-steps", type=int, default=3200, metavar="N",
                   help="the largest budget tried (default 3200 steps)")
    b.add_argument("--ratios", default="2,4,8",
                   help="FLOPs ratios of the scaling study whose time is estimated (default 2,4,8)")
    add_study_arguments(b, out_default="runs/budget-ladder")
    b.set_defaults(func=run_budget, seeds=3)
    register_arch_strategies(sub)


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--{what} must be comma-separated numbers, got {text!r}") from None


def _config(args: argparse.Namespace):
    from ..search.kinds.scaling import ScalingStudyConfig
    from .scale import coefficients_arg

    alpha, beta, gamma = coefficients_arg(args)
    return ScalingStudyConfig(
        base=load_base(args.base), ratios=_floats(args.ratios, "ratios"),
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()), alpha=alpha, beta=beta, gamma=gamma,
        control=getattr(args, "control", "budget"), **budget_arguments(args),
    )


def run_proxy(args: argparse.Namespace) -> int:
    import optuna

    from ..search.kinds.proxy import run_proxy_check

    config = _config(args)
    opts = study_options(args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    n = len(config.candidates()) * config.seeds
    print(f"proxy fidelity: {config.base.name} on {config.data.source}, {n} trials at {config.budget.label()} "
          f"and {n} at {config.budget.scaled(args.factor).label()}", flush=True)
    printer = EventPrinter(2 * n, lambda s: f"{s.params['candidate']} seed {s.params['seed']}")
    with interrupt_on_sigterm():
        summary = run_proxy_check(config, opts, args.factor, on_event=printer)
    print(summary["verdict"])
    print(f"{'candidate':>16} {'proxy acc':>9} {'long acc':>9}")
    for c in summary["candidates"]:
        print(f"{c['key']:>16} {c['proxy_mean']:>9.4f} {c['long_mean']:>9.4f}")
    print(f"  {Path(opts.out_dir) / 'proxy.json'}\n  {Path(opts.out_dir) / 'proxy.png'}")
    if args.json:
        emit_json(summary, args.json)
    return 0


def run(args: argparse.Namespace) -> int:
    import optuna

    from ..search.kinds.scaling import default_study_name, run_scaling_study
    from ..search.storage import normalise_url, redact

    config = _config(args)
    if args.plan:
        plan = config.plan()
        print(f"{config.base.name} from {config.img_size} px ({config.base.num_classes} classes); FLOPs are "
              "multiply-adds from the analytic cost model")
        print(f"{'method':>10} {'target':>7} {'multiplier':>10} {'px':>5} {'FLOPs (M)':>10} {'x base':>7} {'params (M)':>10}")
        for n in plan:
            print(f"{n.method:>10} {n.target_ratio:>7g} {n.multiplier:>10.3f} {n.img_size:>5} {n.macs / 1e6:>10.1f} "
                  f"{n.ratio:>7.2f} {n.params / 1e6:>10.2f}")
        return 0
    opts = study_options(args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = opts.study_name or default_study_name(config)
    total = len(config.candidates()) * config.seeds
    print(f"scaling study: {config.base.name} on {config.data.source}, methods {', '.join(config.methods)}, ratios "
          f"{', '.join(f'{r:g}' for r in config.ratios)}, {total} trials, {config.budget.label()} "
          f"from {config.img_size} px; study {name!r} in "
          f"{redact(normalise_url(opts.storage, opts.out_dir))}", flush=True)
    printer = EventPrinter(total, lambda s: f"{s.params['candidate']} seed {s.params['seed']}")
    with interrupt_on_sigterm():
        summary = run_scaling_study(config, opts, on_event=printer)
    print_verdict(summary, args.json)
    out = Path(opts.out_dir)
    print(f"{'method':>10} {'target':>7} {'FLOPs (M)':>10} {'x base':>7} {'val acc':>8} {'95% CI':>17} {'same as best':>12}")
    for r in summary["rows"]:
        acc = f"{r['acc']:.4f}" if r["acc"] is not None else "-"
        ci = f"{r['ci_low']:.4f}-{r['ci_high']:.4f}" if r.get("ci_low") is not None else "-"
        same = {None: "-", True: "yes", False: "no"}[r.get("indistinguishable_from_best")] if r["role"] == "candidate" else ""
        print(f"{r['method']:>10} {r['target_ratio']:>7g} {r['macs'] / 1e6:>10.1f} {r['achieved_ratio']:>7.2f} {acc:>8} "
              f"{ci:>17} {same:>12}")
    for f in ("summary.md", "scaling.csv", "scaling.png", "scaling.json"):
        print(f"  {out / f}")
    if not summary["finished"]:
        print("the study is not finished: rerun the same command to continue", file=sys.stderr)
    return 0


def run_transfer(args: argparse.Namespace) -> int:
    import optuna

    from ..search.storage import normalise_url, redact
    from ..search.kinds.transfer import TransferStudyConfig, label, run_transfer_study

    if args.recipe != "short":
        raise ValueError("--recipe does not apply to the transfer study: each run's recipe is decided "
                         "(fine-tune regime for ImageNet weights, short regime from scratch)")
    config = TransferStudyConfig(models=tuple(args.models), **budget_arguments(args))
    config.check()
    opts = study_options(args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = opts.study_name or "transfer-study"
    total = len(config.candidates()) * config.seeds
    print(f"transfer study: {', '.join(map(label, config.models))} x (imagenet, scratch) on {config.data.source}, {total} "
          f"trials, {config.budget_label()}; study {name!r} in {redact(normalise_url(opts.storage, opts.out_dir))}",
          flush=True)
    printer = EventPrinter(total, lambda s: f"{s.params['candidate']} seed {s.params['seed']}")
    with interrupt_on_sigterm():
        summary = run_transfer_study(config, opts, on_event=printer)
    print_verdict(summary, args.json)
    print(f"{'model':>8} {'init':>9} {'params (M)':>10} {'FLOPs (M)':>10} {'test acc':>9} {'95% CI':>17}")
    for r in summary["per_candidate"]:
        acc = f"{r['test_mean']:.4f}" if summary["finished"] and r.get("test_mean") is not None else "-"
        ci = f"{r['test_ci_low']:.4f}-{r['test_ci_high']:.4f}" if acc != "-" else "-"
        print(f"{r['label']:>8} {r['init']:>9} {r['params'] / 1e6:>10.2f} {r['macs'] / 1e6:>10.1f} {acc:>9} {ci:>17}")
    out = Path(opts.out_dir)
    for f in ("transfer.md", "transfer.json", "transfer.png"):
        print(f"  {out / f}")
    if not summary["finished"]:
        print("the study is not finished: rerun the same command to continue", file=sys.stderr)
    return 0


def run_budget(args: argparse.Namespace) -> int:
    import optuna

    from ..search.kinds.budget import BudgetLadderConfig, default_study_name, run_budget_ladder
    from ..search.storage import normalise_url, redact

    if args.budget_steps is not None or args.budget_from is not None:
        raise ValueError("--budget-steps and --budget-from do not apply to the ladder, which sets each rung's budget; "
                         "use --start-steps and --max-budget-steps")
    config = BudgetLadderConfig(base=load_base(args.base), start_steps=args.start_steps,
                                max_budget_steps=args.max_budget_steps, ratios=_floats(args.ratios, "ratios"),
                                **budget_arguments(args))
    config.check()
    opts = study_options(args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = opts.study_name or default_study_name(config)
    print(f"budget ladder: {config.base.name} on {config.data.source}, budgets {', '.join(map(str, config.rungs()))} "
          f"steps (stopping at the first that resolves), 3 networks x {config.seeds} seeds each; studies {name}-* in "
          f"{redact(normalise_url(opts.storage, opts.out_dir))}", flush=True)

    def rung_line(r: dict) -> None:
        p, n = r["positive"], r["negative"]
        print(f"{r['steps']:>6} steps: base {r['base_accuracy']:.4f}, quarter {r['quarter_accuracy']:.4f}; "
              f"full - quarter {p['diff']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] "
              f"{'separated' if p['separated'] else 'not separated'}; twin - base {n['diff']:+.4f} "
              f"[{n['ci_low']:+.4f}, {n['ci_high']:+.4f}] {'indistinguishable' if n['passed'] else 'SEPARATED'}"
              + ("" if r["chance"] is None else
                 f"; quarter {'above' if r['quarter_learned'] else 'NOT above'} the majority class's {r['chance']:.4f}"),
              flush=True)

    printer = EventPrinter(3 * config.seeds * len(config.rungs()),
                           lambda s: f"{s.params['candidate']} seed {s.params['seed']}")
    with interrupt_on_sigterm():
        summary = run_budget_ladder(config, opts, on_event=printer, on_rung=rung_line)
    print_verdict(summary, args.json)
    out = Path(opts.out_dir)
    for f in ("budget.md", "budget.png", "budget.json"):
        print(f"  {out / f}")
    return 0
