"""``effnet eval``: defined with ``train`` and ``finetune`` in :mod:`effnet.cli.train`."""
from .train import register_eval as register

__all__ = ["register"]
