"""GPU training and inference throughput: effnet's B0 against torchvision's and timm's, in one run.

One script for a short lease of a GPU machine. In order, each part writing its results before the
next starts (a part that fails is recorded as failed, the rest still run):

1. **Correctness on the GPU.** torchvision's B0 with random weights is loaded into effnet's B0
   through effnet's own checkpoint conversion; both run the same input in fp32 (TF32 off) and under
   bf16/fp16 autocast. Reported: relative error ||ours - theirs|| / ||theirs|| and ours on the GPU
   against ours on the CPU.
2. **Inference**, batch ``--infer-batch`` (and batch 1) at ``--size`` px, ``torch.inference_mode``:
   each library in fp32 NCHW, fp32 channels_last, bf16 and fp16 autocast with channels_last; ours
   also BatchNorm-folded (``optimize_for_inference``) under bf16.
3. **Training step**, batch ``--train-batch``: forward, cross-entropy, backward, SGD with momentum,
   the same plain loop for every library, fp32 NCHW / fp32 channels_last / bf16 channels_last / fp16
   channels_last (with a gradient scaler).
4. **effnet's Trainer** (the recipe's loop: RMSProp-TF, EMA, label smoothing, its data loader from
   in-memory images, the settings ``choose_training_settings`` picks for CUDA) against the plain
   loop's same settings: what the loop itself costs.
5. ``torch.compile`` of ours (inference bf16 channels_last, and the training step), timed after the
   eager numbers are safe on disk.

Timing: CUDA events around ``--iters`` batches after warm-up; rounds interleave every configuration
of a part in an order rotated from round to round; a configuration's time is the median over
``--rounds`` rounds. Peak memory is ``torch.cuda.max_memory_allocated`` over one warm batch.
Inputs are random normal images (never zeros); weights are random.

    PYTHONPATH=src python3 benchmarks/bench_gpu.py --out DIR            # on the GPU machine
    PYTHONPATH=src python3 benchmarks/bench_gpu.py --device cpu --size 32 --infer-batch 4 \\
        --train-batch 4 --rounds 1 --iters 1 --no-compile --out /tmp/g  # a smoke run anywhere
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

LIBRARIES = ("effnet", "torchvision", "timm")
# (name, autocast dtype or None, channels_last)
SETTINGS = (("fp32", None, False), ("fp32 channels_last", None, True),
            ("bf16 channels_last", torch.bfloat16, True), ("fp16 channels_last", torch.float16, True))


def build(library: str) -> nn.Module | None:
    """B0 with random weights from ``library`` (None if it is not installed)."""
    torch.manual_seed(0)
    if library == "effnet":
        from effnet import create_model

        return create_model("efficientnet_b0", num_classes=1000)
    if library == "torchvision":
        from torchvision.models import efficientnet_b0

        return efficientnet_b0(num_classes=1000)
    try:
        import timm
    except ImportError:
        return None
    return timm.create_model("efficientnet_b0", pretrained=False)


class Clock:
    """Elapsed seconds of a callable run ``iters`` times: CUDA events on the GPU, else a host clock."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def time(self, fn: Callable[[], object], iters: int) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000 / iters
        begin = time.perf_counter()
        for _ in range(iters):
            fn()
        return (time.perf_counter() - begin) / iters

    def peak_mib(self, fn: Callable[[], object]) -> float | None:
        if not self.cuda:
            fn()
            return None
        self.sync()
        torch.cuda.reset_peak_memory_stats()
        fn()
        self.sync()
        return torch.cuda.max_memory_allocated() / 2**20


def interleaved(configs: dict[str, Callable[[], object]], batch: dict[str, int], clock: Clock, rounds: int,
                iters: int, warmup: int, log: Callable[[str], None]) -> dict[str, dict]:
    """Median seconds per call of each configuration over rotated rounds, with its peak memory."""
    results: dict[str, dict] = {}
    live: dict[str, Callable[[], object]] = {}
    for name, fn in configs.items():
        try:
            for _ in range(warmup):
                fn()
            results[name] = {"peak_mib": clock.peak_mib(fn), "times_s": []}
            live[name] = fn
        except Exception as exc:  # one configuration failing must not lose the others
            results[name] = {"error": traceback.format_exception_only(type(exc), exc)[-1].strip()[:300]}
            log(f"  {name}: failed: {results[name]['error']}")
    names = list(live)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for name in order:
            results[name]["times_s"].append(clock.time(live[name], iters))
    for name in names:
        res = results[name]
        med = statistics.median(res["times_s"])
        res.update(median_s=med, images_per_s=batch[name] / med, batch=batch[name],
                   spread=(max(res["times_s"]) - min(res["times_s"])) / med)
    return results


def correctness(device: torch.device, size: int) -> dict:
    from effnet import create_model
    from torchvision.models import efficientnet_b0

    torch.manual_seed(1)
    theirs = efficientnet_b0(num_classes=1000).eval()
    with torch.no_grad():  # random BatchNorm statistics, so the check is not blind to them
        for m in theirs.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "torchvision_b0.pth"
        torch.save(theirs.state_dict(), path)
        ours = create_model("efficientnet_b0", pretrained=str(path)).eval()
    x = torch.randn(8, 3, size, size)
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.inference_mode():
            cpu_ours = ours(x)
            ours_d, theirs_d, xd = ours.to(device), theirs.to(device), x.to(device)
            out = {"fp32 ours vs torchvision (same weights, same device)": rel(ours_d(xd), theirs_d(xd)),
                   "fp32 ours on the device vs ours on the CPU": rel(ours_d(xd).cpu(), cpu_ours)}
            if device.type == "cuda":
                for label, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
                    with torch.autocast("cuda", dtype=dtype):
                        a, b = ours_d(xd).float(), theirs_d(xd).float()
                    out[f"{label} autocast ours vs torchvision"] = rel(a, b)
                    out[f"{label} autocast ours vs ours fp32"] = rel(a, ours_d(xd))
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    return out


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm())


def inference_configs(models: dict[str, nn.Module], device: torch.device, size: int, batch: int):
    configs, batches = {}, {}
    x = torch.randn(batch, 3, size, size, device=device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    for lib, model in models.items():
        plain = model.to(device).eval()
        cl = build(lib).to(device).eval().to(memory_format=torch.channels_last)
        for setting, dtype, channels_last in SETTINGS:
            if dtype is not None and device.type != "cuda":
                continue
            net, inp = (cl, x_cl) if channels_last else (plain, x)
            configs[f"{lib}, {setting}"] = runner(net, inp, dtype, device)
            batches[f"{lib}, {setting}"] = batch
        if lib == "effnet" and device.type == "cuda":
            fast = build(lib).eval().optimize_for_inference(channels_last=True).to(device)
            configs["effnet, BN folded, bf16 channels_last"] = runner(fast, x_cl, torch.bfloat16, device)
            batches["effnet, BN folded, bf16 channels_last"] = batch
    return configs, batches


def runner(net: nn.Module, x: torch.Tensor, dtype: torch.dtype | None, device: torch.device) -> Callable[[], object]:
    def run() -> object:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32,
                                                    enabled=dtype is not None):
            return net(x)
    return run


def train_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None,
               device: torch.device) -> Callable[[], object]:
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    loss_fn = nn.CrossEntropyLoss()
    net.train()

    def step() -> object:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = net(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss
    return step


def training_configs(device: torch.device, size: int, batch: int):
    configs, batches = {}, {}
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    for lib in LIBRARIES:
        for setting, dtype, channels_last in SETTINGS:
            if dtype is not None and device.type != "cuda":
                continue
            model = build(lib)
            if model is None:
                break
            model = model.to(device)
            inp = x
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
                inp = x.contiguous(memory_format=torch.channels_last)
            configs[f"{lib}, {setting}"] = train_step(model, inp, y, dtype, device)
            batches[f"{lib}, {setting}"] = batch
    return configs, batches


def scan(device: torch.device, size: int, batch: int, clock: Clock, rounds: int, iters: int, warmup: int,
         log: Callable[[str], None]) -> dict:
    """Ours, training fp32 against bf16 (channels_last) at the batch and twice it: where autocast pays."""
    configs, batches = {}, {}
    for b in (batch, 2 * batch):
        x = torch.randn(b, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (b,), device=device)
        for label, dtype in (("fp32", None), ("bf16", torch.bfloat16 if device.type == "cuda" else None)):
            model = build("effnet").to(device).to(memory_format=torch.channels_last)
            configs[f"effnet, {label} channels_last, batch {b}"] = train_step(model, x, y, dtype, device)
            batches[f"effnet, {label} channels_last, batch {b}"] = b
    return interleaved(configs, batches, clock, rounds, iters, warmup, log)


def trainer_vs_loop(device: torch.device, size: int, batch: int, steps: int, warmup: int) -> dict:
    """effnet's Trainer at the CUDA settings it picks, against the plain loop at the same settings."""
    from torch.utils.data import Dataset

    from effnet.train import TrainConfig
    from effnet.train.fastpath import choose_training_settings
    from effnet.train.runtime import autocast_dtype
    from effnet.train.trainer import Trainer

    fast = choose_training_settings(size, device.type)

    class Images(Dataset):
        def __init__(self, n: int) -> None:  # n items drawn from 256 distinct random images
            g = torch.Generator().manual_seed(0)
            self.n = n
            self.x = torch.randn(256, 3, size, size, generator=g)
            self.y = torch.randint(0, 1000, (256,), generator=g).tolist()

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int):
            return self.x[i % 256], self.y[i % 256]

    n_steps = steps + warmup
    clock = Clock(device)

    def images_per_s(ema: bool) -> float:
        cfg = TrainConfig(batch_size=batch, epochs=1, warmup_epochs=0, channels_last=fast.channels_last,
                          amp=fast.amp, device=device.type, workers=4 if device.type == "cuda" else 0, ema=ema)
        trainer = Trainer(cfg, build("effnet"), Images(batch * n_steps), device=device)
        start = time.perf_counter()
        for step in trainer.train_epoch():  # no wait per step: the loop's own reads are what is timed
            if step == warmup:
                clock.sync()
                start = time.perf_counter()
            if step >= n_steps:
                break
        clock.sync()
        return batch * (n_steps - warmup) / (time.perf_counter() - start)

    trainer_ips, trainer_no_ema_ips = images_per_s(True), images_per_s(False)
    dtype = autocast_dtype(fast.amp, device)
    model = build("effnet").to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    if fast.channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    step_fn = train_step(model, x, torch.randint(0, 1000, (batch,), device=device), dtype, device)
    for _ in range(warmup):
        step_fn()
    loop_s = clock.time(step_fn, steps)
    return {"settings": {"amp": fast.amp, "channels_last": fast.channels_last, "reasons": list(fast.reasons)},
            "trainer_images_per_s": trainer_ips, "trainer_no_ema_images_per_s": trainer_no_ema_ips,
            "plain_loop_images_per_s": batch / loop_s, "trainer_over_loop": trainer_ips * loop_s / batch,
            "steps_timed": steps, "batch": batch}


def compiled(device: torch.device, size: int, infer_batch: int, train_batch: int, clock: Clock, rounds: int,
             iters: int, warmup: int, log: Callable[[str], None]) -> dict:
    """Ours under torch.compile against ours eager, bf16 channels_last (compile time reported)."""
    dtype = torch.bfloat16 if device.type == "cuda" else None
    x = torch.randn(infer_batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    eager = build("effnet").to(device).eval().to(memory_format=torch.channels_last)
    comp = torch.compile(build("effnet").to(device).eval().to(memory_format=torch.channels_last))
    start = time.perf_counter()
    runner(comp, x, dtype, device)()
    clock.sync()
    infer_compile_s = time.perf_counter() - start
    log(f"  compiled inference in {infer_compile_s:.0f} s")
    infer = interleaved({"effnet eager": runner(eager, x, dtype, device), "effnet compiled": runner(comp, x, dtype, device)},
                        {"effnet eager": infer_batch, "effnet compiled": infer_batch}, clock, rounds, iters, warmup, log)
    xt = torch.randn(train_batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    yt = torch.randint(0, 1000, (train_batch,), device=device)
    eager_t = build("effnet").to(device).to(memory_format=torch.channels_last)
    comp_t = torch.compile(build("effnet").to(device).to(memory_format=torch.channels_last))
    step_c = train_step(comp_t, xt, yt, dtype, device)
    start = time.perf_counter()
    step_c()
    clock.sync()
    train_compile_s = time.perf_counter() - start
    log(f"  compiled the training step in {train_compile_s:.0f} s")
    train = interleaved({"effnet eager": train_step(eager_t, xt, yt, dtype, device), "effnet compiled": step_c},
                        {"effnet eager": train_batch, "effnet compiled": train_batch}, clock, rounds, iters, warmup, log)
    return {"inference": infer, "training": train, "inference_compile_s": infer_compile_s,
            "training_compile_s": train_compile_s}


def environment(device: torch.device) -> dict:
    from effnet.machine import cpu_model

    env = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_model(),
           "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
           "device": device.type}
    import torchvision

    env["torchvision"] = torchvision.__version__
    try:
        import timm

        env["timm"] = timm.__version__
    except ImportError:
        env["timm"] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   multiprocessors=props.multi_processor_count, cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), cudnn_benchmark=torch.backends.cudnn.benchmark)
    return env


def table(results: dict[str, dict], baseline: str) -> list[str]:
    base = results.get(baseline, {}).get("images_per_s")
    lines = [f"| configuration | batch | img/s | rounds spread | peak MiB | vs {baseline} |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | | failed: {r['error'][:80]} | | | |")
            continue
        peak = f"{r['peak_mib']:.0f}" if r.get("peak_mib") is not None else "-"
        ratio = f"{r['images_per_s'] / base:.2f}x" if base else "-"
        lines.append(f"| {name} | {r['batch']} | {r['images_per_s']:.0f} | {r['spread'] * 100:.1f}% | {peak} | {ratio} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke run)")
    parser.add_argument("--size", type=int, default=224, help="image size in pixels (default 224)")
    parser.add_argument("--infer-batch", type=int, default=256, help="inference batch (default 256)")
    parser.add_argument("--train-batch", type=int, default=128, help="training batch (default 128)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per part (default 7)")
    parser.add_argument("--iters", type=int, default=10, help="batches timed per round (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches per configuration (default 3)")
    parser.add_argument("--trainer-steps", type=int, default=30, help="timed steps of effnet's Trainer (default 30)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile part")
    parser.add_argument("--parts", default="correctness,inference,training,trainer,compile",
                        help="comma-separated parts to run (also: scan, training at two batches; default: %(default)s)")
    parser.add_argument("--stem", default="gpu-bench", help="name of the written .json and .md (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu-bench.json and gpu-bench.md")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device here (use --device cpu for a smoke run)", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    args.out.mkdir(parents=True, exist_ok=True)
    clock = Clock(device)

    def log(msg: str) -> None:
        print(msg, flush=True)

    report: dict = {"environment": environment(device), "settings": {k: str(v) for k, v in vars(args).items()}}

    def save() -> None:
        (args.out / f"{args.stem}.json").write_text(json.dumps(report, indent=1))

    parts = set(args.parts.split(","))
    if args.no_compile:
        parts.discard("compile")

    def part(name: str, fn: Callable[[], object]) -> None:
        if name not in parts:
            return
        log(f"{name} ...")
        begin = time.perf_counter()
        try:
            report[name] = fn()
        except Exception as exc:
            report[name] = {"error": traceback.format_exc()[-1500:]}
            log(f"  failed: {traceback.format_exception_only(type(exc), exc)[-1].strip()}")
        report.setdefault("part_seconds", {})[name] = round(time.perf_counter() - begin, 1)
        save()

    log(json.dumps(report["environment"]))
    part("correctness", lambda: correctness(device, args.size))
    models = {lib: m for lib in LIBRARIES if (m := build(lib)) is not None} if "inference" in parts else {}

    def inference() -> dict:
        out = {}
        for batch in (args.infer_batch, 1):
            configs, batches = inference_configs(models, device, args.size, batch)
            out[f"batch {batch}"] = interleaved(configs, batches, clock, args.rounds, args.iters, args.warmup, log)
        return out

    part("inference", inference)

    def training() -> dict:
        configs, batches = training_configs(device, args.size, args.train_batch)
        return interleaved(configs, batches, clock, args.rounds, max(1, args.iters // 2), args.warmup, log)

    part("training", training)
    part("trainer", lambda: trainer_vs_loop(device, args.size, args.train_batch, args.trainer_steps, args.warmup))
    part("scan", lambda: scan(device, args.size, args.train_batch, clock, args.rounds, max(1, args.iters // 2),
                              args.warmup, log))
    part("compile", lambda: compiled(device, args.size, args.infer_batch, args.train_batch, clock, args.rounds,
                                         args.iters, args.warmup, log))

    md = [f"# B0 on {report['environment'].get('gpu', args.device)}", "", json.dumps(report["environment"]), ""]
    for key, res in report.get("inference", {}).items():
        if isinstance(res, dict) and "error" not in res:
            md += [f"## Inference, {key}, {args.size} px", ""] + table(res, "torchvision, fp32") + [""]
    if isinstance(report.get("training"), dict) and "error" not in report["training"]:
        md += [f"## Training step, batch {args.train_batch}, {args.size} px", ""]
        md += table(report["training"], "torchvision, fp32") + [""]
    for key in ("correctness", "trainer"):
        md += [f"## {key}", "", "```", json.dumps(report.get(key), indent=1), "```", ""]
    comp = report.get("compile")
    if isinstance(comp, dict) and "error" not in comp:
        for key in ("inference", "training"):
            md += [f"## torch.compile, {key} (bf16 channels_last)", ""] + table(comp[key], "effnet eager") + [""]
        md += [f"compile time: inference {comp['inference_compile_s']:.0f} s, "
               f"training {comp['training_compile_s']:.0f} s", ""]
    (args.out / f"{args.stem}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
