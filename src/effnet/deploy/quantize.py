"""INT8 static quantisation with ONNX Runtime, and accuracy / speed of the result.

Weights are quantised per output channel (int8), activations per tensor (uint8), in QDQ format;
ONNX Runtime fuses the QuantizeLinear/DequantizeLinear pairs into integer kernels. The first,
high-resolution convolutions (output at stride 4 or finer: EfficientNet's stem and first two
stages) stay in fp32 (:func:`early_convolutions`): on the pretrained EfficientNet-Lite0 at 224 px
they carried half of the INT8 error. Against the fp32 ONNX model on the 56 sample-photo views of
:func:`effnet.deploy.paths.photo_views`, quantising every convolution agreed on top-1 for 42 views
and moved the logits by 0.26 on average (7-bit weights, as on a CPU without VNNI); keeping them in
fp32, 49 views and 0.13, at about 1.5x the fp32 model's speed instead of 1.7x (batch 1, 2 AVX2
cores, medians of 5 interleaved repeats). With 8-bit weights (simulated) the mean change fell from
0.14 to 0.07. The calibration mattered far less: minmax, percentile or entropy ranges, 32 to 128
random crops, or crops of other photographs changed the agreement by at most 4 views and the mean
logit change by under 0.01 (a lower percentile, 99.9 rather than 99.999, was far worse).

Activation ranges are calibrated on images from the training split, passed through the eval
transforms so calibration sees what inference sees; the default calibration takes a high percentile
of each activation's magnitudes rather than its extremes. With every convolution quantised, on ELPV
that kept a weak B0's accuracy where min/max ranges lost 5 points, but a well-trained B0 lost about
4 points with either; a few epochs of quantisation-aware fine-tuning first (``qat_epochs``,
:mod:`effnet.deploy.qat`) brought the change to -1.02..+0.51 points over five runs
(``benchmarks/results/deploy-cpu.md``).
"""
from __future__ import annotations

import contextlib
import copy
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..checks import check_int
from ..fsutil import atomic_path
from .export import export_onnx
from .qat import qat_finetune
from .runtime import ort_session, run_session, time_interleaved


class _Batches:
    """``onnxruntime.quantization.CalibrationDataReader`` over float32 NCHW batches."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self.input_name = input_name
        self._it: Iterator[np.ndarray] = iter(batches)

    def get_next(self):
        batch = next(self._it, None)
        return None if batch is None else {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}


#: Calibration methods: activation ranges from the minimum and maximum seen, or from a percentile
#: of the magnitudes (ignores rare outliers), or by minimising the KL divergence (entropy).
CALIBRATION = ("minmax", "percentile", "entropy")
@contextlib.contextmanager
def _calibration_errors(method: str) -> Iterator[None]:
    try:
        yield
    except ValueError as exc:  # numpy's histogram errors say nothing about calibration
        hint = "; try --calibration minmax" if method != "minmax" else ""
        raise ValueError(f"{method} calibration failed: {exc}{hint}") from None


def cpu_has_vnni() -> bool:
    """Whether this CPU has 8-bit dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX)."""
    import torch

    probes = (getattr(torch.cpu, name, None) for name in ("_is_vnni_supported", "_is_amx_tile_supported"))
    return any(bool(p()) for p in probes if p is not None)


def early_convolutions(graph, max_stride: int) -> list[str]:
    """Names of the ``Conv`` nodes of an ONNX ``graph`` whose output is at stride ``max_stride`` or
    finer: at most ``max_stride`` times smaller per side than the graph's input. Strides are followed
    through the graph (an operator's output keeps its finest input's stride; global pooling ends it)."""
    weights = {t.name for t in graph.initializer}
    stride = {t.name: 1 for t in graph.input if t.name not in weights}
    names = []
    for node in graph.node:  # ONNX graphs are topologically sorted
        known = [stride[t] for t in node.input if t in stride]
        if not known:
            continue
        s = math.inf if node.op_type.startswith("Global") else min(known)
        for a in node.attribute:
            if a.name == "strides" and a.ints:
                s *= max(a.ints)
        for t in node.output:
            stride[t] = s
        if node.op_type == "Conv" and s <= max_stride and node.name:
            names.append(node.name)
    return names


def first_convolutions(graph, count: int) -> list[str]:
    """Names of the first ``count`` ``Conv`` nodes of an ONNX ``graph``, in the graph's (topological) order."""
    return [n.name for n in graph.node if n.op_type == "Conv" and n.name][:max(0, count)]


def quantize_onnx(fp32_path: str | Path, out_path: str | Path, calibration: Iterable[np.ndarray],
                  per_channel: bool = True, method: str = "percentile",
                  op_types: Sequence[str] | None = None, reduce_range: bool | None = None,
                  float_stride: int = 4, keep_fp32: Sequence[str] | None = None) -> Path:
    """Statically quantise an fp32 ONNX model to INT8 (QDQ), calibrating on ``calibration`` batches.

    ``op_types`` limits which operators are quantised (``None``: every one ONNX Runtime can).
    Convolutions whose output is at stride ``float_stride`` or finer (:func:`early_convolutions`)
    stay in fp32; ``0`` quantises them too. ``keep_fp32`` (ONNX node names), when given, replaces
    that rule.
    ``reduce_range`` quantises weights to 7 bits; ``None`` does so where this CPU lacks VNNI: there
    ONNX Runtime's uint8 x int8 kernels add pairs of products in saturating 16-bit lanes, and full-range
    weights overflow them (measured on an AVX2 EPYC: the tiny test network's mean output error
    0.030 with full range, 0.019 with 7-bit weights).
    """
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION:
        raise ValueError(f"calibration method must be one of {', '.join(CALIBRATION)}, got {method!r}")
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method != "minmax":  # histogram calibrators need batches of one shape: feed single images
        calibration = (b[i:i + 1] for b in calibration for i in range(len(b)))
    reader_cls = type("CalibrationBatches", (_Batches, CalibrationDataReader), {})
    out = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # symbolic shape inference and graph clean-up, as ONNX Runtime recommends before quantising
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=False)
        import onnx

        graph = onnx.load(str(pre), load_external_data=False).graph
        name = graph.input[0].name
        with atomic_path(out) as target, _calibration_errors(method):
            quantize_static(
                str(pre), str(target), reader_cls(name, calibration),
                quant_format=QuantFormat.QDQ, per_channel=per_channel,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
                reduce_range=not cpu_has_vnni() if reduce_range is None else reduce_range,
                op_types_to_quantize=list(op_types) if op_types else None,
                nodes_to_exclude=list(keep_fp32) if keep_fp32 is not None else early_convolutions(graph, float_stride),
            )
    return out


def dataset_batches(dataset: Dataset, limit: int | None, batch_size: int = 16) -> Iterator[np.ndarray]:
    """Up to ``limit`` images of ``dataset`` as float32 NCHW arrays."""
    if limit is not None:
        dataset = Subset(dataset, range(min(limit, len(dataset))))
    for x, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0):
        yield x.numpy()


def evaluate_onnx(session, dataset: Dataset, batch_size: int = 32) -> float:
    """Top-1 accuracy of an ONNX Runtime session on ``dataset``."""
    if len(dataset) == 0:
        raise ValueError("the evaluation set is empty")
    hits = n = 0
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0):
        pred = run_session(session, x.numpy())[0].argmax(1)
        hits += int((pred == np.asarray(y)).sum())
        n += len(y)
    return hits / n


def session_throughput(sessions: Sequence, shape: tuple[int, int, int, int], repeats: int = 20,
                       warmup: int = 3) -> list[float]:
    """Images per second of each session on random input of ``shape`` (median time per batch),
    timed in interleaved rounds (:func:`effnet.deploy.runtime.time_interleaved`), so a change in
    machine load affects all sessions alike."""
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    runners = [lambda s=session: run_session(s, x) for session in sessions]
    for run in runners:
        for _ in range(warmup):
            run()
    times, errors = time_interleaved(runners, repeats)
    for error in errors:
        if error is not None:
            raise error
    return [shape[0] / float(np.median(t)) for t in times]


@dataclass(frozen=True)
class QuantizeReport:
    """What quantisation changed: held-out accuracy (fp32 and INT8 in ONNX Runtime) and speed."""

    out: str
    eval_split: str
    eval_images: int
    calib_images: int
    calibration: str
    img_size: int
    fp32_top1: float
    int8_top1: float
    fp32_img_s: float
    int8_img_s: float
    batch_size: int
    repeats: int
    note: str = ""
    qat_epochs: float = 0.0
    qat_lr: float = 0.0

    @property
    def delta_points(self) -> float:
        return 100.0 * (self.int8_top1 - self.fp32_top1)

    @property
    def speedup(self) -> float:
        return self.int8_img_s / self.fp32_img_s

    def to_dict(self) -> dict:
        return {**asdict(self), "delta_points": self.delta_points, "speedup": self.speedup}

    def text(self) -> str:
        return "\n".join([
            f"INT8 model: {self.out}",
            *([f"quantisation-aware fine-tuning first: {self.qat_epochs:g} epochs at learning rate {self.qat_lr:g}"]
              if self.qat_epochs else []),
            f"calibrated ({self.calibration}) on {self.calib_images} training images; accuracy on {self.eval_images} "
            f"{self.eval_split} images at {self.img_size}x{self.img_size}",
            f"  top-1 fp32 (ONNX Runtime) {100 * self.fp32_top1:6.2f}%",
            f"  top-1 INT8 (ONNX Runtime) {100 * self.int8_top1:6.2f}%   change {self.delta_points:+.2f} points",
            f"speed, batch {self.batch_size} at {self.img_size}x{self.img_size}, median of {self.repeats} interleaved runs each:",
            f"  fp32 {self.fp32_img_s:8.1f} img/s   INT8 {self.int8_img_s:8.1f} img/s   speed-up {self.speedup:.2f}x",
        ] + ([f"note: {self.note}"] if self.note else []))


def int8_speed_note(model: nn.Module) -> str:
    """Why an INT8 model of this architecture gains less speed than its convolutions would allow."""
    desc = getattr(model, "desc", None)
    if desc is None:
        return ""
    parts = []
    if desc.activation == "silu":
        parts.append("SiLU (a sigmoid lookup and a product per activation)")
    if any(b.se_ratio > 0 for b in desc.blocks()):
        parts.append("squeeze-excite (pooling, gate and a product per block)")
    if not parts:
        return ""
    return (f"{' and '.join(parts)} run as separate integer operators between the convolutions, which "
            "bounds the speed-up; EfficientNet-Lite (ReLU6, no squeeze-excite) quantises to convolutions alone")


def eval_view(train: Dataset, eval_like: Dataset) -> Dataset:
    """The training images with the eval transform (no augmentation) when the dataset has one."""
    if hasattr(train, "transform") and hasattr(eval_like, "transform"):
        view = copy.copy(train)
        view.transform = eval_like.transform
        return view
    return train


def quantize_model(model: nn.Module, splits, out_path: str | Path, *, calib_images: int = 200,
                   img_size: int | None = None, eval_split: str = "test", eval_limit: int | None = None,
                   batch_size: int = 1, repeats: int = 20, opset: int = 17,
                   method: str | None = None, qat_epochs: float = 0.0,
                   qat_lr: float = 2e-5) -> QuantizeReport:
    """Export ``model`` to fp32 ONNX, quantise it to INT8 at ``out_path`` and compare the two.

    ``splits`` is an :class:`effnet.data.Splits` built at ``img_size``; calibration uses up to
    ``calib_images`` training images, accuracy the whole ``eval_split`` (or ``eval_limit`` images).
    With ``qat_epochs`` the INT8 model is made from a copy fine-tuned that long with INT8 rounding
    simulated (:func:`effnet.deploy.qat.qat_finetune`, on the training images without augmentation);
    the fp32 side of the comparison stays ``model`` itself. ``method`` defaults to ``percentile``
    calibration, or ``minmax`` after QAT (whose simulated ranges are minima and maxima).
    """
    method = method or ("minmax" if qat_epochs else "percentile")
    check_int("calib_images", calib_images, 1)
    if eval_split not in ("val", "test"):
        raise ValueError(f"eval_split must be 'val' or 'test', got {eval_split!r}")
    held_out = getattr(splits, eval_split)
    if eval_limit is not None:
        held_out = Subset(held_out, range(min(eval_limit, len(held_out))))
    x0, _ = held_out[0]
    size = img_size or int(x0.shape[-1])
    num_classes = getattr(model, "num_classes", None)
    if num_classes is not None and num_classes != splits.num_classes:
        raise ValueError(f"the model has {num_classes} classes but the data has {splits.num_classes}; "
                         "quantise a model fine-tuned on this data")
    out = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", opset=opset, example_size=size)
        calib = eval_view(splits.train, splits.val)
        n_calib = min(calib_images, len(calib))
        source = fp32
        if qat_epochs:
            tuned = qat_finetune(model, calib, epochs=qat_epochs, lr=qat_lr)
            source = export_onnx(tuned, Path(tmp) / "qat.onnx", opset=opset, example_size=size)
        quantize_onnx(source, out, dataset_batches(calib, n_calib), method=method)
        fp32_sess, int8_sess = ort_session(fp32), ort_session(out)
        fp32_acc = evaluate_onnx(fp32_sess, held_out)
        int8_acc = evaluate_onnx(int8_sess, held_out)
        shape = (batch_size, int(x0.shape[0]), size, size)
        fp32_speed, int8_speed = session_throughput([fp32_sess, int8_sess], shape, repeats)
    return QuantizeReport(str(out), eval_split, len(held_out), n_calib, method, size, fp32_acc, int8_acc,
                          fp32_speed, int8_speed, batch_size, repeats, int8_speed_note(model),
                          float(qat_epochs), qat_lr if qat_epochs else 0.0)
