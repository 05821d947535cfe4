"""Converters from other implementations' EfficientNet state dicts to effnet's key naming.

Four layouts are recognised by their keys:

============  ==========================================  ======================================
format        stem weight key                             block keys
============  ==========================================  ======================================
effnet        ``stem.conv.weight``                        ``stages.S.B.dw.conv.weight``
torchvision   ``features.0.0.weight``                     ``features.S+1.B.block.I.0.weight``
timm          ``conv_stem.weight``                        ``blocks.S.B.conv_dw.weight``
lukemelas     ``_conv_stem.weight`` (EfficientNet-PyTorch) ``_blocks.N._depthwise_conv.weight``
============  ==========================================  ======================================

Keys are renamed by explicit rules, one per layout; a key no rule knows keeps its name, so the
strict load in :func:`effnet.weights.load_state` reports it instead of dropping it. Shapes are
checked there too, against the module the weights go into.

Each layout also implies numerics (BatchNorm eps, padding convention); :func:`source_numerics`
says which, and the user's explicit ``padding``/``bn_eps`` always win over it.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..arch import Network
from ..nn.kinds import BLOCKS

FORMATS = ("effnet", "torchvision", "timm", "lukemelas")

#: Containers other code stores a state dict under, tried in this order.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")
#: Prefixes added by DataParallel/DistributedDataParallel, torch.compile and module wrappers.
_PREFIXES = ("module.", "_orig_mod.", "model.")


@dataclass(frozen=True)
class Numerics:
    """The BatchNorm and padding settings a set of weights was trained with (None: unknown)."""

    padding: str | None = None
    bn_eps: float | None = None
    bn_momentum: float | None = None


TF_NUMERICS = Numerics(padding="same", bn_eps=1e-3)


def unwrap_state_dict(obj: Any, what: str = "checkpoint") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a (possibly wrapped) state dict, and facts found in the wrapper.

    Accepts ``{"state_dict": ...}``, ``{"model": ...}`` and similar containers (nested up to three
    deep) and strips ``module.``/``_orig_mod.``/``model.`` prefixes shared by every key. Returns
    ``(state, info)``; ``info`` may hold ``"arch"``, the model name a timm training checkpoint stores.
    Entries that are not tensors (epoch counters and the like) are left out.
    """
    info: dict[str, Any] = {}
    for _ in range(4):
        if not isinstance(obj, Mapping):
            raise ValueError(f"{what} holds a {type(obj).__name__}, not a state dict")
        if isinstance(obj.get("arch"), str):
            info.setdefault("arch", obj["arch"])
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ValueError(f"{what} holds no tensors")
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state, info


def detect_format(state: Mapping[str, torch.Tensor]) -> str:
    """Which implementation's naming ``state`` uses: one of :data:`FORMATS`."""
    keys = set(state)
    if "stem.conv.weight" in keys or any(k.startswith("stages.") for k in keys):
        return "effnet"
    if "features.0.0.weight" in keys:
        return "torchvision"
    if "conv_stem.weight" in keys and any(k.startswith("blocks.") for k in keys):
        return "timm"
    if "_conv_stem.weight" in keys:
        return "lukemelas"
    first = ", ".join(list(state)[:3])
    raise ValueError(
        f"unrecognised state dict layout (first keys: {first}); effnet reads EfficientNet weights "
        "saved by effnet, torchvision, timm and EfficientNet-PyTorch"
    )


def convert_state_dict(state: Mapping[str, torch.Tensor], fmt: str | None = None,
                       desc: Network | None = None) -> dict[str, torch.Tensor]:
    """``state`` renamed to effnet's keys. ``fmt`` is detected when not given.

    ``desc`` tells EfficientNet-PyTorch's globally numbered blocks which stage they belong to;
    without it (or when its block count differs from the checkpoint's) a stage starts wherever a
    block changes the channel count, which holds for every EfficientNet and EfficientNet-Lite.
    """
    fmt = fmt or detect_format(state)
    if fmt == "effnet":
        return dict(state)
    if fmt == "torchvision":
        return _from_torchvision(state, desc)
    if fmt == "timm":
        return _from_timm(state)
    if fmt == "lukemelas":
        return _from_lukemelas(state, desc)
    raise ValueError(f"unknown weights format {fmt!r}; known: {', '.join(FORMATS)}")


def source_numerics(fmt: str, state: Mapping[str, torch.Tensor], arch_hint: str | None = None,
                    desc: Network | None = None) -> Numerics:
    """The numerics weights in ``fmt`` were trained with.

    * torchvision: BatchNorm eps 1e-5 for B0..B4 and 1e-3 for B5..B7 (torchvision builds those, ported
      from TensorFlow, with eps 1e-3); told apart by head width, 2048 channels and more for B5..B7.
      EfficientNetV2 (a ``desc`` with Fused-MBConv stages): eps 1e-3. Padding symmetric.
    * timm ``efficientnet_*``: eps 1e-5, padding symmetric. timm's ``tf_efficientnet_*`` weights
      (ported from TensorFlow) have *identical* key names and shapes but need eps 1e-3 and TF "same"
      padding; they are recognised only by ``arch_hint`` (a model name starting with ``tf_``, taken
      from the file name, a ``config.json`` beside it, or the ``arch`` entry of a timm training
      checkpoint). Without a hint pass ``padding="same", bn_eps=1e-3`` to ``create_model``.
    * lukemelas (EfficientNet-PyTorch, ported from TensorFlow): eps 1e-3, padding "same".
    * effnet without metadata: unknown (the caller's defaults apply).
    """
    if fmt == "torchvision":
        head = _torchvision_head_channels(state)
        v2 = desc is not None and any(stage.op == "fused_mbconv" for stage in desc.stages)
        return Numerics(padding="symmetric", bn_eps=1e-3 if v2 or (head is not None and head >= 2048) else 1e-5)
    if fmt == "timm":
        if arch_hint and arch_hint.split("/")[-1].startswith("tf_"):
            return TF_NUMERICS
        return Numerics(padding="symmetric", bn_eps=1e-5)
    if fmt == "lukemelas":
        return TF_NUMERICS
    return Numerics()


# ----- torchvision ----------------------------------------------------------------------
_TV_BLOCK = re.compile(r"features\.(\d+)\.(\d+)\.block\.(\d+)\.(.+)")
_TV_CNA = re.compile(r"features\.(\d+)\.([01])\.(.+)")
_TV_SE = {"fc1": "reduce", "fc2": "expand"}


def _torchvision_head_channels(state: Mapping[str, torch.Tensor]) -> int | None:
    heads = [int(m[1]) for k in state if (m := _TV_CNA.fullmatch(k)) and m[1] != "0" and m[2] == "0"]
    if not heads:
        return None
    return int(state[f"features.{max(heads)}.0.weight"].shape[0])


def _cna_leaf(index: str, rest: str) -> str:
    """torchvision's Conv2dNormActivation: ``0`` is the convolution, ``1`` the BatchNorm."""
    return ("conv." if index == "0" else "bn.") + rest


def _from_torchvision(state: Mapping[str, torch.Tensor], desc: Network | None = None) -> dict[str, torch.Tensor]:
    # A torchvision block is a Sequential of conv-norm-acts (and squeeze-excite). Which is which
    # follows from how many the block has, as the block module of its kind names them
    # (``torchvision_parts``: MBConv's 3 are expand, dw, project); the kind of each stage comes from
    # ``desc``, MBConv without one.
    kinds = [stage.op for stage in desc.stages] if desc is not None else []
    convs: dict[tuple[int, int], set[int]] = defaultdict(set)
    for k in state:
        m = _TV_BLOCK.fullmatch(k)
        if m and m[4].split(".")[0] not in _TV_SE:
            convs[(int(m[1]), int(m[2]))].add(int(m[3]))
    roles: dict[tuple[int, int, int], str] = {}
    for blk, idx in convs.items():
        kind = kinds[blk[0] - 1] if 0 < blk[0] <= len(kinds) else "mbconv"
        names = BLOCKS[kind].torchvision_parts.get(len(idx))
        if names:
            for i, name in zip(sorted(idx), names):
                roles[(*blk, i)] = name
    head = max((int(m[1]) for k in state if (m := _TV_CNA.fullmatch(k))), default=0)
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        new = k
        if m := _TV_BLOCK.fullmatch(k):
            feat, b, i, rest = int(m[1]), int(m[2]), int(m[3]), m[4]
            first, _, leaf = rest.partition(".")
            prefix = f"stages.{feat - 1}.{b}."
            if first in _TV_SE:
                new = prefix + f"se.{_TV_SE[first]}.{leaf}"
            elif (feat, b, i) in roles:
                new = prefix + f"{roles[(feat, b, i)]}." + _cna_leaf(first, leaf)
        elif m := _TV_CNA.fullmatch(k):
            feat = int(m[1])
            if feat == 0:
                new = "stem." + _cna_leaf(m[2], m[3])
            elif feat == head:
                new = "head." + _cna_leaf(m[2], m[3])
        elif k.startswith("classifier.1."):
            new = "classifier." + k[len("classifier.1."):]
        out[new] = v
    return out


# ----- timm -----------------------------------------------------------------------------
_TIMM_BLOCK = re.compile(r"blocks\.(\d+)\.(\d+)\.(.+)")
#: timm's InvertedResidual (blocks with a 1x1 expansion)
_TIMM_IR = {"conv_pw": "expand.conv", "bn1": "expand.bn", "conv_dw": "dw.conv", "bn2": "dw.bn",
            "se.conv_reduce": "se.reduce", "se.conv_expand": "se.expand", "conv_pwl": "project.conv",
            "bn3": "project.bn"}
#: timm's DepthwiseSeparableConv (the expansion-1 blocks of the first stage)
_TIMM_DS = {"conv_dw": "dw.conv", "bn1": "dw.bn", "se.conv_reduce": "se.reduce", "se.conv_expand": "se.expand",
            "conv_pw": "project.conv", "bn2": "project.bn"}
_TIMM_TOP = {"conv_stem": "stem.conv", "bn1": "stem.bn", "conv_head": "head.conv", "bn2": "head.bn",
             "classifier": "classifier"}


def _rename_module(path: str, table: Mapping[str, str]) -> str | None:
    """``path`` (``module.sub.param``) with its module part renamed by ``table``, if listed."""
    module, _, param = path.rpartition(".")
    return f"{table[module]}.{param}" if module in table else None


def _from_timm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    inverted = {(m[1], m[2]) for k in state if (m := _TIMM_BLOCK.fullmatch(k)) and m[3].startswith("conv_pwl.")}
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        new = None
        if m := _TIMM_BLOCK.fullmatch(k):
            table = _TIMM_IR if (m[1], m[2]) in inverted else _TIMM_DS
            inner = _rename_module(m[3], table)
            new = f"stages.{m[1]}.{m[2]}.{inner}" if inner else None
        else:
            new = _rename_module(k, _TIMM_TOP)
        out[new or k] = v
    return out


# ----- EfficientNet-PyTorch (lukemelas) -------------------------------------------------
_LM_BLOCK = re.compile(r"_blocks\.(\d+)\.(.+)")
_LM_INNER = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "dw.conv", "_bn1": "dw.bn",
             "_se_reduce": "se.reduce", "_se_expand": "se.expand", "_project_conv": "project.conv",
             "_bn2": "project.bn"}
_LM_TOP = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv", "_bn1": "head.bn",
           "_fc": "classifier"}


def _lukemelas_layout(state: Mapping[str, torch.Tensor], desc: Network | None) -> dict[int, tuple[int, int]]:
    """Global block number -> (stage, index within stage)."""
    numbers = sorted({int(m[1]) for k in state if (m := _LM_BLOCK.fullmatch(k))})
    if desc is not None and len(numbers) == desc.num_blocks:
        starts = [sum(s.repeats for s in desc.stages[:i]) for i in range(len(desc.stages))]
        return {n: (b.stage, b.index - starts[b.stage]) for n, b in zip(numbers, desc.blocks())}
    layout: dict[int, tuple[int, int]] = {}
    stage, index = -1, 0
    for n in numbers:
        project = state.get(f"_blocks.{n}._project_conv.weight")
        first = state.get(f"_blocks.{n}._expand_conv.weight", state.get(f"_blocks.{n}._depthwise_conv.weight"))
        if project is None or first is None:
            changes = True
        elif f"_blocks.{n}._expand_conv.weight" in state:
            changes = first.shape[1] != project.shape[0]
        else:  # no expansion: the depthwise convolution sees the block input
            changes = first.shape[0] != project.shape[0]
        if stage < 0 or changes:
            stage, index = stage + 1, 0
        layout[n] = (stage, index)
        index += 1
    return layout


def _from_lukemelas(state: Mapping[str, torch.Tensor], desc: Network | None) -> dict[str, torch.Tensor]:
    layout = _lukemelas_layout(state, desc)
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        new = None
        if m := _LM_BLOCK.fullmatch(k):
            inner = _rename_module(m[2], _LM_INNER)
            stage, index = layout[int(m[1])]
            new = f"stages.{stage}.{index}.{inner}" if inner else None
        else:
            new = _rename_module(k, _LM_TOP)
        out[new or k] = v
    return out
