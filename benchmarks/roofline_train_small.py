"""Where the small-image training step's time goes, against this CPU's own ceilings.

    python benchmarks/roofline_train_small.py [--size 64] [--batch 32] [--steps 6] [--write]

One process, one torch thread. Trains torchvision's B0 (fp32 NCHW) and effnet's B0 with the settings
:func:`effnet.train.fastpath.choose_training_settings` picks, with effnet's ``Trainer`` on random
in-memory images, step by step in turn, and measures in the same run, between the steps:

* the compute ceiling: single-precision matrix multiply (1024 x 1024 x 1024) in GFLOP/s;
* the memory ceiling: ``torch.add(a, b, out=c)`` on 64 MiB arrays in GB/s (three arrays moved);

each the best of all repeats, in CPU time.

Median step times come from unprofiled steps. One profiled step per model (``torch.profiler``, self
CPU time) splits the step into categories: 1x1, depthwise and other convolutions (forward and
backward, by weight shape; every operator of the depthwise weight gradient effnet computes itself
counts as depthwise), batch norm, other elementwise and reduction operators, the optimizer and EMA (every
operator inside the optimizer's step or the EMA update), and the rest. The work of each is counted: convolution FLOPs from
forward hooks (training = 3x the forward's: output, input gradient, weight gradient), bytes of the
memory-bound operators from their recorded input shapes (inputs read once, one output written).
Each category's *ceiling time* is its work at the CPU's ceiling: FLOPs / matmul rate for 1x1 and
other convolutions, the larger of FLOPs / matmul rate and bytes / copy rate for depthwise, bytes /
copy rate for the memory-bound operators. The sum of the ceiling times bounds how fast the step
could possibly run on this CPU in fp32, whatever the kernels; the report gives the ratio of that
bound to torchvision's step.
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

CATEGORIES = ("1x1 conv", "depthwise conv", "other conv", "batch norm", "elementwise", "optimizer + EMA", "rest")
MEMORY_BOUND = ("batch norm", "elementwise", "optimizer + EMA")
ELEMENTWISE = ("silu", "sigmoid", "mul", "add", "div", "sub", "hardtanh", "relu", "threshold", "mean", "sum",
               "log_softmax", "nll_loss", "where", "fill", "zero")


def conv_kind(weight_shape) -> str:
    if len(weight_shape) != 4:
        return "other conv"
    if weight_shape[2] == weight_shape[3] == 1:
        return "1x1 conv"
    if weight_shape[1] == 1:
        return "depthwise conv"
    return "other conv"


def category(name: str, shapes) -> str:
    n = name.lower()
    if "convolution" in n:
        weight = shapes[2] if "backward" in n and len(shapes) > 2 else (shapes[1] if len(shapes) > 1 else [])
        x = shapes[0] if shapes else []
        if (len(x) == 4 and len(weight) == 4 and x[0] == 1 and weight[1] > 1 and x[1] == weight[0] * weight[1]
                and "backward" not in n):  # effnet's small-map depthwise weight gradient (batch as channels)
            return "depthwise conv"
        return conv_kind(weight)
    if "batch_norm" in n:
        return "batch norm"
    if any(k in n for k in ELEMENTWISE):
        return "elementwise"
    return "rest"


def conv_work(model, size: int, batch: int) -> dict[str, dict[str, float]]:
    """Training FLOPs (3x forward) of each convolution kind, and the bytes depthwise moves (fp32:
    forward reads the input and writes the output; the two gradients read the output gradient and the
    input and write theirs)."""
    import torch

    work = defaultdict(lambda: {"flops": 0.0, "bytes": 0.0})

    def hook(mod, inp, out):
        x = inp[0]
        kind = conv_kind(tuple(mod.weight.shape))
        macs = out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        work[kind]["flops"] += 3 * 2 * macs
        work[kind]["bytes"] += 4 * 3 * (x.numel() + out.numel())

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.randn(batch, 3, size, size))
    model.train()
    for h in hooks:
        h.remove()
    return dict(work)


def _enclosing(ev) -> str | None:
    """'optimizer + EMA' when ``ev`` runs inside the optimizer's step or the EMA update, 'depthwise
    conv' inside the backward of effnet's depthwise convolution (its tap-by-tap weight gradient)."""
    while ev is not None:
        if ev.name.startswith("Optimizer.step") or ev.name == "EMA.update":
            return "optimizer + EMA"
        if "DepthwiseSmallMap" in ev.name:
            return "depthwise conv"
        ev = ev.cpu_parent
    return None


def profile_step(step) -> dict[str, dict[str, float]]:
    """Self CPU seconds and moved bytes (memory-bound categories) per category, one step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        next(step)
    out = {c: {"s": 0.0, "bytes": 0.0} for c in CATEGORIES}
    total = 0.0
    for ev in prof.events():
        if not ev.name.startswith("aten::"):
            continue
        shapes = [s for s in (ev.input_shapes or []) if isinstance(s, (list, tuple))]
        cat = _enclosing(ev) or category(ev.name, shapes)
        s = ev.self_cpu_time_total / 1e6
        out[cat]["s"] += s
        total += s
        if cat in MEMORY_BOUND:
            sizes = [math.prod(x) for x in shapes if len(x) > 0 and all(isinstance(v, int) for v in x)]
            if sizes:
                out[cat]["bytes"] += 4 * (sum(sizes) + max(sizes))
    out["_total"] = {"s": total, "bytes": 0.0}
    return out


def label_ema() -> None:
    """Name the EMA update in profiles (``torch.optim`` names its own steps)."""
    from torch.optim.swa_utils import AveragedModel
    from torch.profiler import record_function

    update = AveragedModel.update_parameters

    def labelled(self, model):
        with record_function("EMA.update"):
            return update(self, model)

    AveragedModel.update_parameters = labelled


def ceilings() -> tuple[float, float]:
    """(matmul GFLOP/s, copy GB/s) right now, best of a few repeats, in CPU time (like the steps: time
    the process spends descheduled on a loaded machine is not counted)."""
    import torch

    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    best = math.inf
    for _ in range(5):
        t = time.process_time()
        torch.mm(a, b)
        best = min(best, time.process_time() - t)
    gflops = 2 * 1024**3 / best / 1e9
    n = 16 * 1024 * 1024
    x, y, z = torch.randn(n), torch.randn(n), torch.empty(n)
    best = math.inf
    for _ in range(5):
        t = time.process_time()
        torch.add(x, y, out=z)
        best = min(best, time.process_time() - t)
    return gflops, 3 * 4 * n / best / 1e9


def main() -> int:
    import torch

    from bench_train_small import cpu_description, make_trainer
    from effnet import create_model
    from effnet.train.fastpath import choose_training_settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=6, help="timed steps per model (after 2 untimed)")
    p.add_argument("--write", action="store_true", help="append the report to benchmarks/results/train-cpu.md")
    args = p.parse_args()
    torch.set_num_threads(1)
    label_ema()
    fast = choose_training_settings(args.size)
    opts = {k: v for k, v in fast.config_overrides().items() if k != "threads"}
    models = {"torchvision b0, fp32 NCHW": ("torchvision", {}),
              f"effnet b0, fastpath ({', '.join(f'{k}={v}' for k, v in opts.items())})": ("effnet", opts)}
    names = list(models)
    load = [os.getloadavg()[0]]
    steps = {n: make_trainer(kind, o, args.size, args.batch, args.steps + 4) for n, (kind, o) in models.items()}
    from torchvision.models import efficientnet_b0

    work = {names[0]: conv_work(efficientnet_b0(num_classes=4), args.size, args.batch),
            names[1]: conv_work(create_model("efficientnet_b0", num_classes=4), args.size, args.batch)}
    for _ in range(2):
        for n in names:
            next(steps[n])
    times = {n: [] for n in names}
    peaks = []
    for r in range(args.steps):
        peaks.append(ceilings())
        for n in (names if r % 2 == 0 else names[::-1]):
            t = time.process_time()
            next(steps[n])
            times[n].append(time.process_time() - t)
    prof = {n: profile_step(steps[n]) for n in names}
    peaks.append(ceilings())
    load.append(os.getloadavg()[0])
    gflops = max(g for g, _ in peaks)  # the best the CPU showed: a ceiling, not a typical rate
    gbs = max(b for _, b in peaks)

    tv_step = statistics.median(times[names[0]])
    lines = []
    for n in names:
        step = statistics.median(times[n])
        pr = prof[n]
        scale = step / pr["_total"]["s"]  # profiled self times, scaled to the unprofiled step
        lines += [f"**{n}**: {step * 1000:.0f} ms per step (CPU time, median of {args.steps}), "
                  f"{args.batch / step:.1f} img/s, {tv_step / step:.2f}x torchvision NCHW.", "",
                  "| category | ms/step | share | work | achieved | ceiling ms | at ceiling, x faster |",
                  "|---|---|---|---|---|---|---|"]
        bound = 0.0
        for c in CATEGORIES:
            s = pr[c]["s"] * scale
            w = work[n].get(c, {"flops": 0.0, "bytes": 0.0})
            if c in ("1x1 conv", "other conv"):
                ceil = w["flops"] / (gflops * 1e9)
                what = f"{w['flops'] / 1e9:.2f} GFLOP"
                rate = f"{w['flops'] / s / 1e9:.1f} GFLOP/s" if s else "-"
            elif c == "depthwise conv":
                ceil = max(w["flops"] / (gflops * 1e9), w["bytes"] / (gbs * 1e9))
                what = f"{w['flops'] / 1e9:.2f} GFLOP, {w['bytes'] / 1e9:.2f} GB"
                rate = f"{w['bytes'] / s / 1e9:.1f} GB/s" if s else "-"
            elif c in MEMORY_BOUND:
                ceil = pr[c]["bytes"] / (gbs * 1e9)
                what = f"{pr[c]['bytes'] / 1e9:.2f} GB"
                rate = f"{pr[c]['bytes'] / s / 1e9:.1f} GB/s" if s else "-"
            else:
                ceil, what, rate = s, "-", "- (kept as measured)"
            bound += ceil
            lines.append(f"| {c} | {s * 1000:.1f} | {s / step:.0%} | {what} | {rate} | {ceil * 1000:.1f} | "
                         f"{s / ceil if ceil else math.inf:.1f}x |")
        lines += ["", f"Sum of the ceiling times: {bound * 1000:.0f} ms per step, so this model's step could at best "
                  f"run {step / bound:.1f}x faster on this CPU in fp32, {tv_step / bound:.1f}x torchvision's NCHW step.", ""]
    cpu_name, flags = cpu_description()
    header = (f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. B0 training step at {args.size}x{args.size}, "
              f"batch {args.batch}, effnet's Trainer, 1 torch thread. Machine: {cpu_name}, {os.cpu_count()} CPUs, "
              f"flags {' '.join(flags)}; torch {torch.__version__}, Python {platform.python_version()}; "
              f"1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end.\n\n"
              f"Ceilings measured between the steps (best of {len(peaks)} x 5, CPU time): fp32 matmul {gflops:.1f} GFLOP/s, "
              f"copy {gbs:.1f} GB/s (one thread).")
    text = header + "\n\n" + "\n".join(lines)
    print(text)
    if args.write:
        with open(ROOT / "benchmarks" / "results" / "train-cpu.md", "a") as f:
            f.write(f"\n\n## Roofline of the small-image step (`benchmarks/roofline_train_small.py`)\n\n{text}\n"
                    f"Command: `python benchmarks/roofline_train_small.py {' '.join(sys.argv[1:])}`\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
