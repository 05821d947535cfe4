"""Reading and writing checkpoints.

effnet's own format is a safetensors file whose string metadata carries everything needed to
rebuild the model: the architecture description, the preprocessing, the numerics (padding,
BatchNorm eps and momentum, input channels) and any caller-supplied entries. Other checkpoints
are read as safetensors or as PyTorch files, the latter only with ``torch.load(weights_only=True)``
so that no untrusted pickle code runs.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..arch import Network
from ..fsutil import atomic_path
from .convert import unwrap_state_dict
from .meta import Preprocessing

FORMAT = "effnet.weights"
FORMAT_VERSION = 1
#: Metadata keys effnet writes itself; ``extra_metadata`` may not use them.
RESERVED_KEYS = ("format", "version", "architecture", "preprocessing", "numerics", "features_only")
#: Metadata values stored as JSON and returned parsed by :func:`read_metadata`.
_JSON_KEYS = ("version", "architecture", "preprocessing", "numerics", "features_only")
#: File names a model directory holds weights under: an effnet run folder's best weights, then the
#: Hugging Face hub's layout.
_DIR_FILES = ("best.safetensors", "model.safetensors", "pytorch_model.bin", "model.pth", "model.pt")


@dataclass(frozen=True)
class Checkpoint:
    """The tensors of a checkpoint file and what is known about where they came from."""

    path: Path
    state: dict[str, torch.Tensor]
    metadata: dict[str, str] | None = None  # safetensors metadata, if the file has any
    #: ``"arch"``: the model name a training checkpoint stores; ``"hint"``: the best guess at the
    #: name of the model the weights came from (see :func:`_arch_hint`)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def is_effnet(self) -> bool:
        return bool(self.metadata) and self.metadata.get("format") == FORMAT


# ----- writing ------------------------------------------------------------------------------
def _bn_settings(model: nn.Module) -> tuple[float | None, float | None]:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return float(m.eps), (None if m.momentum is None else float(m.momentum))
    return None, None


def save_model(model: nn.Module, path: str | Path, extra_metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model`` (an :class:`effnet.EfficientNet`) to a safetensors file, atomically.

    The metadata holds ``format``/``version``, the architecture description
    (``model.desc.to_json()``), ``model.preprocessing``, the numerics and ``extra_metadata``
    (string keys and values). Returns the path written.
    """
    from safetensors.torch import save_file

    desc = getattr(model, "desc", None)
    if not isinstance(desc, Network):
        raise ValueError(f"save_model takes an effnet model with a description, got {type(model).__name__}")
    extra = dict(extra_metadata or {})
    for k, v in extra.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValueError(f"extra metadata must map strings to strings, got {k!r}: {v!r}")
        if k in RESERVED_KEYS:
            raise ValueError(f"extra metadata key {k!r} is reserved (reserved: {', '.join(RESERVED_KEYS)})")
    preprocessing = getattr(model, "preprocessing", None) or Preprocessing(resolution=desc.resolution)
    bn_eps, bn_momentum = _bn_settings(model)
    numerics = {"padding": getattr(model, "padding", "symmetric"), "bn_eps": bn_eps, "bn_momentum": bn_momentum,
                "in_chans": int(getattr(model, "in_chans", 3))}
    metadata = {
        **extra,
        "format": FORMAT,
        "version": json.dumps(FORMAT_VERSION),
        "architecture": desc.to_json(indent=None),
        "preprocessing": json.dumps(preprocessing.to_dict()),
        "numerics": json.dumps(numerics),
        "features_only": json.dumps(bool(getattr(model, "features_only", False))),
    }
    # safetensors stores each tensor once; cloning breaks any storage sharing between entries
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    target = Path(path)
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return target


# ----- reading ------------------------------------------------------------------------------
def checkpoint_file(path: str | Path) -> Path:
    """The weights file a checkpoint argument names: the file itself, or in a folder (an effnet run
    folder, a hub-style model folder) the first of :data:`_DIR_FILES` it holds."""
    return _resolve_file(path)


def _resolve_file(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        for name in _DIR_FILES:
            if (p / name).is_file():
                return p / name
        raise ValueError(f"checkpoint directory {p} holds none of {', '.join(_DIR_FILES)} (an effnet run folder "
                         "holds best.safetensors once its first epoch has finished)")
    if not p.exists():
        raise ValueError(f"checkpoint file {p} does not exist")
    if not p.is_file():
        raise ValueError(f"checkpoint {p} is not a regular file")
    return p


def _read_head(p: Path, n: int = 9) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(n)
    except OSError as exc:
        raise ValueError(f"cannot read checkpoint {p}: {exc.strerror or exc}") from None


def _looks_like_safetensors(head: bytes) -> bool:
    """safetensors: an 8-byte little-endian header length, then the JSON header."""
    return len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] > 0


def is_safetensors(path: str | Path) -> bool:
    """Whether ``path`` is a readable file that starts like a safetensors file."""
    p = Path(path)
    return p.is_file() and _looks_like_safetensors(_read_head(p))


def _safetensors_metadata(p: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises its own SafetensorError (an Exception), among others
        raise ValueError(f"{p} is not a valid safetensors file (corrupt or truncated?): {exc}") from None


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read the tensors of any supported checkpoint file (or a model directory holding one).

    Safetensors files are read as they are; anything else goes through
    ``torch.load(weights_only=True, map_location="cpu")`` and is unwrapped with
    :func:`effnet.weights.convert.unwrap_state_dict`. Every failure is a ``ValueError`` naming the file.
    """
    p = _resolve_file(path)
    head = _read_head(p)
    if not head:
        raise ValueError(f"checkpoint file {p} is empty")
    info: dict[str, Any] = {}
    if _looks_like_safetensors(head):
        from safetensors.torch import load_file

        metadata = _safetensors_metadata(p)
        try:
            state = load_file(str(p), device="cpu")
        except Exception as exc:  # SafetensorError and friends
            raise ValueError(f"{p} is not a valid safetensors file (corrupt or truncated?): {exc}") from None
        if not state:
            raise ValueError(f"checkpoint file {p} holds no tensors")
    else:
        metadata = None
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:
            import pickle

            if isinstance(exc, pickle.UnpicklingError) and "weights only" in str(exc).lower():
                raise ValueError(
                    f"{p} holds Python objects other than tensors and is not loaded, because unpickling "
                    "them could run code; save just the state dict (torch.save(model.state_dict(), path)) "
                    "or convert it to safetensors"
                ) from None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"cannot read checkpoint {p}: not a safetensors or PyTorch file, or it is corrupt or truncated ({first})"
            ) from None
        state, info = unwrap_state_dict(obj, what=f"checkpoint {p}")
    info["hint"] = _arch_hint(p, info)
    return Checkpoint(path=p, state=state, metadata=metadata, info=info)


def _arch_hint(p: Path, info: dict[str, Any]) -> str:
    """The model name a checkpoint was saved from, when something says so.

    In order: the ``arch`` entry of a (timm) training checkpoint, the ``architecture`` of a
    ``config.json`` beside the file (the Hugging Face hub layout timm uses), the file name
    (timm's release files are named after the model, e.g. ``tf_efficientnet_b0_aa-827b6e33.pth``).
    """
    if isinstance(info.get("arch"), str):
        return info["arch"]
    config = p.parent / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if isinstance(data, dict):
            arch = data.get("architecture") or data.get("arch")
            if isinstance(arch, str):
                return arch
    return p.name


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a safetensors checkpoint.

    For effnet's own files the values of ``version``, ``architecture``, ``preprocessing``,
    ``numerics`` and ``features_only`` come back parsed from JSON; every other entry (including
    ``format`` and extra metadata) is the stored string. Other safetensors files return their
    metadata as stored (often ``{}`` or ``{"format": "pt"}``).
    """
    p = _resolve_file(path)
    if not _looks_like_safetensors(_read_head(p)):
        raise ValueError(f"{p} is not a safetensors file; only safetensors checkpoints carry metadata")
    return parse_metadata(_safetensors_metadata(p), p)


def parse_metadata(raw: Mapping[str, str], path: str | Path = "checkpoint") -> dict[str, Any]:
    """Stored safetensors metadata with effnet's JSON entries parsed (see :func:`read_metadata`)."""
    if raw.get("format") != FORMAT:
        return dict(raw)
    out: dict[str, Any] = dict(raw)
    for key in _JSON_KEYS:
        if key in raw:
            try:
                out[key] = json.loads(raw[key])
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: metadata entry {key!r} is not valid JSON: {exc}") from None
    if out.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported effnet weights version {out.get('version')!r} "
                         f"(this effnet reads {FORMAT_VERSION})")
    return out


def _require_effnet(p: Path, meta: dict[str, Any]) -> None:
    if meta.get("format") != FORMAT:
        raise ValueError(f"{p} is not an effnet checkpoint (no effnet metadata); "
                         "create the model by name and pass the file as pretrained=PATH")
    for key in ("architecture", "preprocessing", "numerics"):
        if key not in meta:
            raise ValueError(f"{p}: effnet metadata lacks {key!r}")


def read_description(path: str | Path) -> Network:
    """The architecture description stored in an effnet checkpoint."""
    p = _resolve_file(path)
    meta = read_metadata(p)
    _require_effnet(p, meta)
    try:
        return Network.from_dict(meta["architecture"])
    except ValueError as exc:
        raise ValueError(f"{p}: stored architecture is invalid: {exc}") from None


def read_preprocessing(path: str | Path) -> Preprocessing:
    """The preprocessing stored in an effnet checkpoint."""
    p = _resolve_file(path)
    meta = read_metadata(p)
    _require_effnet(p, meta)
    try:
        return Preprocessing.from_dict(meta["preprocessing"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{p}: stored preprocessing is invalid: {exc}") from None


def read_effnet_metadata(path: str | Path) -> dict[str, Any]:
    """The parsed metadata of an effnet checkpoint (an error for any other file).

    ``effnet.factory.load_model`` builds the model from it.
    """
    p = _resolve_file(path)
    meta = read_metadata(p)
    _require_effnet(p, meta)
    return meta
