"""``effnet bench``: CPU inference speed of our paths against torchvision and timm."""
from __future__ import annotations

import argparse
import sys


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


from .common import add_json, add_pretrained, comma_list, emit_json


def register(subparsers) -> None:
    from ..deploy.names import CHOOSE_ONLY_PATHS, PATHS, PEERS  # torch-free: building the parser stays cheap

    p = subparsers.add_parser("bench", help="inference throughput, latency and memory vs torchvision/timm",
                              description="Time our eager model and optimised paths (channels_last, bf16 where the CPU has it, torch.compile, "
                                          "ONNX Runtime fp32, INT8; with --choose also OpenVINO fp32 and bf16) and the same network in torchvision and timm, "
                                          "in one run, and name our fastest path per setting. Random weights and inputs: speed only.")
    p.add_argument("--models", type=comma_list, default=["efficientnet_b0"], metavar="MODEL,...",
                   help="comma-separated model names, description .json files, checkpoints or run folders "
                        "(default efficientnet_b0)")
    p.add_argument("--batch-sizes", type=_ints, default=[1, 32], help="comma-separated (default 1,32)")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: each model's resolution)")
    p.add_argument("--paths", type=_csv, default=None,
                   help=f"comma-separated subset of {','.join(PATHS)}, and with --choose also "
                        f"{','.join(CHOOSE_ONLY_PATHS)} (default all; with --choose: all but compile)")
    p.add_argument("--peers", type=_csv, default=list(PEERS),
                   help=f"comma-separated subset of {','.join(PEERS)}; 'none' for no peers")
    p.add_argument("--repeats", type=int, default=20, help="timed batches per row, taken 5 at a time in rounds interleaved with the other rows (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches first (default 3)")
    p.add_argument("--threads", type=int, default=None, help="threads for PyTorch and ONNX Runtime (default: cores)")
    add_json(p, "results, machine and versions")
    c = p.add_argument_group("choosing the fastest path (--choose)")
    c.add_argument("--choose", action="store_true",
                   help="also measure each path's accuracy change (top-1 agreement with eager fp32 on scikit-image's "
                        "sample photos; with --data the held-out accuracy change and its interval), name the fastest "
                        "path within the tolerance per batch size and cache it for `effnet export/predict --path auto`")
    add_pretrained(c)
    c.add_argument("--data", help="labelled held-out data for the accuracy change ('elpv', 'fashion-mnist', a folder, a .csv)")
    c.add_argument("--eval-limit", type=int, default=None, help="at most this many held-out images")
    c.add_argument("--calib-images", type=int, default=300, help="--data training images INT8 is calibrated on, through "
                   "the eval transforms (default 300; without --data, 300 augmented views of the sample photos)")
    c.add_argument("--seed", type=int, default=0, help="split seed of --data (the one the model was trained with)")
    c.add_argument("--min-agreement", type=float, default=99.0, help="top-1 agreement with fp32 on the sample photos a path needs when there is no --data, percent (default 99); with --data the held-out change decides")
    c.add_argument("--max-drop", type=float, default=0.1, help="held-out accuracy drop allowed for fp32/bf16 paths, points (default 0.1)")
    c.add_argument("--int8-max-drop", type=float, default=1.0, help="held-out accuracy drop allowed for INT8, points (default 1)")
    c.add_argument("--int8-min-agreement", type=float, default=95.0, help="top-1 agreement with fp32 on the sample photos an "
                   "INT8 path needs when there is no --data, percent (default 95)")
    p.add_argument("--plot", metavar="FILE", help="write a bar chart PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checks import check_int, optional
    from ..weights.meta import MIN_IMAGE_SIZE
    from ..analysis.bench import PATHS, bench_table, results_json, run_bench

    peers = [] if args.peers == ["none"] else args.peers
    optional(check_int, "--img-size", args.img_size, MIN_IMAGE_SIZE)
    optional(check_int, "--threads", args.threads, 1)
    if args.threads:
        import os

        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.choose:
        return choose(args, peers)
    if args.paths is None:
        args.paths = list(PATHS)
    results = run_bench(args.models, args.batch_sizes, args.img_size, args.paths, peers, args.repeats,
                        args.warmup, threads=args.threads,
                        progress=lambda msg: print(f"  running {msg}", file=sys.stderr, flush=True))
    settings = {"models": args.models, "batch_sizes": args.batch_sizes, "img_size": args.img_size,
                "paths": args.paths, "peers": peers, "repeats": args.repeats, "warmup": args.warmup}
    if not (args.json and emit_json(results_json(results, settings), args.json)):
        print(bench_table(results, args.repeats))
    if args.plot:
        from ..analysis.plots import plot_bench

        plot_bench(results, args.plot)
        print(f"wrote {args.plot}")
    return 0


def choose(args: argparse.Namespace, peers: list[str]) -> int:
    """``--choose``: per model, the path table with accuracy changes and the cached choice."""
    from ..deploy.loading import load_model_arg
    from ..deploy.paths import DEFAULT_CANDIDATES, PathCache, Tolerance, choose_paths, labelled_arrays, \
        model_identity, paths_table

    import torch

    from .. import machine

    torch.set_num_threads(args.threads or machine.cpu_count())
    tolerance = Tolerance(args.min_agreement / 100, args.max_drop, args.int8_max_drop, args.int8_min_agreement / 100)
    for flag, value in (("--eval-limit", args.eval_limit), ("--calib-images", args.calib_images)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be positive, got {value}")
    cache = PathCache()
    if cache.warning:
        print(f"effnet bench: warning: {cache.warning}", file=sys.stderr)
    say = lambda msg: print(f"  running {msg}", file=sys.stderr, flush=True)  # noqa: E731
    reports = []
    for spec in args.models:
        model = load_model_arg(spec, pretrained=args.pretrained)
        size = args.img_size or model.preprocessing.resolution
        heldout = calib = ladder = None
        calib_name = ""
        if args.data:
            say(f"loading {args.data}")
            heldout, calib, ladder = labelled_arrays(args.data, model, size, seed=args.seed, eval_limit=args.eval_limit,
                                                     calib_images=args.calib_images)
            calib_name = f"{len(calib)} training images of {args.data} through the eval transforms"
        report = choose_paths(model, args.batch_sizes, size, args.paths or DEFAULT_CANDIDATES, peers, args.repeats,
                              args.warmup, tolerance, heldout, args.data or "", calib,
                              progress=lambda msg, name=spec: say(f"{name}: {msg}"), calibration_name=calib_name,
                              validation=ladder)
        text = sys.stderr if args.json == "-" else sys.stdout  # standard output is the JSON's then
        print(f"{spec} ({size}x{size})", file=text)
        print(paths_table(report), file=text)
        cache.put(model_identity(spec, args.pretrained), report)
        reports.append({"model": spec, "pretrained": args.pretrained, **report.to_dict()})
    print(f"choices cached in {cache.file}", file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        emit_json({"kind": "effnet.paths", "settings": vars_of(args), "models": reports}, args.json)
    return 0


def vars_of(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if k != "func"}
