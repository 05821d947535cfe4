"""The blocks a stage can be made of, each built from one :class:`effnet.arch.Block` by the module
of its kind (:mod:`effnet.nn.kinds`)."""
from __future__ import annotations

from torch import nn

from ..arch import Block
from .kinds import BLOCKS
from .kinds.base import NormOptions, Residual

__all__ = ["BLOCKS", "NormOptions", "Residual", "make_block"]


def make_block(spec: Block, opts: NormOptions, drop_path_rate: float = 0.0) -> nn.Module:
    return BLOCKS[spec.op](spec, opts, drop_path_rate)
