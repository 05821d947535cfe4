"""Small-image CPU training throughput, interleaved: torchvision's B0 in plain fp32 NCHW against
effnet's B0 with the settings :func:`effnet.train.fastpath.choose_training_settings` picks.

All configurations train in one process with effnet's ``Trainer`` (the recipe's loop: RMSProp-TF,
EMA, label smoothing) on in-memory random images, and take turns step by step: each round runs
one step of every configuration, in an order reversed every other round, so a change in machine
load falls on all alike. A configuration's speed is batch / median step time; the ratio's spread
is the interquartile range of the per-round ratios. Step time is wall time and, separately, the
process's CPU time (less sensitive to other processes on a loaded machine; with one thread).

    python benchmarks/bench_train_small.py [--size 64] [--batch 32] [--rounds 15] [--threads N] [--write]

``--write`` appends the result to ``benchmarks/results/train-cpu.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def make_trainer(kind: str, opts: dict, size: int, batch: int, steps: int):
    import torch
    from torch.utils.data import Dataset

    from effnet import create_model
    from effnet.train import TrainConfig
    from effnet.train.trainer import Trainer

    class Images(Dataset):
        def __init__(self, n: int) -> None:
            g = torch.Generator().manual_seed(0)
            self.x = torch.randn(n, 3, size, size, generator=g)
            self.y = torch.randint(0, 4, (n,), generator=g).tolist()

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int):
            return self.x[i], self.y[i]

    torch.manual_seed(0)
    if kind == "torchvision":
        from torchvision.models import efficientnet_b0

        model = efficientnet_b0(num_classes=4)
    else:
        model = create_model("efficientnet_b0", num_classes=4)
    # a configuration without a layout is NCHW: TrainConfig's default (None) lets the recipe pick
    # the machine's fastest layout, which would turn every "NCHW" row into channels_last
    opts = {"channels_last": False, **opts}
    cfg = TrainConfig(batch_size=batch, epochs=1, warmup_epochs=0, **opts)
    trainer = Trainer(cfg, model, Images(batch * steps), device=torch.device("cpu"))
    assert trainer.cfg.channels_last == opts["channels_last"], "the layout asked for is the layout trained"
    return trainer.train_epoch()


def cpu_description() -> tuple[str, list[str]]:
    """The CPU's model name and the flags that decide CPU training speed."""
    from effnet.machine import cpu_flags

    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma"})
    cpu_name = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name")), platform.processor())
    return cpu_name, flags


def main() -> int:
    import torch

    from effnet.machine import cpu_flags, native_bf16
    from effnet.train.fastpath import choose_training_settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="default: fastpath's choice")
    p.add_argument("--write", action="store_true")
    args = p.parse_args()

    fast = choose_training_settings(args.size)
    opts = {k: v for k, v in fast.config_overrides().items() if k != "threads"}
    threads = args.threads or fast.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    configs = {
        "torchvision b0, fp32 NCHW": ("torchvision", {}),
        "torchvision b0, channels_last": ("torchvision", {"channels_last": True}),
        "effnet b0, fp32 NCHW": ("effnet", {}),
        f"effnet b0, fastpath ({', '.join(f'{k}={v}' for k, v in opts.items())})": ("effnet", opts),
    }
    if native_bf16(cpu_flags()) and opts.get("amp") != "bf16":  # what fastpath did not choose, measured beside it
        configs["effnet b0, channels_last + bf16 autocast"] = ("effnet", {**opts, "channels_last": True, "amp": "bf16"})
    names = list(configs)
    base = names[0]
    load = [os.getloadavg()[0]]
    steps = {n: make_trainer(kind, o, args.size, args.batch, args.rounds + args.warmup + 1)
             for n, (kind, o) in configs.items()}
    for _ in range(args.warmup):
        for n in names:
            next(steps[n])
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for r in range(args.rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            t, c = time.perf_counter(), time.process_time()
            next(steps[n])
            cpu[n].append(time.process_time() - c)
            wall[n].append(time.perf_counter() - t)
    load.append(os.getloadavg()[0])

    def iqr(values):
        q = statistics.quantiles(values, n=4)
        return q[0], q[2]

    lines = [f"| configuration | img/s (wall) | speed vs {base}, wall: median [IQR] of per-round ratios "
             f"| img/s (CPU time) | speed vs {base}, CPU time: median [IQR] |", "|---|---|---|---|---|"]
    for n in names:
        rw = [b / a for a, b in zip(wall[n], wall[base])]
        rc = [b / a for a, b in zip(cpu[n], cpu[base])]
        lines.append(f"| {n} | {args.batch / statistics.median(wall[n]):.1f} | {statistics.median(rw):.2f}x "
                     f"[{iqr(rw)[0]:.2f}-{iqr(rw)[1]:.2f}] | {args.batch / statistics.median(cpu[n]) * threads:.1f} | "
                     f"{statistics.median(rc):.2f}x [{iqr(rc)[0]:.2f}-{iqr(rc)[1]:.2f}] |")
    cpu_name, flags = cpu_description()
    import torchvision

    header = (f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. B0 training step at {args.size}x{args.size}, "
              f"batch {args.batch}, effnet's Trainer (RMSProp-TF, EMA, label smoothing 0.1), random in-memory images, "
              f"{args.warmup} untimed + {args.rounds} timed steps per configuration, interleaved step by step.\n\n"
              f"Machine: {cpu_name}, {os.cpu_count()} CPUs, flags {' '.join(flags)} "
              f"(no AVX512-BF16/AMX: {'yes' if not ({'avx512_bf16', 'amx_bf16'} & set(flags)) else 'no'}); "
              f"torch {torch.__version__}, torchvision {torchvision.__version__}, Python {platform.python_version()}; "
              f"{threads} torch thread(s); 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end.\n\n"
              f"fastpath chose: {fast.describe()}")
    table = "\n".join(lines)
    print(header + "\n\n" + table)
    if args.write:
        out = ROOT / "benchmarks" / "results" / "train-cpu.md"
        with open(out, "a") as f:
            f.write(f"\n\n## Small images, interleaved (`benchmarks/bench_train_small.py`)\n\n{header}\n\n{table}\n\n"
                    f"Command: `python benchmarks/bench_train_small.py {' '.join(sys.argv[1:])}`\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
