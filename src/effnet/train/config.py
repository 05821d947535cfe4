"""The training recipe as one typed, immutable config with per-variant defaults.

The paper's values (Tan & Le 2019, section 5.2) are :data:`PAPER`: RMSProp
(decay 0.9, momentum 0.9, TensorFlow semantics), learning rate 0.016 per 256 images with 5 warm-up
epochs and x0.97 every 2.4 epochs, weight decay 1e-5, label smoothing 0.1, stochastic depth 0.2,
dropout per variant, EMA of weights with decay 0.9999, BatchNorm momentum 0.01 (TensorFlow 0.99),
AutoAugment. Those settings that only suit a long from-scratch run default to ``None``: the
run decides them from its length, its data and whether it fine-tunes (``effnet.train.recipe``,
``recipe="auto"``), or takes the paper's (``recipe="paper"``). Any value can be set by keyword,
by ``key=value`` strings (the command line's ``--set``) or by a YAML/JSON file; a set value is kept.
"""
from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from ..arch import Network
from ..checks import check_choice, check_float, check_int, check_range, optional
from ..data.spec import DataSpec
from ..fsutil import atomic_write_text

OPTIMIZERS = ("rmsprop_tf", "sgd", "adamw")
SCHEDULES = ("step", "cosine")
AMP_MODES = ("none", "bf16", "fp16", "auto")
DEVICES = ("auto", "cpu", "cuda")
RECIPES = ("auto", "short", "paper")
HEAD_INITS = ("zero", "paper")
BN_MODES = ("train", "frozen")
AUGMENT_CHOICES = ("autoaugment", "randaugment", "none")
#: Keys of a saved config file that record the run rather than set it (read back and ignored).
RECORD_KEYS = ("decisions",)


#: The paper's values of every key the recipe decides.
PAPER: Mapping[str, Any] = {
    "optimizer": "rmsprop_tf", "lr_per_256": 0.016, "head_lr_scale": 1.0, "schedule": "step",
    "warmup_epochs": 5.0, "label_smoothing": 0.1, "drop_path_rate": 0.2, "bn_momentum": 0.01,
    "bn_mode": "train", "head_init": "paper", "ema_decay": 0.9999, "augment": "autoaugment", "crop_scale": 0.08,
}
DECIDED_KEYS: tuple[str, ...] = tuple(PAPER)
#: The global batch when the recipe does not decide a smaller one (``effnet.train.recipe.decide``).
DEFAULT_BATCH = 64


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Saved as ``config.yaml``/``config.json`` in the run dir."""

    # --- model and data -----------------------------------------------------------------
    model: str = "efficientnet_b0"  # registered name or description JSON path
    data: str = "elpv"  # "elpv", "synthetic", an image folder or a CSV list
    task: str = "default"
    pretrained: str | None = None  # "true" (offline weights) or a checkpoint path
    in_chans: int = 3
    freeze_stages: int = 0  # fine-tuning: freeze the stem and the first N stages
    img_size: int | None = None  # None: the variant's resolution
    augment: str | None = None  # None: decided by the recipe
    crop_scale: float | None = None  # smallest random-crop area (fraction); None: sized to img_size
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    skip_bad_images: bool = False
    limit_per_class: int | None = None  # also the per-class size of data="synthetic" (default 8)
    # --- schedule -----------------------------------------------------------------------
    recipe: str = "auto"  # "auto": decide the None keys from the run; "short": fixed short-run values; "paper": the paper's
    epochs: int = 350
    max_steps: int | None = None  # stop early after this many optimizer steps
    batch_size: int | None = None  # global batch (split across processes); None: decided (effnet.train.recipe)
    eval_batch_size: int = 64
    optimizer: str | None = None
    lr: float | None = None  # None: lr_per_256 * batch_size / 256
    lr_per_256: float | None = None
    head_lr_scale: float | None = None  # the classifier's learning rate as a multiple of the rest
    schedule: str | None = None
    warmup_epochs: float | None = None
    decay_epochs: float = 2.4
    decay_rate: float = 0.97
    min_lr_ratio: float = 0.0  # cosine floor, as a fraction of the peak
    momentum: float = 0.9
    rmsprop_decay: float = 0.9
    rmsprop_eps: float = 1e-3
    weight_decay: float = 1e-5  # not applied to BatchNorm parameters or biases
    grad_clip: float | None = None  # max global gradient norm
    # --- regularisation -----------------------------------------------------------------
    label_smoothing: float | None = None
    dropout: float | None = None  # None: the variant's dropout
    drop_path_rate: float | None = None
    bn_eps: float | None = None  # None: 1e-3 (paper), or the pretrained checkpoint's
    bn_momentum: float | None = None
    bn_mode: str | None = None  # "train": statistics follow the data; "frozen": inference-mode BatchNorm
    head_init: str | None = None  # a new classifier starts at "zero" or with the "paper" init
    padding: str | None = None  # None: "symmetric", or the pretrained checkpoint's convention
    ema: bool = True
    ema_decay: float | None = None
    # --- performance --------------------------------------------------------------------
    device: str = "auto"
    amp: str = "none"  # "bf16", "fp16" (CUDA), "auto" (bf16 where supported, else fp16 on CUDA)
    channels_last: bool | None = None  # None: the machine's fastest layout (effnet.train.fastpath)
    grad_checkpointing: bool = False  # recompute each stage in backward
    sync_bn: bool = False  # distributed: BatchNorm statistics over the global batch
    workers: int = 0
    threads: int | None = None  # torch intra-op threads; None leaves torch's default
    # --- reproducibility and files ------------------------------------------------------
    seed: int = 0
    deterministic: bool = False
    out: str | None = None  # run dir; None: runs/<model>-<data>-<time>
    checkpoint_every_steps: int = 0  # 0: at the end of every epoch only
    keep_checkpoints: int = 2
    log_every_steps: int = 10
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, _field_types()[f.name], getattr(self, f.name)))
        check_choice("recipe", self.recipe, RECIPES)
        for name, options in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("head_init", HEAD_INITS),
                              ("bn_mode", BN_MODES), ("augment", AUGMENT_CHOICES)):
            optional(check_choice, name, getattr(self, name), options)
        if self.pretrained is not None and self.pretrained.strip().lower() in ("false", "no", "0", "off", ""):
            object.__setattr__(self, "pretrained", None)
        elif self.pretrained is not None and self.pretrained.strip().lower() in ("true", "yes", "1", "on"):
            object.__setattr__(self, "pretrained", "true")
        check_choice("amp", self.amp, AMP_MODES)
        check_choice("device", self.device, DEVICES)
        for name in ("epochs", "eval_batch_size", "in_chans", "keep_checkpoints", "log_every_steps"):
            check_int(name, getattr(self, name), 1)
        for name in ("freeze_stages", "workers", "checkpoint_every_steps", "seed"):
            check_int(name, getattr(self, name), 0)
        for name in ("max_steps", "img_size", "limit_per_class", "threads", "batch_size"):
            optional(check_int, name, getattr(self, name), 1)
        for name in ("decay_epochs", "rmsprop_eps"):
            check_float(name, getattr(self, name), 0.0, strict=True)
        for name in ("lr", "lr_per_256", "bn_eps", "head_lr_scale", "grad_clip"):
            optional(check_float, name, getattr(self, name), 0.0, strict=True)
        for name in ("warmup_epochs", "weight_decay"):
            optional(check_float, name, getattr(self, name), 0.0)
        for name in ("decay_rate", "min_lr_ratio", "momentum", "rmsprop_decay", "label_smoothing",
                     "bn_momentum", "ema_decay"):
            optional(check_range, name, getattr(self, name), 0.0, 1.0)
        optional(check_range, "crop_scale", self.crop_scale, 0.0, 1.0, low_open=True)
        for name in ("drop_path_rate", "dropout"):
            optional(check_range, name, getattr(self, name), 0.0, 1.0, high_open=True)
        self.data_spec().check()  # the data settings: source, task, seed, fractions, per-class cap
        optional(check_choice, "padding", self.padding, ("symmetric", "same"))

    def data_spec(self) -> DataSpec:
        """The run's data settings as one value (what :func:`effnet.data.load_data` reads)."""
        return DataSpec(self.data, task=self.task, seed=self.seed, val_fraction=self.val_fraction,
                        test_fraction=self.test_fraction, limit_per_class=self.limit_per_class,
                        skip_bad_images=self.skip_bad_images)

    # ----- construction -----------------------------------------------------------------
    @classmethod
    def for_model(cls, model: Any = "efficientnet_b0", **overrides: Any) -> "TrainConfig":
        """The recipe for a variant: its resolution and dropout, the paper's settings for the rest.

        ``model`` is a registered name, a description JSON path or a :class:`effnet.arch.Network`
        (then ``model`` in the config is its name; pass ``model=PATH`` to record a file).
        """
        from ..factory import resolve_description  # lazy: torch only when a model is named

        desc = resolve_description(model)
        unknown = sorted(set(overrides) - set(cls.field_names()))
        if unknown:
            raise ValueError(_unknown_message(unknown))
        base = {"model": desc.name if isinstance(model, Network) else str(model),
                "img_size": desc.resolution, "dropout": desc.dropout}
        base.update(overrides)
        return cls(**base)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def override(self, items: Iterable[str] | dict[str, Any]) -> "TrainConfig":
        """A copy with ``key=value`` strings (or a mapping) applied; values are parsed by field type."""
        if isinstance(items, dict):
            changes = dict(items)
        else:
            changes = {}
            for item in items:
                if not isinstance(item, str) or "=" not in item:
                    raise ValueError(f"expected key=value, got {item!r}")
                key, value = item.split("=", 1)
                changes[key.strip().replace("-", "_")] = value.strip()
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ValueError(_unknown_message(unknown))
        return replace(self, **changes)

    @classmethod
    def from_file(cls, path: str | Path, base: "TrainConfig | None" = None) -> "TrainConfig":
        """Read a YAML or JSON mapping of config keys (applied over ``base`` or the defaults)."""
        p = Path(path)
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read config {p}: {exc}") from None
        try:
            data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"config {p} is not valid {'JSON' if p.suffix == '.json' else 'YAML'}: "
                             f"{str(exc).splitlines()[0]}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"config {p} must be a mapping of key: value")
        data = {k: v for k, v in data.items() if k not in RECORD_KEYS}
        try:
            return (base or cls()).override(data)
        except ValueError as exc:
            raise ValueError(f"config {p}: {exc}") from None

    # ----- output -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, run_dir: str | Path, decisions: dict[str, Any] | None = None) -> None:
        """Write ``config.yaml`` and ``config.json`` into ``run_dir`` (atomically).

        ``decisions`` (the recipe's choices and reasons, ``Recipe.record()``) are stored under the
        key ``decisions``; :meth:`from_file` reads them back as a record, not as settings.
        """
        run_dir = Path(run_dir)
        data = self.to_dict()
        if decisions:
            data["decisions"] = decisions
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(data, sort_keys=False))
        atomic_write_text(run_dir / "config.json", json.dumps(data, indent=2) + "\n")

    # ----- derived values ---------------------------------------------------------------
    def undecided(self) -> list[str]:
        """The recipe keys still ``None`` (decided by ``effnet.train.recipe.decide``)."""
        return [k for k in ("batch_size", *DECIDED_KEYS) if getattr(self, k) is None]

    def batch(self) -> int:
        """The global batch: ``batch_size``, or :data:`DEFAULT_BATCH` while the recipe has not decided it."""
        return self.batch_size if self.batch_size is not None else DEFAULT_BATCH

    def peak_lr(self) -> float:
        """The learning rate after warm-up: ``lr``, or ``lr_per_256`` per 256 images of the global batch."""
        if self.lr is not None:
            return self.lr
        if self.lr_per_256 is None:
            raise ValueError("lr_per_256 is undecided: resolve the recipe first (effnet.train.recipe.decide)")
        return self.lr_per_256 * self.batch() / 256.0


# ----- parsing helpers ---------------------------------------------------------------------

_TYPES: dict[str, Any] = {}
#: Optional keys for which the string "none" is a value (no augmentation policy), not "unset".
_NONE_IS_A_VALUE = ("augment",)


def _field_types() -> dict[str, Any]:
    if not _TYPES:
        _TYPES.update(typing.get_type_hints(TrainConfig))
    return _TYPES


def _unknown_message(keys: list[str]) -> str:
    return f"unknown config key(s): {', '.join(keys)} (see `effnet train --help` for the keys)"


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Parse ``value`` (a string from the command line, or a YAML/JSON value) to the field's type."""
    args = typing.get_args(tp)
    optional = (typing.get_origin(tp) in (typing.Union, types.UnionType)) and type(None) in args
    if optional:
        tp = next(a for a in args if a is not type(None))
        empty = ("null", "", "auto") if name in _NONE_IS_A_VALUE else ("none", "null", "")
        if value is None or (isinstance(value, str) and value.strip().lower() in empty):
            return None
    if value is None:
        raise ValueError(f"{name} cannot be empty")
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float, str)):
            return str(value)
        raise ValueError(f"{name} must be a string, got {value!r}")
    raise TypeError(f"unsupported config field type {tp!r}")  # pragma: no cover - a coding error

