"""Checkpoints: effnet's safetensors format with metadata that travels with the weights, and
converters from torchvision, timm and EfficientNet-PyTorch state dicts.

``effnet.weights.meta`` (preprocessing metadata) never imports torch; the torch-backed names here
load on first use.
"""
from .meta import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

_LAZY = {
    "Checkpoint": "io", "FORMAT": "io", "is_safetensors": "io", "parse_metadata": "io",
    "read_checkpoint": "io", "read_description": "io", "read_effnet_metadata": "io", "read_metadata": "io", "read_preprocessing": "io",
    "save_model": "io",
    "FORMATS": "convert", "Numerics": "convert", "convert_state_dict": "convert", "detect_format": "convert",
    "source_numerics": "convert", "unwrap_state_dict": "convert",
    "adapt_stem_weight": "load", "load_state": "load",
    "Loaded": "pretrained", "OFFLINE_WEIGHTS": "pretrained", "imagenet_class_names": "pretrained",
    "offline_weights": "pretrained", "resolve_pretrained": "pretrained",
}
__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Preprocessing", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
