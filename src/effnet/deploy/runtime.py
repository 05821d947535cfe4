"""The runtime layer: the engines a model runs on and how they are timed.

One :class:`Backend` per engine (PyTorch eager, channels_last, bf16 and compiled; ONNX Runtime;
OpenVINO in fp32 and bf16), each saying whether it can run on this machine and building a
:data:`Runner` (float32 NCHW in, logits out); :data:`BACKENDS` lists them by path name. Below them
the ONNX Runtime session and the OpenVINO compile, tuned for CPU inference; beside them the
interleaved timing every benchmark and the path chooser use. What this CPU has comes from
:mod:`effnet.machine`. Export, quantisation, the choice of a path and its cache sit above, in
:mod:`effnet.deploy`; a new engine is one backend here.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from .. import machine
from ..checks import check_choice, check_int
from ..errors import EffnetError, missing_extra

_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
           "all": "ORT_ENABLE_ALL"}


def ort_session(path: str | Path, threads: int | None = None, optimization: str = "all"):
    """A CPU ``InferenceSession``: intra-op threads = cores, sequential execution, graph
    optimisation ``optimization`` (``all`` enables layout transforms and fusions), denormals as zero."""
    import onnxruntime as ort

    check_choice("optimization", optimization, _LEVELS)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or machine.cpu_count()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[optimization])
    opts.log_severity_level = 3
    # denormal floats are far slower on CPUs and below any meaningful activation; PyTorch paths in
    # effnet.analysis.bench flush them too (torch.set_flush_denormal)
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    p = Path(path)
    if not p.is_file():
        raise OSError(f"ONNX model not found: {p}")
    try:
        return ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for malformed files
        raise ValueError(f"cannot load ONNX model {p}: {str(exc).splitlines()[0]}") from None


def run_session(session, batch: np.ndarray) -> list[np.ndarray]:
    """All outputs of ``session`` for one float32 NCHW batch."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})


def output_names(session) -> Sequence[str]:
    return [o.name for o in session.get_outputs()]


#: Timed calls per visit in interleaved timing: short visits, many rounds. This machine's speed
#: drifts by tens of percent within seconds (a shared host), so each runner must be sampled often.
CALLS_PER_VISIT = 5


#: Pause before each visit: ONNX Runtime's (and OpenMP's) worker threads keep spinning for tens of
#: milliseconds after a run and, on a 2-core machine, slowed the next runner's first calls up to 3x.
SETTLE_S = 0.1


def check_timing_args(batch_sizes: Sequence[int], repeats: int, warmup: int) -> None:
    """Raise ``EffnetError`` unless the batch sizes are positive integers, ``repeats`` >= 1 and ``warmup`` >= 0."""
    for b in batch_sizes:
        check_int("batch size", b, 1)
    check_int("repeats", repeats, 1)
    check_int("warmup", warmup, 0)


def time_interleaved(runners: Sequence[Callable[[], object]], repeats: int, rounds: int | None = None,
                     settle: float = SETTLE_S) -> tuple[list[list[float]], list[BaseException | None]]:
    """``repeats`` timed calls of each runner, taken in ``rounds`` rounds (default: visits of
    :data:`CALLS_PER_VISIT` calls) that visit every runner in turn, so a change in machine load
    affects all alike. Each visit starts with a pause of
    ``settle`` seconds and one untimed call, so the previous runner's threads are idle again.
    A runner that raises is dropped from later rounds; returns the times and each runner's error."""
    if rounds is None:
        rounds = -(-repeats // CALLS_PER_VISIT)
    rounds = max(1, min(rounds, repeats))
    counts = [repeats // rounds + (1 if i < repeats % rounds else 0) for i in range(rounds)]
    times: list[list[float]] = [[] for _ in runners]
    errors: list[BaseException | None] = [None for _ in runners]
    for count in counts:
        for i, run in enumerate(runners):
            if errors[i] is not None:
                continue
            try:
                time.sleep(settle)
                run()
                for _ in range(count):
                    t = time.perf_counter()
                    run()
                    times[i].append(time.perf_counter() - t)
            except Exception as exc:  # reported as the path's note; the other paths go on
                errors[i] = exc
    return times, errors


Runner = Callable[[np.ndarray], np.ndarray]  # float32 NCHW batch -> logits


def import_openvino():
    """The ``openvino`` module, or the error naming the extra that installs it."""
    try:
        import openvino
    except ImportError as exc:
        raise missing_extra(exc, "OpenVINO") or exc
    return openvino


#: Image side of the one compile :func:`openvino_runner` makes up front, to fail early.
PROBE_PIXELS = 64


def openvino_runner(onnx_path: Path, bf16: bool = False) -> Runner:
    """The ONNX model at ``onnx_path`` compiled by OpenVINO's CPU plugin, one static-shape compile per
    input shape (the first call at a new shape compiles).

    ``bf16`` sets OpenVINO's inference precision to bfloat16 (convolutions and matrix products in
    bf16 with fp32 accumulation); without it the precision is fp32 (OpenVINO's own default is bf16 on
    CPUs with AVX512-BF16 or AMX, so it is set either way). Threads: one per usable CPU, as ONNX
    Runtime's sessions; latency mode (one inference at a time, all threads on it)."""
    core = import_openvino().Core()
    config = {"INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32", "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_NUM_THREADS": machine.cpu_count()}
    requests: dict[tuple[int, ...], object] = {}

    def request(shape: tuple[int, ...]):
        if shape not in requests:
            graph = core.read_model(str(onnx_path))
            graph.reshape(list(shape))
            requests[shape] = core.compile_model(graph, "CPU", config).create_infer_request()
        return requests[shape]

    channels = core.read_model(str(onnx_path)).input(0).get_partial_shape()[1].get_length()
    request((1, channels, PROBE_PIXELS, PROBE_PIXELS))  # fails here, not at the first image, if OpenVINO cannot run it

    def run(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        req = request(tuple(x.shape))
        req.infer({0: x})
        return np.array(req.get_output_tensor(0).data, dtype=np.float32, copy=True)
    return run


# ----- backends: one per engine ------------------------------------------------------------------

BF16_UNSUPPORTED = "this CPU has no AVX512-BF16 or AMX: PyTorch would emulate bf16, slower than fp32"
OPENVINO_BF16_UNSUPPORTED = ("this CPU has no AVX512-BF16 or AMX, which OpenVINO's bf16 precision needs "
                             "(the openvino path runs fp32)")


def bf16_supported() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX)."""
    return machine.native_bf16(machine.cpu_flags())


@runtime_checkable
class Backend(Protocol):
    """One way to run a model on this machine.

    ``source`` says what :meth:`build` takes: ``"module"`` (the PyTorch model) or ``"onnx"`` (the
    path of an exported ONNX file). :meth:`unavailable` is ``None`` where the engine can run here,
    else the error that says why not (the extra to install, a CPU without native bf16);
    :meth:`build` returns a :data:`Runner` (float32 NCHW batch in, float32 logits out)."""

    name: str
    source: str

    def unavailable(self) -> EffnetError | None: ...

    def build(self, source: Any) -> Runner: ...


def compiled_model(model, mode: str | None = None):
    """``torch.compile`` (Inductor) of the BatchNorm-folded, channels_last model with frozen weights
    (constants folded into the graph), one static graph per input shape."""
    import torch
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    return torch.compile(model.optimize_for_inference(channels_last=True), mode=mode, dynamic=False)


@dataclass(frozen=True)
class TorchBackend:
    """PyTorch on the CPU: eager, or BatchNorm folded into channels_last convolutions
    (``channels_last``), optionally under bf16 autocast or compiled by Inductor."""

    name: str
    channels_last: bool = False
    bf16: bool = False
    compiled: bool = False
    source: str = "module"

    def unavailable(self) -> EffnetError | None:
        return EffnetError(BF16_UNSUPPORTED) if self.bf16 and not bf16_supported() else None

    def build(self, model) -> Runner:
        import torch

        if self.compiled:
            net = compiled_model(model)
        elif self.channels_last:
            net = model.optimize_for_inference(channels_last=True)
        else:
            net = model
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        bf16 = self.bf16

        def run(x: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).contiguous(memory_format=fmt)
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return net(t).float().numpy()
        return run


@dataclass(frozen=True)
class OnnxRuntimeBackend:
    """ONNX Runtime's CPU provider, all graph optimisations (:func:`ort_session`)."""

    name: str = "onnxruntime"
    source: str = "onnx"

    def unavailable(self) -> EffnetError | None:
        try:
            importlib.import_module("onnxruntime")
        except ImportError as exc:
            return missing_extra(exc, "ONNX Runtime") or EffnetError(str(exc))
        return None

    def build(self, path: str | Path) -> Runner:
        session = ort_session(path)
        return lambda x: run_session(session, x)[0]


@dataclass(frozen=True)
class OpenVINOBackend:
    """OpenVINO's CPU plugin (:func:`openvino_runner`), in fp32 or in bf16 where the CPU has it."""

    name: str = "openvino"
    bf16: bool = False
    source: str = "onnx"

    def unavailable(self) -> EffnetError | None:
        try:
            import_openvino()
        except (ImportError, EffnetError) as exc:
            return exc if isinstance(exc, EffnetError) else EffnetError(str(exc))
        return EffnetError(OPENVINO_BF16_UNSUPPORTED) if self.bf16 and not bf16_supported() else None

    def build(self, path: str | Path) -> Runner:
        return openvino_runner(Path(path), bf16=self.bf16)


#: Every engine this machine may run a model on, by the name of the path that uses it.
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    TorchBackend("eager"), TorchBackend("channels_last", channels_last=True),
    TorchBackend("bf16", channels_last=True, bf16=True), TorchBackend("compile", channels_last=True, compiled=True),
    OnnxRuntimeBackend(), OpenVINOBackend("openvino"), OpenVINOBackend("openvino_bf16", bf16=True))}
