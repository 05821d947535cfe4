"""Training-step throughput and peak memory: effnet's B0 vs torchvision's efficientnet_b0 in the same loop.

Each configuration runs in a fresh subprocess (so peak RSS belongs to it alone): the effnet
``Trainer`` (RMSProp-TF, EMA, label smoothing; the recipe's loop) trains on in-memory random
224x224 images at batch 32 for ``--warmup`` untimed and ``--steps`` timed steps. Throughput is
images per second over the timed steps; peak memory is the process's peak resident set size
(``resource.getrusage``), reported whole and above the RSS measured just before the first step.

    python benchmarks/bench_train.py [--steps 3] [--warmup 1] [--threads N] [--write]

``--write`` records the table in ``benchmarks/results/train-cpu.md``.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    "torchvision b0, fp32": {"model": "torchvision", "opts": {}},
    "torchvision b0, channels_last": {"model": "torchvision", "opts": {"channels_last": True}},
    "effnet b0, fp32": {"model": "effnet", "opts": {}},
    "effnet b0, channels_last": {"model": "effnet", "opts": {"channels_last": True}},
    "effnet b0, checkpointing + channels_last": {
        "model": "effnet", "opts": {"channels_last": True, "grad_checkpointing": True}},
    "effnet b0, checkpointing + channels_last + bf16": {
        "model": "effnet", "opts": {"channels_last": True, "amp": "bf16", "grad_checkpointing": True}},
}
BASELINE = "torchvision b0, fp32"


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(spec: dict, steps: int, warmup: int, batch: int, size: int, threads: int | None) -> dict:
    import torch
    from torch.utils.data import Dataset

    from effnet.train import TrainConfig
    from effnet.train.trainer import Trainer

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Images(Dataset):
        def __init__(self, n: int) -> None:
            self.x = torch.randn(n, 3, size, size)
            self.y = torch.randint(0, 1000, (n,)).tolist()

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int):
            return self.x[i], self.y[i]

    if spec["model"] == "torchvision":
        from torchvision.models import efficientnet_b0

        model = efficientnet_b0(num_classes=1000)
    else:
        from effnet import create_model

        model = create_model("efficientnet_b0", num_classes=1000)
    n_steps = steps + warmup
    # no layout given means NCHW (TrainConfig's default None would let the recipe pick channels_last)
    cfg = TrainConfig(batch_size=batch, epochs=1, warmup_epochs=0, **{"channels_last": False, **spec["opts"]})
    trainer = Trainer(cfg, model, Images(batch * n_steps), device=torch.device("cpu"))
    before = rss_mib()
    times = []
    start = time.perf_counter()
    for step in trainer.train_epoch():
        now = time.perf_counter()
        times.append(now - start)
        start = now
        if step >= n_steps:
            break
    timed = times[warmup:]
    return {"images_per_s": batch * len(timed) / sum(timed), "step_s": sum(timed) / len(timed),
            "peak_rss_mib": peak_rss_mib(), "rss_before_mib": before, "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def machine() -> str:
    import os

    from effnet.machine import cpu_model

    return f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), help="run only these configurations")
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/train-cpu.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(CONFIGS[args.child], args.steps, args.warmup, args.batch, args.size, args.threads)))
        return 0

    import os

    load_start = os.getloadavg()[0]
    results = {}
    for name in args.only or CONFIGS:
        cmd = [sys.executable, __file__, "--child", name, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--batch", str(args.batch), "--size", str(args.size)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        r = results[name]
        print(f"{name:<50} {r['images_per_s']:7.2f} img/s  peak RSS {r['peak_rss_mib']:7.0f} MiB", flush=True)

    base = results.get(BASELINE)
    lines = [f"| configuration | img/s | s/step | peak RSS MiB | peak - RSS before first step, MiB |"
             f"{' throughput vs torchvision fp32 | peak RSS vs torchvision fp32 |' if base else ''}",
             f"|---|---|---|---|---|{'---|---|' if base else ''}"]
    for name, r in results.items():
        row = (f"| {name} | {r['images_per_s']:.2f} | {r['step_s']:.2f} | {r['peak_rss_mib']:.0f} | "
               f"{r['peak_rss_mib'] - r['rss_before_mib']:.0f} |")
        if base:
            row += (f" {r['images_per_s'] / base['images_per_s']:.2f}x |"
                    f" {r['peak_rss_mib'] / base['peak_rss_mib']:.2f}x |")
        lines.append(row)
    any_r = next(iter(results.values()))
    header = (f"B0 training step at {args.size}x{args.size}, batch {args.batch}, effnet's loop (RMSProp-TF, EMA, "
              f"label smoothing 0.1), in-memory random images; {args.warmup} untimed + {args.steps} timed steps per "
              f"configuration, one run each, each in a fresh process.\n\nMachine: {machine()}; torch "
              f"{any_r['torch']}, {any_r['threads']} torch thread(s); 1-minute load average "
              f"{load_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end.")
    table = "\n".join(lines)
    print("\n" + header + "\n\n" + table)
    if args.write:
        out = Path(__file__).parent / "results" / "train-cpu.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"# Training step: throughput and peak memory (CPU)\n\n{header}\n\n{table}\n\n"
                       f"Command: `python benchmarks/bench_train.py {' '.join(sys.argv[1:])}`\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
