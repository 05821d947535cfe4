"""Block modules, one module per kind of :mod:`effnet.arch.kinds`: each defines ``MODULE``, an
``nn.Module`` class built from ``(Block, NormOptions, drop_path_rate)`` whose ``kind`` names the
description kind it builds."""
from __future__ import annotations

import importlib
import pkgutil

from torch import nn

from ...arch.kinds import KINDS


def _discover() -> dict[str, type[nn.Module]]:
    found: dict[str, type[nn.Module]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = getattr(importlib.import_module(f"{__name__}.{info.name}"), "MODULE", None)
        kind = getattr(module, "kind", None)
        if module is None or kind not in KINDS:
            raise TypeError(f"effnet.nn.kinds.{info.name} must define MODULE, a block class whose kind is one of "
                            f"{', '.join(KINDS)}")
        found[kind] = module
    missing = [k for k in KINDS if k not in found]
    if missing:
        raise TypeError(f"block kinds without a module in effnet.nn.kinds: {', '.join(missing)}")
    return {k: found[k] for k in KINDS}


#: kind name -> block module class, in the order of :data:`effnet.arch.kinds.KINDS`.
BLOCKS: dict[str, type[nn.Module]] = _discover()
