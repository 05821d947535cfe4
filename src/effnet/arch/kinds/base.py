"""What a block kind gives the description layer: its inner width, its shortcut and its cost.

A kind sees one resolved block (:class:`effnet.arch.Block`: input and output channels, expansion,
kernel, stride, squeeze-excite ratio, skip) and a counter with two methods, ``conv(cin, cout,
kernel, out_hw, groups=1)`` and ``se(channels, squeeze)``, that adds parameters and multiply-adds.
Pure Python, like the rest of :mod:`effnet.arch`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..types import Block


def down(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """Output size of a strided convolution or pool with "same"-style padding: ceil(H / s)."""
    return (-(-size[0] // stride), -(-size[1] // stride))


class BlockKind(ABC):
    """One kind of block. Subclasses set ``name`` and ``summary`` and define ``cost``; the defaults
    below describe a block whose inner width is its output width and whose identity shortcut exists
    where the shapes allow it."""

    name: str = ""
    summary: str = ""

    def mid_channels(self, b: Block) -> int:
        return b.out_channels

    def has_expansion(self, b: Block) -> bool:
        return False

    def has_residual(self, b: Block) -> bool:
        return b.skip and b.stride == 1 and b.in_channels == b.out_channels

    def has_projection_shortcut(self, b: Block) -> bool:
        return False

    @abstractmethod
    def cost(self, counter: Any, b: Block, hw_in: tuple[int, int]) -> tuple[int, int]:
        """Count the block's parameters and multiply-adds into ``counter``; return its output size."""
