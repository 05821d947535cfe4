"""The peers our benchmarks compare with: torchvision's and timm's model of the same name, with
random weights, and their plain ONNX export."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from .names import PEERS


def peer_model(impl: str, name: str) -> nn.Module | str:
    """The peer library's model of the same name (random weights), or why there is none."""
    if impl == "torchvision":
        import torchvision

        if name not in torchvision.models.list_models():
            return f"torchvision has no {name}"
        return torchvision.models.get_model(name, weights=None).eval()
    if impl == "timm":
        try:
            import timm
        except ImportError:
            return "timm is not installed (pip install timm to compare with it)"
        for candidate in (name, f"tf_{name}"):
            if candidate in timm.list_models():
                return timm.create_model(candidate, pretrained=False).eval()
        return f"timm has no {name}"
    raise ValueError(f"unknown peer {impl!r}; choose from {', '.join(PEERS)}")


def export_peer_onnx(model: nn.Module, path: Path, x: torch.Tensor) -> None:
    """Export a peer's model as it is (ONNX Runtime folds its BatchNorm itself)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x[:1],), str(path), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}})
