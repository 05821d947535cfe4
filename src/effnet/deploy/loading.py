"""A command's model argument as an eval-mode model, through ``effnet.factory.load_model``."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ..factory import load_model
from .exported import is_exported, load_exported


def load_model_arg(spec: str | Path, pretrained: bool = False, *, exported: bool = False) -> nn.Module:
    """An eval-mode model from a command's model argument (see :func:`effnet.factory.load_model`);
    with ``exported``, an exported ONNX or OpenVINO IR file too (:mod:`effnet.deploy.exported`)."""
    if is_exported(spec):
        if not exported:
            raise ValueError(f"{spec} is an exported model; this command needs a model name, description or checkpoint")
        if pretrained:
            raise ValueError(f"--pretrained applies to model names; {spec} is an exported model with its own weights")
        return load_exported(spec).eval()
    return load_model(spec, pretrained=pretrained).eval()


def class_names_of(model: nn.Module, num_classes: int) -> list[str]:
    """The model's class names, or ``class_<i>`` when it carries none (or the count differs)."""
    names = list(getattr(getattr(model, "preprocessing", None), "class_names", ()) or ())
    if len(names) != num_classes:
        names = [f"class_{i}" for i in range(num_classes)]
    return names
