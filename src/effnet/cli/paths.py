"""The ``--path`` values of ``effnet predict`` and ``effnet export``, and the candidates of
:mod:`effnet.deploy.paths` each stands for: command-line vocabulary, kept out of the library."""
from __future__ import annotations

from typing import Sequence

from ..errors import EffnetError

#: ``effnet predict --path`` values and the candidate each runs (``eager`` is predict's own default:
#: BatchNorm folded, channels_last).
PREDICT_PATHS = {"eager": "channels_last", "onnxruntime": "onnxruntime", "int8": "int8", "bf16": "bf16",
                 "openvino": "openvino", "openvino_bf16": "openvino_bf16", "openvino_int8": "openvino_int8"}
#: ``effnet export --path`` values; every fp32 candidate exports as the fp32 ONNX model, which is
#: also what the OpenVINO paths compile (OpenVINO reads ONNX; bf16 is its run-time precision).
EXPORT_OF = {"eager": "fp32", "channels_last": "fp32", "compile": "fp32", "onnxruntime": "fp32", "int8": "int8",
             "bf16": "bf16", "openvino": "fp32", "openvino_bf16": "fp32", "openvino_int8": "openvino_int8"}
#: How to run what ``effnet export`` wrote for a path chosen on another engine than ONNX Runtime.
RUN_WITH = {"openvino": "OpenVINO: openvino.Core().compile_model(FILE, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})",
            "openvino_bf16": "OpenVINO in bf16: openvino.Core().compile_model(FILE, 'CPU', "
                             "{'INFERENCE_PRECISION_HINT': 'bf16'}), or `effnet predict --path openvino_bf16`; "
                             "`effnet export --format openvino` writes the same graph as OpenVINO IR",
            "openvino_int8": "OpenVINO INT8: `effnet export --format openvino --path openvino_int8 --out NAME.xml`, "
                             "then openvino.Core().compile_model(NAME.xml, 'CPU'), or `effnet predict --model NAME.xml`"}


def check_path(value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise EffnetError(f"unknown --path {value!r}; choose from {', '.join(allowed)}")
    return value
