"""Inference benchmarks: our model's eager and optimised paths against torchvision and timm.

Every path runs the same input (random, float32, NCHW). For each model and batch size all paths
are set up first (export, compilation, ``warmup`` untimed batches); then the ``repeats`` timed
batches of every path are taken in interleaved rounds: each round runs every path 5 times;
switching paths pauses 0.1 s and runs one untimed batch, because the previous path's worker threads
(ONNX Runtime's and OpenMP's spin for tens of milliseconds after a run) still compete for the cores.
A change in machine load during the run so affects all paths alike, and the ratios between rows
are what the benchmark is for. Latency is wall time per batch, throughput is images divided by the
total timed wall time, and peak memory is the largest resident-set size sampled every 5 ms while
the path is set up and warmed up, above the process's resident size just before (so it includes
export and compilation buffers and whatever the allocator keeps).
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import tempfile
import threading
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .. import machine
from ..deploy.export import export_onnx
from ..deploy.loading import load_model_arg
from ..deploy.names import PATHS, PEERS
from ..deploy.openvino_int8 import quantize_openvino
from ..deploy.peers import export_peer_onnx, peer_model
from ..deploy.quantize import first_convolutions, quantize_onnx
from ..deploy.runtime import BACKENDS, check_timing_args, openvino_runner, ort_session, run_session, time_interleaved

PEER_PATHS = ("eager", "onnxruntime")
PATH_LABELS = {
    "eager": "PyTorch eager",
    "channels_last": "PyTorch eager, BN folded, channels_last",
    "bf16": "PyTorch eager, BN folded, channels_last, bf16 autocast (CPUs with AVX512-BF16 or AMX only)",
    "compile": "torch.compile (inductor), BN folded",
    "onnxruntime": "ONNX Runtime fp32, graph optimisation ALL",
    "int8": "ONNX Runtime INT8 (static QDQ, per-channel, the stem fp32; min/max calibrated on random inputs: speed only)",
    "openvino_int8": "OpenVINO INT8 by NNCF (the stem fp32; calibrated on random inputs: speed only)",
}


@dataclass
class BenchResult:
    model: str
    impl: str  # "effnet", "torchvision" or "timm"
    path: str
    batch_size: int
    img_size: int
    throughput: float | None = None  # images per second
    p50_ms: float | None = None
    p95_ms: float | None = None
    peak_mem_mib: float | None = None
    note: str = ""
    vs_best_peer: float | None = None
    vs_onnxruntime: float | None = None  # throughput / our own ONNX Runtime fp32 row's

    @property
    def ok(self) -> bool:
        return self.throughput is not None


# ----- measurement ---------------------------------------------------------------------------

def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Largest resident-set size seen while the block runs, above the size at entry (Linux)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak_mib: float | None = None
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        if not os.path.exists("/proc/self/statm"):
            return self
        self._base = self._peak = _rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if hasattr(self, "_thread"):
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, _rss_bytes())
            self.peak_mib = (self._peak - self._base) / 2**20


# ----- paths ---------------------------------------------------------------------------------

def _torch_runner(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def run():
        with torch.inference_mode():
            return model(x)
    return run


def _ort_runner(path: Path, x: torch.Tensor) -> Callable[[], object]:
    session = ort_session(path)
    arr = x.numpy()
    return lambda: run_session(session, arr)


#: Convolutions kept fp32 by the speed-only INT8 rows (``effnet bench --choose`` measures how many a
#: trained model needs).
SPEED_FP32_LAYERS = 1


def _ours(model: nn.Module, path: str, x: torch.Tensor, tmp: Path) -> Callable[[], object]:
    backend = BACKENDS.get(path)
    if backend is not None:  # one engine, as `effnet predict --path` runs it
        error = backend.unavailable()
        if error is not None:
            raise error
        if backend.source == "module":
            run, arr = backend.build(model), x.numpy()
            run(arr)  # build now (a compile included), so a failure is reported as this path's note
            return lambda: run(arr)
    fp32 = tmp / "effnet-fp32.onnx"
    if not fp32.exists():
        export_onnx(model, fp32, example_size=x.shape[-1])
    if backend is not None:
        run, arr = backend.build(fp32), x.numpy()
        return lambda: run(arr)
    if path in ("int8", "openvino_int8"):
        import onnx

        # speed only: the stem in fp32 (what `effnet bench --choose` measured it needs on the pretrained
        # Lite0), min/max ranges from random inputs (histogram calibration needs real activations;
        # random weights give near-zero ones)
        keep = first_convolutions(onnx.load(str(fp32), load_external_data=False).graph, SPEED_FP32_LAYERS)
        gen = np.random.default_rng(0)
        calib = [gen.standard_normal((4, *x.shape[1:]), dtype=np.float32) for _ in range(2)]
        if path == "int8":
            int8 = tmp / "effnet-int8.onnx"
            if not int8.exists():
                quantize_onnx(fp32, int8, calib, method="minmax", keep_fp32=keep)
            return _ort_runner(int8, x)
        ir = tmp / "effnet-openvino-int8.xml"
        if not ir.exists():
            quantize_openvino(fp32, ir, np.concatenate(calib), keep)
        run, arr = openvino_runner(ir), x.numpy()
        return lambda: run(arr)
    raise ValueError(f"unknown path {path!r}; choose from {', '.join(PATHS)}")


def _peer(model: nn.Module, impl: str, path: str, x: torch.Tensor, tmp: Path) -> Callable[[], object]:
    if path == "eager":
        return _torch_runner(model, x)
    onnx_path = tmp / f"{impl}-fp32.onnx"
    if not onnx_path.exists():
        export_peer_onnx(model, onnx_path, x)
    return _ort_runner(onnx_path, x)


def _skip_note(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return f"skipped: {lines[-1].strip()[:200]}"


def _prepare(result: BenchResult, setup: Callable[[], Callable[[], object]], warmup: int) -> Callable[[], object] | None:
    """Set the path up and warm it up, recording its peak memory; ``None`` (and a note) if it cannot run."""
    try:
        with PeakRSS() as mem:
            run = setup()
            for _ in range(max(1, warmup)):
                run()
    except Exception as exc:  # a path that cannot run on this machine is reported, not fatal
        result.note = _skip_note(exc)
        return None
    result.peak_mem_mib = mem.peak_mib
    return run


def _measure_all(entries: Sequence[tuple[BenchResult, Callable[[], object]]], repeats: int) -> None:
    """Time the prepared paths of one setting in interleaved rounds and fill in their results."""
    all_times, errors = time_interleaved([run for _, run in entries], repeats)
    for (result, _), times, error in zip(entries, all_times, errors):
        if error is not None:
            result.note = _skip_note(error)
            result.peak_mem_mib = None
            continue
        result.throughput = result.batch_size * len(times) / sum(times)
        result.p50_ms = 1000 * float(np.percentile(times, 50))
        result.p95_ms = 1000 * float(np.percentile(times, 95))


def run_bench(models: Sequence[str], batch_sizes: Sequence[int] = (1, 32), img_size: int | None = None,
              paths: Sequence[str] = PATHS, peers: Sequence[str] = PEERS, repeats: int = 20, warmup: int = 3,
              threads: int | None = None, progress: Callable[[str], None] | None = None) -> list[BenchResult]:
    """Benchmark every model x batch size x path (ours) and x peer path (peers)."""
    for p in paths:
        if p not in PATHS:
            raise ValueError(f"unknown path {p!r}; choose from {', '.join(PATHS)}")
    for p in peers:
        if p not in PEERS:
            raise ValueError(f"unknown peer {p!r}; choose from {', '.join(PEERS)}")
    check_timing_args(batch_sizes, repeats, warmup)
    say = progress or (lambda _msg: None)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads or machine.cpu_count())
    # Random weights drive activations into denormal floats, which CPUs process far more slowly than
    # trained weights would; flush them for every path (ONNX Runtime sessions do the same).
    torch.set_flush_denormal(True)
    try:
        return _run(models, batch_sizes, img_size, paths, peers, repeats, warmup, say)
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads_before)


def _run(models, batch_sizes, img_size, paths, peers, repeats, warmup, say) -> list[BenchResult]:
    results: list[BenchResult] = []
    for spec in models:
        model = load_model_arg(spec)
        name = model.desc.name
        size = img_size or model.preprocessing.resolution
        peer_models = {impl: peer_model(impl, name) for impl in peers}
        with tempfile.TemporaryDirectory() as tmpdir:  # exports are made once per model, any batch
            tmp = Path(tmpdir)
            for batch in batch_sizes:
                x = torch.randn(batch, model.in_chans, size, size, generator=torch.Generator().manual_seed(0))
                ready: list[tuple[BenchResult, Callable[[], object]]] = []
                for path in paths:
                    say(f"{name} batch {batch} {size}px: preparing effnet {path}")
                    r = BenchResult(name, "effnet", path, batch, size)
                    results.append(r)
                    run = _prepare(r, lambda: _ours(model, path, x, tmp), warmup)
                    if run is not None:
                        ready.append((r, run))
                for impl, peer in peer_models.items():
                    for path in PEER_PATHS:
                        r = BenchResult(name, impl, path, batch, size)
                        results.append(r)
                        if isinstance(peer, str):
                            r.note = f"skipped: {peer}"
                            continue
                        say(f"{name} batch {batch} {size}px: preparing {impl} {path}")
                        run = _prepare(r, lambda: _peer(peer, impl, path, x, tmp), warmup)
                        if run is not None:
                            ready.append((r, run))
                say(f"{name} batch {batch} {size}px: timing {len(ready)} paths, interleaved")
                _measure_all(ready, repeats)
                del ready  # free this setting's sessions and compiled models before the next
    _add_ratios(results)
    return results


def fastest_paths(results: Sequence[BenchResult]) -> list[BenchResult]:
    """Our fastest measured path for each model, batch size and image size, in first-seen order."""
    best: dict[tuple[str, int, int], BenchResult] = {}
    for r in results:
        if r.impl == "effnet" and r.ok:
            key = (r.model, r.batch_size, r.img_size)
            if key not in best or r.throughput > best[key].throughput:
                best[key] = r
    return list(best.values())


def _add_ratios(results: list[BenchResult]) -> None:
    best: dict[tuple[str, int, int], float] = {}
    for r in results:
        if r.impl != "effnet" and r.ok:
            key = (r.model, r.batch_size, r.img_size)
            best[key] = max(best.get(key, 0.0), r.throughput)
    ours = {(r.model, r.batch_size, r.img_size): r.throughput for r in results
            if r.impl == "effnet" and r.path == "onnxruntime" and r.ok}
    for r in results:
        key = (r.model, r.batch_size, r.img_size)
        peer = best.get(key)
        r.vs_best_peer = r.throughput / peer if r.ok and peer else None
        r.vs_onnxruntime = r.throughput / ours[key] if r.ok and r.impl == "effnet" and key in ours else None


# ----- reporting -----------------------------------------------------------------------------

def environment() -> dict:
    """Machine, versions and date for a benchmark record."""
    cpu = machine.cpu_model()
    import onnxruntime

    versions = {"python": platform.python_version(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}
    for mod in ("torchvision", "timm"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": machine.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(), "versions": versions,
    }


def _f(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def bench_table(results: Sequence[BenchResult], repeats: int | None = None) -> str:
    """A fixed-width table: throughput, latency percentiles, peak memory, ratio to the best peer."""
    head = ("model", "impl", "path", "batch", "px", "img/s", "p50 ms", "p95 ms", "peak MiB", "vs ORT fp32", "vs best peer")
    rows = [head]
    notes = []
    for r in results:
        if r.ok:
            rows.append((r.model, r.impl, r.path, str(r.batch_size), str(r.img_size), _f(r.throughput, ".1f"),
                         _f(r.p50_ms, ".2f"), _f(r.p95_ms, ".2f"), _f(r.peak_mem_mib, ".0f"),
                         _f(r.vs_onnxruntime, ".2f", "x"), _f(r.vs_best_peer, ".2f", "x")))
        else:
            rows.append((r.model, r.impl, r.path, str(r.batch_size), str(r.img_size), "-", "-", "-", "-", "-", "-"))
            notes.append(f"{r.model} {r.impl} {r.path} batch {r.batch_size}: {r.note}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(v.rjust(w) if i >= 3 else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    how = (f"CPU inference, random float32 input; {repeats} timed batches per row, interleaved with the "
           "other rows of its setting; " if repeats else "CPU inference, random float32 input; ")
    lines.append(how + "img/s = images / total timed wall time; p50/p95 = per-batch latency; "
                 "peak MiB = resident memory above the start of the row; vs ORT fp32 = img/s / our ONNX Runtime fp32 "
                 "model's; vs best peer = img/s / best peer img/s.")
    lines += [f"note: {n}" for n in notes]
    for r in fastest_paths(results):
        ratio = f", {r.vs_best_peer:.2f}x the best peer" if r.vs_best_peer else ""
        lines.append(f"fastest: {r.model} batch {r.batch_size} {r.img_size}px: {r.path} ({r.throughput:.1f} img/s{ratio})")
    return "\n".join(lines)


def results_json(results: Sequence[BenchResult], settings: dict) -> dict:
    return {"kind": "effnet.bench", "environment": environment(), "settings": settings,
            "paths": {p: PATH_LABELS[p] for p in PATHS}, "results": [asdict(r) for r in results]}
