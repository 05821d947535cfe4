"""Run checkpoints: everything needed to continue a run exactly, written so a kill at any moment
leaves the previous checkpoint intact.

Layout of a run dir's ``checkpoints/``::

    step-00000120/model.safetensors   weights + preprocessing metadata (effnet.weights.save_model)
    step-00000120/ema.safetensors     EMA weights, same format
    step-00000120/state.pt            optimizer, scheduler, grad scaler, EMA counter, position in the
                                      data order, RNG states, metrics history (plain tensors and
                                      containers: loads with ``torch.load(weights_only=True)``)
    LATEST                            name of the newest complete checkpoint

Every file is written atomically (``effnet.fsutil.atomic_path``), and ``LATEST`` is replaced only
after the whole checkpoint is on disk, so the checkpoint it names is always complete.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..fsutil import atomic_path, atomic_write_text
from ..weights import save_model

STATE_FORMAT = "effnet.train-state"
STATE_VERSION = 1
CHECKPOINTS = "checkpoints"
LATEST = "LATEST"


# ----- RNG state ---------------------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """The global RNG states (torch CPU and CUDA, Python, NumPy) as weights-only-loadable values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(gauss)],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss_value = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss_value))


# ----- weights -----------------------------------------------------------------------------

def save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``model`` (an unwrapped effnet model with ``preprocessing``) as safetensors; ``save_model``
    writes atomically."""
    save_model(model, path, extra_metadata=metadata)


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a safetensors checkpoint written by :func:`save_weights` into ``model`` in place (strict)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"checkpoint {path} does not match the model "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    with torch.no_grad():
        for name, tensor in own.items():
            if tensor.shape != state[name].shape:
                raise ValueError(f"checkpoint {path}: {name} has shape {tuple(state[name].shape)}, "
                                 f"the model expects {tuple(tensor.shape)}")
            tensor.copy_(state[name])


# ----- checkpoints -------------------------------------------------------------------------

def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or ``None`` when it has none."""
    pointer = checkpoint_dir(Path(run_dir)) / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    path = checkpoint_dir(Path(run_dir)) / name
    if not name or not (path / "state.pt").is_file():
        raise ValueError(f"{pointer} names {name!r}, which is not a complete checkpoint")
    return path


def candidates(run_dir: str | Path) -> list[Path]:
    """The run's checkpoints to resume from, newest first: the one ``LATEST`` names, then the
    other ``step-*`` checkpoints by step, newest first (each one still has to read whole)."""
    root = checkpoint_dir(Path(run_dir))
    if not root.is_dir():
        return []
    steps = sorted((p for p in root.glob("step-*") if p.is_dir()), key=lambda p: p.name, reverse=True)
    pointer = root / LATEST
    named = pointer.read_text().strip() if pointer.is_file() else ""
    first = [root / named] if named and (root / named).is_dir() else []
    return first + [p for p in steps if p.name != named]


def set_aside(path: Path) -> Path:
    """Rename an unreadable checkpoint to ``unreadable-<name>`` (kept for inspection, never pruned
    or resumed from); returns the new path."""
    target = path.with_name(f"unreadable-{path.name}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"unreadable-{path.name}.{n}")
    path.rename(target)
    return target


def write_checkpoint(run_dir: Path, step: int, *, model: nn.Module, ema_model: nn.Module | None,
                     state: dict[str, Any], keep: int, metadata: dict[str, str]) -> Path:
    """Write checkpoint ``step`` (model, EMA, train state), point ``LATEST`` at it, prune old ones."""
    root = checkpoint_dir(run_dir)
    name = f"step-{step:08d}"
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    save_weights(model, path / "model.safetensors", {**metadata, "weights": "raw"})
    if ema_model is not None:
        save_weights(ema_model, path / "ema.safetensors", {**metadata, "weights": "ema"})
    payload = {"format": STATE_FORMAT, "version": STATE_VERSION, **state}
    with atomic_path(path / "state.pt") as tmp:
        torch.save(payload, tmp)
    atomic_write_text(root / LATEST, name + "\n")
    old = sorted(p for p in root.glob("step-*") if p.is_dir() and p.name != name)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return path


def read_state(path: Path) -> dict[str, Any]:
    """The train state of checkpoint dir ``path`` (weights-only unpickling: no code runs)."""
    file = Path(path) / "state.pt"
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise ValueError(f"cannot read train state {file}: {str(exc).splitlines()[0]}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{file} is not an effnet train state")
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{file}: unsupported train-state version {state.get('version')!r}")
    return state


def publish(src: Path, dst: Path) -> None:
    """Copy a checkpoint file to a stable name in the run dir (``last.safetensors``), atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
