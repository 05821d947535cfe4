"""Exported models that carry what a deployment needs, and run on their own.

``effnet export`` writes three entries into every ONNX file (``metadata_props``) and OpenVINO IR
(``rt_info`` under ``effnet``): ``effnet.model`` (the architecture's name), ``effnet.description``
(the architecture description, JSON) and ``effnet.preprocessing`` (resolution, crop fraction,
interpolation, mean, std and class names, JSON). :func:`load_exported` reads a file back as an
:class:`ExportedModel`: a parameter-free module whose forward runs the file in its own engine
(ONNX Runtime or OpenVINO fp32), with the preprocessing and class names it carries, so ``effnet
predict`` and ``effnet eval`` take the exported file alone.

Reading them from plain ONNX Runtime::

    import json, onnxruntime as ort
    session = ort.InferenceSession("model.onnx")
    meta = session.get_modelmeta().custom_metadata_map
    prep = json.loads(meta["effnet.preprocessing"])   # resolution, crop_fraction, mean, std, class_names
    logits = session.run(None, {"input": batch})[0]    # batch: float32 N x 3 x H x W, normalised as prep says
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..errors import missing_extra
from ..weights.meta import Preprocessing
from .runtime import import_openvino, openvino_runner

KEYS = ("model", "description", "preprocessing")
EXPORTED_SUFFIXES = (".onnx", ".xml")


def deployment_metadata(model: nn.Module) -> dict[str, str]:
    """The entries an exported file carries (text values, keyed without the ``effnet.`` prefix)."""
    prep = getattr(model, "preprocessing", None) or Preprocessing()
    desc = getattr(model, "desc", None)
    out = {"preprocessing": json.dumps(prep.to_dict())}
    if desc is not None:
        out["model"] = str(desc.name)
        out["description"] = json.dumps(desc.to_dict())
    return out


def add_onnx_metadata(path: str | Path, meta: Mapping[str, str]) -> None:
    """Write ``meta`` into the ONNX file's ``metadata_props`` as ``effnet.<key>``, in place."""
    try:
        import onnx
    except ImportError as exc:
        raise missing_extra(exc, "ONNX export") or exc
    proto = onnx.load(str(path))
    keep = [p for p in proto.metadata_props if not p.key.startswith("effnet.")]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"effnet.{key}", value
    onnx.save(proto, str(path))


def is_exported(spec: str | Path) -> bool:
    return Path(str(spec)).suffix.lower() in EXPORTED_SUFFIXES


class ExportedModel(nn.Module):
    """An exported file run by its engine, as a module: float32 NCHW batch in, logits out."""

    def __init__(self, path: Path, engine: str, run, meta: Mapping[str, str]) -> None:
        super().__init__()
        self.path, self.engine, self._run = path, engine, run
        if "preprocessing" not in meta:
            raise ValueError(f"{path} carries no effnet metadata (no preprocessing or class names): export it again "
                             "with `effnet export`, which writes them into the file")
        try:
            self.preprocessing = Preprocessing.from_dict(json.loads(meta["preprocessing"]))
            self.description: dict[str, Any] | None = json.loads(meta["description"]) if "description" in meta else None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: unreadable effnet metadata ({exc})") from None
        self.name = meta.get("model") or path.stem
        names = self.preprocessing.class_names
        self.num_classes = len(names) or int((self.description or {}).get("num_classes") or 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._run(np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32))
        return torch.from_numpy(np.asarray(out))


def load_exported(path: str | Path) -> ExportedModel:
    """An ONNX (``.onnx``, ONNX Runtime) or OpenVINO IR (``.xml``, OpenVINO; fp32 layers in fp32) file,
    ready to run."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"exported model not found: {p}")
    if p.suffix.lower() == ".onnx":
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise missing_extra(exc, "running an ONNX file") or exc
        try:
            session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (ONNX Runtime raises its own types for a bad file)
            raise ValueError(f"{p} is not a readable ONNX model: {str(exc).splitlines()[0]}") from None
        custom = session.get_modelmeta().custom_metadata_map
        meta = {k[len("effnet."):]: v for k, v in custom.items() if k.startswith("effnet.")}
        name = session.get_inputs()[0].name
        return ExportedModel(p, "ONNX Runtime", lambda x: session.run(None, {name: x})[0], meta)
    ov = import_openvino()
    core = ov.Core()
    try:
        graph = core.read_model(str(p))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{p} is not a readable OpenVINO IR: {str(exc).splitlines()[0]}") from None
    meta = {k: graph.get_rt_info(["effnet", k]).astype(str) for k in KEYS if graph.has_rt_info(["effnet", k])}
    int8 = any(op.get_type_name() == "FakeQuantize" for op in graph.get_ops())
    # one static compile per input shape: an INT8 IR is saved at one shape (effnet.deploy.openvino_int8)
    return ExportedModel(p, "OpenVINO INT8" if int8 else "OpenVINO fp32", openvino_runner(p), meta)
