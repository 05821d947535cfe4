"""How close EfficientNet-B0 in ONNX Runtime is to this CPU's limits, fp32 and INT8.

Three measurements in one run, on random weights at batch 1 (224 px unless ``--img-size``):

1. the CPU's dense fp32 matrix-multiply rate (``torch.mm`` of 2048x2048 matrices, the same threads),
   against the rate at which ONNX Runtime runs B0's multiply-adds (effnet's and torchvision's
   exports, interleaved): how much faster an fp32 B0 could possibly be;
2. where ONNX Runtime spends B0's time, by operator type, fp32 and INT8 (its profiler; shares, since
   profiling adds a little to every operator);
3. the cost per element of the integer SiLU (``QLinearSigmoid`` then ``QLinearMul``) against one
   table lookup (``QLinearSigmoid`` alone), on a uint8 tensor of B0's second stage.

    python benchmarks/bench_limits.py [--threads N] [--repeats 50] [--json FILE]
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from effnet import create_model
from effnet.analysis.bench import environment
from effnet.arch import cost
from effnet.deploy.export import export_onnx
from effnet.deploy.quantize import quantize_onnx
from effnet.deploy.runtime import ort_session, run_session, time_interleaved
from effnet.machine import cpu_count


def matmul_gflops(threads: int, n: int = 2048, repeats: int = 20) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def op_shares(path: Path, x: np.ndarray, runs: int) -> dict[str, float]:
    """Fraction of ONNX Runtime's kernel time per operator type (its profiler)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = cpu_count()
    opts.enable_profiling = True
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            run_session(session, x)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
    total = sum(per_op.values())
    return {op: d / total for op, d in per_op.most_common()}


def silu_cost(threads: int, repeats: int) -> dict[str, float]:
    """Nanoseconds per element: integer SiLU as ONNX Runtime runs it, and a single lookup."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    shape = [1, 112, 112, 96]
    inits = [numpy_helper.from_array(np.array(v, dt), n) for n, v, dt in
             [("s", 0.05, np.float32), ("z", 128, np.uint8), ("s2", 0.03, np.float32), ("z2", 10, np.uint8)]]

    def graph(nodes):
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, shape)], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
        m.ir_version = 9
        onnx.checker.check_model(m)
        return m.SerializeToString()

    sig = helper.make_node("QLinearSigmoid", ["x", "s", "z", "s2", "z2"], ["sg"], domain="com.microsoft")
    variants = {
        "QLinearSigmoid + QLinearMul (SiLU)": graph([sig, helper.make_node(
            "QLinearMul", ["x", "s", "z", "sg", "s2", "z2", "s", "z"], ["y"], domain="com.microsoft")]),
        "QLinearSigmoid alone (one lookup)": graph([helper.make_node(
            "QLinearSigmoid", ["x", "s", "z", "s2", "z2"], ["y"], domain="com.microsoft")]),
    }
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    sessions = [ort.InferenceSession(m, opts, providers=["CPUExecutionProvider"]) for m in variants.values()]
    times, _ = time_interleaved([lambda s=s: s.run(None, {"x": x}) for s in sessions], repeats)
    return {name: 1e9 * float(np.median(t)) / x.size for name, t in zip(variants, times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    threads = args.threads or cpu_count()
    size = args.img_size
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    model = create_model("efficientnet_b0").eval()
    macs = cost(model.desc, size).macs
    x = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    out: dict = {"environment": environment(), "threads": threads, "img_size": size, "b0_macs": macs}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ours = export_onnx(model, tmp / "effnet.onnx", example_size=size)
        import torchvision

        tv_path = tmp / "torchvision.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(torchvision.models.efficientnet_b0().eval(), (torch.from_numpy(x),), str(tv_path),
                              dynamo=False, opset_version=17, input_names=["input"], output_names=["logits"])
        int8 = quantize_onnx(ours, tmp / "effnet-int8.onnx",
                             [np.random.default_rng(1).standard_normal((4, 3, size, size), dtype=np.float32)],
                             method="minmax")
        sessions = {"effnet fp32": ort_session(ours, threads), "torchvision fp32": ort_session(tv_path, threads),
                    "effnet int8": ort_session(int8, threads)}
        for s in sessions.values():
            for _ in range(5):
                run_session(s, x)
        times, _ = time_interleaved([lambda s=s: run_session(s, x) for s in sessions.values()], args.repeats)
        img_s = {k: 1.0 / float(np.median(t)) for k, t in zip(sessions, times)}
        peak = matmul_gflops(threads)
        out["matmul_gflops"] = peak
        out["img_s"] = img_s
        out["gflops"] = {k: 2 * macs * v / 1e9 for k, v in img_s.items() if "fp32" in k}
        out["op_shares"] = {"fp32": op_shares(ours, x, args.repeats), "int8": op_shares(int8, x, args.repeats)}
    out["silu_ns_per_element"] = silu_cost(threads, args.repeats)

    print(f"{out['environment']['cpu']}, {threads} threads, B0 at {size}x{size}, batch 1 "
          f"({macs / 1e6:.0f} M multiply-adds)")
    print(f"dense fp32 matmul (torch.mm 2048): {peak:.0f} GFLOP/s")
    for k, v in img_s.items():
        line = f"  {k:17s} {v:6.1f} img/s"
        if k in out["gflops"]:
            g = out["gflops"][k]
            line += f" = {g:5.1f} GFLOP/s, {100 * g / peak:4.1f}% of the matmul rate"
        print(line)
    best_peer = img_s["torchvision fp32"]
    need = 1.2 * best_peer * 2 * macs / 1e9
    print(f"fp32 at 1.2x torchvision's ONNX Runtime model would need {need:.0f} GFLOP/s "
          f"({100 * need / peak:.0f}% of the matmul rate) for the whole network")
    print(f"INT8 / fp32 (effnet, ONNX Runtime): {img_s['effnet int8'] / img_s['effnet fp32']:.2f}x")
    for kind, shares in out["op_shares"].items():
        top = ", ".join(f"{op} {100 * f:.0f}%" for op, f in list(shares.items())[:6])
        print(f"time by operator, {kind}: {top}")
    for name, ns in out["silu_ns_per_element"].items():
        print(f"  {name}: {ns:.2f} ns per element")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
