"""The engines a model runs on: ONNX Runtime sessions tuned for CPU inference, OpenVINO's CPU
plugin, and interleaved timing."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import machine
from ..errors import EffnetError, missing_extra

_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
           "all": "ORT_ENABLE_ALL"}


def ort_session(path: str | Path, threads: int | None = None, optimization: str = "all"):
    """A CPU ``InferenceSession``: intra-op threads = cores, sequential execution, graph
    optimisation ``optimization`` (``all`` enables layout transforms and fusions), denormals as zero."""
    import onnxruntime as ort

    if optimization not in _LEVELS:
        raise ValueError(f"optimization must be one of {', '.join(_LEVELS)}, got {optimization!r}")
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
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise EffnetError(f"batch sizes must be positive integers, got {b!r}")
    if repeats < 1 or warmup < 0:
        raise EffnetError("repeats must be >= 1 and warmup >= 0")


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
