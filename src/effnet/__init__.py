"""effnet: the complete EfficientNet system on PyTorch.

``effnet.arch`` (descriptions, scaling, cost) never imports torch; the torch-backed names here
(``create_model``, ``build``, ``EfficientNet``) load on first use.
"""
from .arch import Network, Stage, Stem, cost, get_network, list_networks, scale

__version__ = "0.1.0"
_LAZY = {"create_model": "effnet.factory", "load_model": "effnet.factory", "build": "effnet.nn", "EfficientNet": "effnet.nn"}
__all__ = ["EfficientNet", "Network", "Stage", "Stem", "build", "cost", "create_model", "get_network",
           "list_networks", "load_model", "scale", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'effnet' has no attribute {name!r}")
