"""Export to ONNX, TorchScript and OpenVINO IR with dynamic batch, height and width, checked against PyTorch.

Before export BatchNorm is folded into the convolutions
(:meth:`effnet.nn.EfficientNet.optimize_for_inference` without channels_last).
Models with TensorFlow 'same' padding compute their padding from each input's size; each
:class:`effnet.nn.Conv2dSame` exports as one ONNX ``Conv`` with ``auto_pad="SAME_UPPER"``, which
ONNX Runtime pads the same way at any input size (no shape arithmetic or ``Pad`` in the graph).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from ..errors import EffnetError
from ..fsutil import atomic_path
from ..weights.meta import input_size
from .exported import add_onnx_metadata, deployment_metadata
from .runtime import import_openvino, ort_session, run_session

#: Tolerance on the largest difference between exported and PyTorch outputs, relative to the largest
#: output where that exceeds 1 (absolute below): fp32 rounding through a deep network grows with the
#: logits, and a randomly initialised EfficientNetV2 gives logits in the hundreds.
TOLERANCE = 1e-4
DEFAULT_OPSET = 17


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy with BatchNorm folded into the convolutions, NCHW weights."""
    if not hasattr(model, "optimize_for_inference"):
        raise ValueError(f"export takes an effnet model, got {type(model).__name__}")
    return model.optimize_for_inference(channels_last=False)


def prepare_for_export(model: nn.Module) -> nn.Module:
    """An eval-mode copy with BatchNorm folded (NCHW weights)."""
    return fold_batchnorm(model)


def _io_names(model: nn.Module) -> tuple[list[str], dict[str, dict[int, str]]]:
    if getattr(model, "features_only", False):
        outputs = [f"features_{i}" for i in range(len(model.feature_info))]
        axes = {n: {0: "batch", 2: f"height_{i}", 3: f"width_{i}"} for i, n in enumerate(outputs)}
    else:
        outputs = ["logits"]
        axes = {"logits": {0: "batch"}}
    return outputs, {"input": {0: "batch", 2: "height", 3: "width"}, **axes}


def _example(model: nn.Module, size: int | None) -> torch.Tensor:
    res = input_size(model, size)
    return torch.randn(1, getattr(model, "in_chans", 3), res, res)


def export_onnx(model: nn.Module, path: str | Path, opset: int = DEFAULT_OPSET, example_size: int | None = None) -> Path:
    """Write ``model`` (BatchNorm folded) as ONNX with dynamic batch, height and width.

    Uses the TorchScript-based exporter (``dynamo=False``): it needs no extra packages and exports
    B0 in seconds. Input ``input`` (float32 NCHW, normalised as ``model.preprocessing`` says);
    output ``logits`` (or ``features_<i>`` for ``features_only`` models). The file carries the
    model's name, description and preprocessing with class names (:mod:`effnet.deploy.exported`).
    """
    check_int("opset", opset, 11)
    if opset > 21:
        raise EffnetError(f"opset must be at most 21, got {opset!r}")
    ready = prepare_for_export(model)
    outputs, axes = _io_names(ready)
    target = Path(path)
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ready, (_example(ready, example_size),), str(tmp), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=outputs, dynamic_axes=axes, do_constant_folding=True)
        add_onnx_metadata(tmp, deployment_metadata(model))
    return target


def export_openvino(model: nn.Module, path: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model`` (BatchNorm folded) as OpenVINO IR: ``path`` (``.xml``, the graph) and the
    ``.bin`` beside it (fp32 weights), with dynamic batch, height and width.

    The graph is this module's ONNX export converted by ``openvino.convert_model``. Precision is
    chosen when the IR is compiled (OpenVINO runs bf16 by default on CPUs with AVX512-BF16 or AMX;
    ``{'INFERENCE_PRECISION_HINT': 'f32'}`` keeps fp32). Both files are written beside ``path``
    first and renamed into place, the weights before the graph.
    """
    import os
    import shutil
    import tempfile

    target = Path(path)
    if target.suffix != ".xml":
        raise ValueError(f"OpenVINO IR is written as NAME.xml (with NAME.bin beside it); got {target.name}")
    ov = import_openvino()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.stem}.", dir=target.parent))
    try:
        onnx_file = export_onnx(model, staging / "model.onnx", opset=opset)
        graph = ov.convert_model(str(onnx_file))
        for key, value in deployment_metadata(model).items():
            graph.set_rt_info(value, ["effnet", key])
        ov.save_model(graph, str(staging / target.name), compress_to_fp16=False)
        os.replace(staging / target.with_suffix(".bin").name, target.with_suffix(".bin"))
        os.replace(staging / target.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def export_torchscript(model: nn.Module, path: str | Path) -> Path:
    """Write ``model`` (BatchNorm folded) compiled by ``torch.jit.script``: any batch and size."""
    scripted = script_model(model)
    target = Path(path)
    with atomic_path(target) as tmp:
        scripted.save(str(tmp))
    return target


def script_model(model: nn.Module) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of the BatchNorm-folded model (scripting keeps 'same' padding dynamic)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(fold_batchnorm(model))


# ----- verification ------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One comparison of exported and PyTorch outputs."""

    shape: tuple[int, int, int, int]
    max_abs_diff: float
    max_abs_output: float

    @property
    def allowed(self) -> float:
        return TOLERANCE * max(1.0, self.max_abs_output)

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.allowed

    def line(self) -> str:
        n, _, h, w = self.shape
        verdict = "ok" if self.ok else f"FAILED (> {self.allowed:.2g})"
        return (f"  batch {n} at {h}x{w}: max |exported - pytorch| = {self.max_abs_diff:.2e} "
                f"(outputs up to {self.max_abs_output:.3g}) {verdict}")


def check_sizes(resolution: int) -> list[tuple[int, int, int]]:
    """Three (batch, height, width) checks: the model's resolution, 250x333, and a small odd size."""
    small = max(33, resolution // 2 + 1)
    return [(1, resolution, resolution), (2, 250, 333), (3, small, small + 14)]


def _inputs(model: nn.Module, sizes: Sequence[tuple[int, int, int]], seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    chans = getattr(model, "in_chans", 3)
    return [torch.randn(n, chans, h, w, generator=gen) for n, h, w in sizes]


def _as_list(out) -> list[np.ndarray]:
    if isinstance(out, (list, tuple)):
        return [o.detach().numpy() for o in out]
    return [out.detach().numpy()]


def _compare(ref: list[np.ndarray], got: list[np.ndarray], shape) -> Check:
    if len(ref) != len(got) or any(r.shape != g.shape for r, g in zip(ref, got)):
        raise ValueError(f"exported model gives outputs of shapes {[g.shape for g in got]}, "
                         f"PyTorch {[r.shape for r in ref]} for input {tuple(shape)}")
    diff = max(float(np.abs(r - g).max()) for r, g in zip(ref, got))
    mag = max(float(np.abs(r).max()) for r in ref)
    return Check(tuple(shape), diff, mag)


def verify_onnx(model: nn.Module, path: str | Path, sizes: Sequence[tuple[int, int, int]] | None = None,
                seed: int = 0) -> list[Check]:
    """Run the ONNX file in ONNX Runtime (all graph optimisations) and PyTorch on random inputs."""
    model = model.eval()
    sizes = sizes or check_sizes(_example(model, None).shape[-1])
    session = ort_session(path)
    checks = []
    for x in _inputs(model, sizes, seed):
        with torch.inference_mode():
            ref = _as_list(model(x))
        checks.append(_compare(ref, run_session(session, x.numpy()), x.shape))
    return checks


def verify_openvino(model: nn.Module, path: str | Path, sizes: Sequence[tuple[int, int, int]] | None = None,
                    seed: int = 0) -> list[Check]:
    """Compile the IR in OpenVINO (CPU, fp32 precision) and compare it with PyTorch on random inputs."""
    ov = import_openvino()
    model = model.eval()
    sizes = sizes or check_sizes(_example(model, None).shape[-1])
    try:
        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    except RuntimeError as exc:
        raise ValueError(f"cannot load OpenVINO IR {path}: {str(exc).strip().splitlines()[0][:200]}") from None
    checks = []
    for x in _inputs(model, sizes, seed):
        with torch.inference_mode():
            ref = _as_list(model(x))
        out = compiled(x.numpy())
        checks.append(_compare(ref, [np.asarray(out[o]) for o in compiled.outputs], x.shape))
    return checks


def verify_torchscript(model: nn.Module, path: str | Path, sizes: Sequence[tuple[int, int, int]] | None = None,
                       seed: int = 0) -> list[Check]:
    """Load the TorchScript file and compare it with the PyTorch model on random inputs."""
    model = model.eval()
    sizes = sizes or check_sizes(_example(model, None).shape[-1])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = torch.jit.load(str(path))
    except RuntimeError as exc:
        raise ValueError(f"cannot load TorchScript file {path}: {str(exc).splitlines()[0]}") from None
    checks = []
    for x in _inputs(model, sizes, seed):
        with torch.inference_mode():
            checks.append(_compare(_as_list(model(x)), _as_list(loaded(x)), x.shape))
    return checks
