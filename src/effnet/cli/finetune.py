"""``effnet finetune``: defined with ``train`` and ``eval`` in :mod:`effnet.cli.train`."""
from .train import register_finetune as register

__all__ = ["register"]
