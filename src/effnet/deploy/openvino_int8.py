"""INT8 for OpenVINO through NNCF, OpenVINO's own post-training quantiser.

The fp32 ONNX export is converted to OpenVINO at a static input shape (one image at the model's
resolution) before quantising. Read with dynamic shapes, the ONNX importer leaves the depthwise
weights behind a shape computation (``ShapeOf`` -> ``Reshape``), and OpenVINO's CPU plugin then runs
every depthwise convolution in fp32 with a reorder around it: measured on the pretrained
EfficientNet-Lite0 at 224 px on a 2-core AMX Xeon, 1.65x the fp32 ONNX Runtime model at batch 8
from the dynamic graph, 2.85x from the static one (``benchmarks/openvino_int8_choices.py``,
``benchmarks/results/openvino-int8-choices.json``). The saved model still takes any batch size and
resolution (:func:`effnet.deploy.runtime.openvino_runner` reshapes it per input shape).

NNCF inserts FakeQuantize operators with ranges calibrated on the given images and corrects each
layer's bias for the shift INT8 brings (full bias correction: on that Lite0, every convolution
INT8, top-1 agreement with fp32 on the 56 sample-photo views was 91% against 82% with NNCF's fast
variant, in the same record).
Convolutions named in ``keep_fp32`` (ONNX node names, as
:func:`effnet.deploy.quantize.early_convolutions` gives them) are left in fp32.

NNCF's accuracy-controlled quantisation (``nncf.quantize_with_accuracy_control``) was tried as the
way to pick those layers and is not used: with agreement on 200 augmented photo views as the metric
and a 1-point budget, it ran for 10 minutes on 2 cores, reverted every one of Lite0's INT8 layers and
ended at 0.98x fp32 speed, since one flipped view among 200 is half a point. The ladder of
:func:`effnet.deploy.paths.int8_ladder` measures the same trade in three quantisations.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import missing_extra
from .runtime import import_openvino


def import_nncf():
    """The ``nncf`` module, or :class:`effnet.errors.MissingExtraError` naming the extra that brings it."""
    try:
        import nncf
    except ImportError as exc:
        raise missing_extra(exc, "OpenVINO INT8 (NNCF)") or exc
    return nncf


def quantize_openvino(fp32_onnx: str | Path, out_xml: str | Path, calibration: np.ndarray,
                      keep_fp32: Sequence[str] = (), metadata: dict[str, str] | None = None) -> tuple[Path, int]:
    """Quantise the fp32 ONNX model at ``fp32_onnx`` to an INT8 OpenVINO IR at ``out_xml`` (with its
    ``.bin`` beside it), calibrated on ``calibration`` (float32 NCHW images at the model's resolution).

    ``keep_fp32`` names ONNX ``Conv`` nodes left in fp32; ``metadata`` is written into the IR's
    ``rt_info`` under ``effnet`` (as :func:`effnet.deploy.export.export_openvino` does). Returns the IR's
    path and how many convolutions stayed fp32 (a name that matched nothing is an error: the
    importer's naming changed). NNCF's log lines and progress bars are swallowed: library code prints
    nothing."""
    ov = import_openvino()
    nncf = import_nncf()
    images = np.ascontiguousarray(calibration, dtype=np.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"calibration images must be a non-empty N x C x H x W array, got shape {images.shape}")
    graph = ov.convert_model(str(fp32_onnx), input=[1, *images.shape[1:]])
    # OpenVINO names a convolution with a bias NAME/WithoutBiases and its bias addition NAME
    patterns = [f"^{re.escape(name)}(/WithoutBiases)?$" for name in keep_fp32]
    kept = [op.get_friendly_name() for op in graph.get_ordered_ops()
            if op.get_type_name() in ("Convolution", "GroupConvolution")
            and any(re.match(p, op.get_friendly_name()) for p in patterns)]
    if len(kept) != len(keep_fp32):
        raise ValueError(f"{len(keep_fp32)} convolutions to keep in fp32, but {len(kept)} found in the OpenVINO graph")
    scope = nncf.IgnoredScope(names=kept) if kept else None
    log = logging.getLogger("nncf")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quantized = nncf.quantize(graph, nncf.Dataset([images[i:i + 1] for i in range(len(images))]),
                                      subset_size=len(images), fast_bias_correction=False, ignored_scope=scope)
    finally:
        log.setLevel(level)
    for key, value in (metadata or {}).items():
        quantized.set_rt_info(value, ["effnet", key])
    out = Path(out_xml)
    if out.suffix != ".xml":
        raise ValueError(f"OpenVINO IR is written as NAME.xml (with NAME.bin beside it); got {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out, len(kept)
