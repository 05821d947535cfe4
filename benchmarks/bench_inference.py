"""CPU inference throughput of our EfficientNet-B0 against torchvision's and timm's, in one run.

Every model gets random weights and the same random fp32 input; each is timed eagerly under
``torch.inference_mode()``. The runs are interleaved: each round times every configuration once,
in an order rotated from round to round, so that load from other processes on a shared machine
falls on all of them alike. A configuration's time per batch is the median over rounds (each
round averages ``iters`` batches after warm-up); throughput is batch size / that median.

Configurations:
  ours (default)     effnet.create_model(...).eval(), NCHW
  ours, channels_last   the same model and input in channels_last
  ours, BN folded       BatchNorm folded into the convolutions, NCHW
  ours (fast path)      model.optimize_for_inference(): BN folded and channels_last
  torchvision / timm    each in its default NCHW and in channels_last

Writes ``<out>/inference-cpu.md`` and ``<out>/inference-cpu.json`` (machine, versions, date,
per-configuration statistics, ratios).

    .venv/bin/python benchmarks/bench_inference.py                 # batch 1 and 32 at 224 px
    .venv/bin/python benchmarks/bench_inference.py --threads 1     # one thread per process
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch
from torch.utils.benchmark import Timer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import effnet  # noqa: E402
from effnet.fsutil import atomic_write_text  # noqa: E402

OURS_FAST = "ours (fast path)"
PEERS = ("torchvision", "timm")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    import timm
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "timm": timm.__version__, "effnet": effnet.__version__}


def build_configs(model_name: str) -> dict[str, tuple[torch.nn.Module, bool]]:
    """Name -> (eval-mode module, whether it takes channels_last input)."""
    import timm
    import torchvision

    ours = effnet.create_model(model_name).eval()
    tv = getattr(torchvision.models, model_name)(weights=None).eval()
    tm = timm.create_model(model_name, pretrained=False).eval()
    cl = torch.channels_last
    return {
        "ours (default)": (ours, False),
        "ours, channels_last": (_copy(ours).to(memory_format=cl), True),
        "ours, BN folded": (ours.optimize_for_inference(channels_last=False), False),
        OURS_FAST: (ours.optimize_for_inference(), True),
        "torchvision": (tv, False),
        "torchvision, channels_last": (_copy(tv).to(memory_format=cl), True),
        "timm": (tm, False),
        "timm, channels_last": (_copy(tm).to(memory_format=cl), True),
    }


def _copy(module: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(module)


def time_configs(configs, batch: int, img: int, rounds: int, iters: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per batch of each configuration, one entry per round."""
    torch.manual_seed(0)
    x = torch.randn(batch, 3, img, img)
    inputs = {False: x, True: x.contiguous(memory_format=torch.channels_last)}
    names = list(configs)
    # torch.utils.benchmark's Timer runs one configuration at a time; calling its timeit() once per
    # round lets the rounds interleave. Its default of one thread is overridden to the process's.
    timers = {
        name: Timer("model(x)", globals={"model": configs[name][0], "x": inputs[configs[name][1]]},
                    num_threads=torch.get_num_threads(), label=name)
        for name in names
    }
    times: dict[str, list[float]] = {n: [] for n in names}
    with torch.inference_mode():
        for name in names:
            timers[name].timeit(warmup)
        for r in range(rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(timers[name].timeit(iters).mean)
    return times


def output_agreement(model_name: str, img: int) -> float:
    """Largest |difference| between our default and fast outputs, relative to the largest |output|.

    BatchNorm statistics are first made non-trivial (a few train-mode batches) so that folding
    has real work to do.
    """
    model = effnet.create_model(model_name).train()
    torch.manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, img, img) * 2 + 0.5)
    model.eval()
    fast = model.optimize_for_inference()
    x = torch.randn(2, 3, img, img)
    with torch.inference_mode():
        ref, out = model(x), fast(x)
    return float((ref - out).abs().max() / ref.abs().max())


def summarise(times: dict[str, list[float]], batch: int) -> dict[str, dict]:
    out = {}
    for name, ts in times.items():
        s = sorted(ts)
        med = statistics.median(s)
        q1, q3 = s[len(s) // 4], s[(3 * len(s)) // 4]
        out[name] = {"img_per_s": batch / med, "ms_per_batch": med * 1e3, "img_per_s_q1": batch / q3,
                     "img_per_s_q3": batch / q1, "rounds": len(s), "seconds_per_batch": ts}
    fast = out[OURS_FAST]["img_per_s"]
    peer_paths = {n: v["img_per_s"] for n, v in out.items() if n.startswith(PEERS)}
    best_peer = max(peer_paths, key=peer_paths.get)
    ratios = {
        "fast / torchvision": fast / out["torchvision"]["img_per_s"],
        "fast / timm": fast / out["timm"]["img_per_s"],
        f"fast / best peer path ({best_peer})": fast / peer_paths[best_peer],
        "default / torchvision": out["ours (default)"]["img_per_s"] / out["torchvision"]["img_per_s"],
        "default / timm": out["ours (default)"]["img_per_s"] / out["timm"]["img_per_s"],
    }
    return {"configs": out, "ratios": ratios, "best_peer_path": best_peer}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# CPU inference: effnet vs torchvision vs timm (EfficientNet-B0)",
        "",
        f"Measured {report['date']} on {m['cpu']} ({m['cores']} cores visible, {m['threads']} PyTorch "
        f"thread(s)); torch {report['versions']['torch']}, torchvision {report['versions']['torchvision']}, "
        f"timm {report['versions']['timm']}, Python {report['versions']['python']}.",
        f"Eager PyTorch, fp32, random weights and input, {report['img_size']}x{report['img_size']} px, "
        "`torch.inference_mode()`. Each round times every configuration once (rotated order); the "
        f"figure is the median over {report['rounds']} rounds of the mean time per batch ("
        + ", ".join(f"batch {b}: {i} batches per round" for b, i in zip(report["results"], report["iters"]))
        + f"), after {report['warmup']} warm-up batches. Brackets: interquartile range over rounds.",
        "",
        f"Load average (1 min) before / after: {m['load_before']:.1f} / {m['load_after']:.1f} (the 'after' "
        "figure includes this benchmark's own threads). "
        + ("Other work was running when this started, so absolute numbers are noisy and low; "
           "the interleaved rounds keep the comparison between configurations fair."
           if m["load_before"] >= m["cores"] else "No other heavy work was running when this started."),
        "",
        f"Our fast path (`model.optimize_for_inference()`: BatchNorm folded, channels_last) gives outputs "
        f"equal to the default model's within {report['fast_path_max_rel_diff']:.1e} of the largest logit.",
        "",
    ]
    for bs, res in report["results"].items():
        lines += [f"## Batch {bs}", "", "| configuration | img/s | (IQR) | ms / batch |", "|---|---:|---:|---:|"]
        for name, c in res["configs"].items():
            lines.append(f"| {name} | {c['img_per_s']:.1f} | {c['img_per_s_q1']:.1f}-{c['img_per_s_q3']:.1f} "
                         f"| {c['ms_per_batch']:.1f} |")
        lines += ["", "| ratio | value |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f}x |" for k, v in res["ratios"].items()]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="efficientnet_b0")
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--batch-sizes", default="1,32", help="exactly two, comma-separated (default 1,32)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", default="10,1", help="batches per round for each batch size (default 10,1)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: PyTorch's choice)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="directory for the .md and .json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    iters = [int(i) for i in args.iters.split(",")]
    if len(batches) != len(iters):
        ap.error("--batch-sizes and --iters need the same number of entries")

    load_before = os.getloadavg()[0]
    configs = build_configs(args.model)
    results = {}
    for bs, it in zip(batches, iters):
        times = time_configs(configs, bs, args.img_size, args.rounds, it, args.warmup)
        results[str(bs)] = summarise(times, bs)
        for name, c in results[str(bs)]["configs"].items():
            print(f"batch {bs:3d}  {name:28s} {c['img_per_s']:8.1f} img/s  "
                  f"(IQR {c['img_per_s_q1']:.1f}-{c['img_per_s_q3']:.1f})", flush=True)
        for k, v in results[str(bs)]["ratios"].items():
            print(f"batch {bs:3d}  {k:45s} {v:6.2f}x", flush=True)
    report = {
        "model": args.model,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
                    "load_before": load_before, "load_after": os.getloadavg()[0]},
        "versions": versions(),
        "img_size": args.img_size, "rounds": args.rounds, "iters": iters, "warmup": args.warmup,
        "fast_path_max_rel_diff": output_agreement(args.model, args.img_size),
        "results": results,
    }
    out = Path(args.out)
    atomic_write_text(out / "inference-cpu.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / "inference-cpu.md", markdown(report) + "\n")
    print(f"wrote {out / 'inference-cpu.md'} and {out / 'inference-cpu.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
