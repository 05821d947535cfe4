"""Block kinds, one module each: the package is read once and every module's ``KIND`` (a
:class:`~effnet.arch.kinds.base.BlockKind`) is registered under its name. A new kind is one module
here (its width, shortcut and cost) and one in :mod:`effnet.nn.kinds` (its PyTorch module)."""
from __future__ import annotations

import importlib
import pkgutil

from .base import BlockKind, down

#: The built-in kinds first, in this order; any other module of the package after them, by name.
_FIRST = ("mbconv", "dsconv", "conv", "bottleneck")


def _discover() -> dict[str, BlockKind]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"]
    found: dict[str, BlockKind] = {}
    for name in sorted(names, key=lambda n: (_FIRST.index(n) if n in _FIRST else len(_FIRST), n)):
        kind = getattr(importlib.import_module(f"{__name__}.{name}"), "KIND", None)
        if not isinstance(kind, BlockKind) or not kind.name:
            raise TypeError(f"effnet.arch.kinds.{name} must define KIND, a named BlockKind")
        if kind.name in found:
            raise TypeError(f"two block kinds are named {kind.name!r}")
        found[kind.name] = kind
    return found


KINDS: dict[str, BlockKind] = _discover()

__all__ = ["KINDS", "BlockKind", "down"]
