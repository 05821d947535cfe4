"""``effnet bench``: CPU inference speed of our paths against torchvision and timm."""
from __future__ import annotations

import argparse
import json
import sys


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def register(subparsers) -> None:
    from ..analysis.bench_names import PATHS, PEERS  # torch-free: building the parser stays cheap

    p = subparsers.add_parser("bench", help="inference throughput, latency and memory vs torchvision/timm",
                              description="Time our eager model and optimised paths (channels_last, bf16 where the CPU has it, torch.compile, "
                                          "ONNX Runtime fp32, INT8) and the same network in torchvision and timm, "
                                          "in one run, and name our fastest path per setting. Random weights and inputs: speed only.")
    p.add_argument("--models", nargs="+", default=["efficientnet_b0"], metavar="MODEL",
                   help="model names, description .json files or checkpoints (default efficientnet_b0)")
    p.add_argument("--batch-sizes", type=_ints, default=[1, 32], help="comma-separated (default 1,32)")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: each model's resolution)")
    p.add_argument("--paths", type=_csv, default=list(PATHS), help=f"comma-separated subset of {','.join(PATHS)}")
    p.add_argument("--peers", type=_csv, default=list(PEERS),
                   help=f"comma-separated subset of {','.join(PEERS)}; 'none' for no peers")
    p.add_argument("--repeats", type=int, default=20, help="timed batches per row, taken 5 at a time in rounds interleaved with the other rows (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches first (default 3)")
    p.add_argument("--threads", type=int, default=None, help="threads for PyTorch and ONNX Runtime (default: cores)")
    p.add_argument("--json", metavar="FILE", help="write results, machine and versions as JSON")
    p.add_argument("--plot", metavar="FILE", help="write a bar chart PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.bench import bench_table, results_json, run_bench
    from ..fsutil import atomic_write_text

    peers = [] if args.peers == ["none"] else args.peers
    if args.img_size is not None and args.img_size < 16:
        raise ValueError(f"--img-size must be at least 16, got {args.img_size}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be positive, got {args.threads}")
    if args.threads:
        import os

        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    results = run_bench(args.models, args.batch_sizes, args.img_size, args.paths, peers, args.repeats,
                        args.warmup, threads=args.threads,
                        progress=lambda msg: print(f"  running {msg}", file=sys.stderr, flush=True))
    print(bench_table(results, args.repeats))
    settings = {"models": args.models, "batch_sizes": args.batch_sizes, "img_size": args.img_size,
                "paths": args.paths, "peers": peers, "repeats": args.repeats, "warmup": args.warmup}
    if args.json:
        atomic_write_text(args.json, json.dumps(results_json(results, settings), indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        from ..analysis.plots import plot_bench

        plot_bench(results, args.plot)
        print(f"wrote {args.plot}")
    return 0
