"""Where compiled (torch.compile, Inductor, frozen weights) batch-1 inference spends its time.

    python benchmarks/compile_batch1.py --model efficientnet_b0 --size 224 --mode default --json out.json

For one model (random weights, BatchNorm folded, channels_last) and one compile mode: compile time
per input shape, ``torch._dynamo.explain`` (graphs, graph breaks, guards), interleaved medians of
PyTorch eager, the compiled model and ONNX Runtime fp32 at batch 1 and 8
(``effnet.deploy.runtime.time_interleaved``), and a ``torch.profiler`` profile of batch 1 for the
compiled and the eager model: time inside operators against the wall time of a call, the
heaviest operators, and the layout conversions (copies, reorders) among them.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import effnet
from effnet.deploy.export import export_onnx
from effnet.deploy.paths import onnx_runner
from effnet.deploy.runtime import compiled_model
from effnet.deploy.runtime import time_interleaved
from effnet.machine import cpu_count

LAYOUT_OPS = ("copy_", "contiguous", "clone", "reorder", "to_dense", "to_mkldnn", "_to_copy", "as_strided")


def profile(fn, x, calls: int) -> dict:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    fn(x)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        for _ in range(calls):
            fn(x)
        wall = (time.perf_counter() - t) / calls
    events = prof.key_averages()
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
    ops = [e for e in events if e.key.startswith(("aten::", "mkldnn::", "onednn::", "inductor", "torch_compile",
                                                  "TorchDynamo", "Torch-Compiled"))]
    self_ms = sum(e.self_cpu_time_total for e in events) / 1000 / calls
    layout = [e for e in events if any(k in e.key for k in LAYOUT_OPS)]
    return {
        "wall_ms_per_call": 1000 * wall,
        "profiled_self_ms_per_call": self_ms,
        "op_calls_per_call": sum(e.count for e in ops) / calls,
        # guard evaluation before each compiled call (TorchDynamo's cache lookup)
        "guard_check_ms_per_call": sum(e.cpu_time_total for e in events if "Cache Lookup" in e.key) / 1000 / calls,
        "top": [{"op": e.key, "self_ms_per_call": e.self_cpu_time_total / 1000 / calls, "calls_per_call": e.count / calls}
                for e in top[:12]],
        "layout_ops": [{"op": e.key, "self_ms_per_call": e.self_cpu_time_total / 1000 / calls,
                        "calls_per_call": e.count / calls} for e in layout],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_b0")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--mode", default="default", help="torch.compile mode: default or max-autotune-no-cudagraphs")
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--profile-calls", type=int, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(cpu_count())
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    model = effnet.create_model(args.model).eval()
    fast = model.optimize_for_inference(channels_last=True)
    out: dict = {"model": args.model, "size": args.size, "mode": args.mode, "torch": torch.__version__,
                 "threads": torch.get_num_threads(), "load_before": list(__import__("os").getloadavg())}
    def torch_run(m):
        def run(x):
            with torch.inference_mode():
                return m(x)
        return run

    xs = {b: torch.randn(b, 3, args.size, args.size).contiguous(memory_format=torch.channels_last) for b in (1, 8)}
    explained = torch._dynamo.explain(fast)(xs[1])
    out["explain"] = {"graphs": explained.graph_count, "graph_breaks": explained.graph_break_count,
                      "ops": explained.op_count, "guards": len(explained.out_guards or [])}
    print(f"explain: {out['explain']}", flush=True)
    torch._dynamo.reset()
    compiled = compiled_model(model, None if args.mode == "default" else args.mode)
    out["compile_s"] = {}
    for b, x in xs.items():
        t = time.perf_counter()
        torch_run(compiled)(x)
        out["compile_s"][b] = time.perf_counter() - t
        print(f"compiled batch {b} in {out['compile_s'][b]:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        ort = onnx_runner(export_onnx(model, Path(tmp) / "m.onnx", example_size=args.size))
        out["timing"] = {}
        for b, x in xs.items():
            arr = x.contiguous().numpy()
            runners = {"eager channels_last": lambda x=x: torch_run(fast)(x),
                       "compiled": lambda x=x: torch_run(compiled)(x), "onnxruntime": lambda a=arr: ort(a)}
            times, errors = time_interleaved(list(runners.values()), args.repeats)
            out["timing"][b] = {k: {"median_ms": 1000 * float(np.median(t)), "img_s": b / float(np.median(t)),
                                    "error": str(e) if e else None} for k, t, e in zip(runners, times, errors)}
            print(f"batch {b}: " + ", ".join(f"{k} {v['median_ms']:.2f} ms" for k, v in out["timing"][b].items()),
                  flush=True)
    out["profile_batch1"] = {"compiled": profile(torch_run(compiled), xs[1], args.profile_calls),
                             "eager channels_last": profile(torch_run(fast), xs[1], args.profile_calls)}
    for k, p in out["profile_batch1"].items():
        print(f"profile {k}: wall {p['wall_ms_per_call']:.2f} ms/call, self time {p['profiled_self_ms_per_call']:.2f} ms, "
              f"{p['op_calls_per_call']:.0f} op calls/call, guard checks {p['guard_check_ms_per_call']:.3f} ms; top: "
              + "; ".join(f"{t['op']} {t['self_ms_per_call']:.2f} ms x{t['calls_per_call']:.0f}" for t in p["top"][:6]),
              flush=True)
        print(f"  layout ops: " + "; ".join(f"{t['op']} {t['self_ms_per_call']:.3f} ms x{t['calls_per_call']:.0f}"
                                             for t in p["layout_ops"]), flush=True)
    out["load_after"] = list(__import__("os").getloadavg())
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
