"""Frozen, typed descriptions of a network: stem, stages of blocks, head.

A description is pure data. It is scaled by :func:`effnet.arch.scale`, costed by
:func:`effnet.arch.cost`, built into a module by :func:`effnet.build` and stored as JSON.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterator

from ..checks import check_int
from .kinds import KINDS

#: Block operators a stage can use: one per module of :mod:`effnet.arch.kinds` (``mbconv``,
#: ``dsconv``, ``conv``, ``bottleneck``, ``fused_mbconv``, ...; each module says what its kind is).
OPS = tuple(KINDS)
ACTIVATIONS = ("silu", "relu", "relu6")
FORMAT = "effnet.arch"
FORMAT_VERSION = 1


def _check_float(name: str, value: Any, low: float, high: float, *, high_open: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and low <= value and (value < high if high_open else value <= high)
    if not ok:
        bound = ")" if high_open else "]"
        raise ValueError(f"{name} must be a finite number in [{low}, {high}{bound}, got {value!r}")


@dataclass(frozen=True)
class Stage:
    """One row of the paper's Table 1: ``repeats`` blocks of one operator.

    The first block of the stage has ``stride``; the others have stride 1.
    ``expand_ratio`` is the MBConv expansion, or the bottleneck width ratio for ``bottleneck``.
    ``se_ratio`` sizes squeeze-excite from the block *input* channels (0 disables it).
    ``skip`` allows the identity shortcut where shapes allow it.
    """

    op: str
    expand_ratio: float
    kernel: int
    stride: int
    out_channels: int
    repeats: int
    se_ratio: float = 0.0
    skip: bool = True

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"stage op must be one of {', '.join(OPS)}, got {self.op!r}")
        _check_float("expand_ratio", self.expand_ratio, 1e-6, 64.0)
        check_int("kernel", self.kernel, 1)
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {self.kernel}")
        if self.stride not in (1, 2) or isinstance(self.stride, bool):
            raise ValueError(f"stride must be 1 or 2, got {self.stride!r}")
        check_int("out_channels", self.out_channels, 1)
        check_int("repeats", self.repeats, 1)
        _check_float("se_ratio", self.se_ratio, 0.0, 1.0)
        if not isinstance(self.skip, bool):
            raise ValueError(f"skip must be true or false, got {self.skip!r}")


@dataclass(frozen=True)
class Stem:
    """The first convolution (and, for ResNet, a 3x3 stride-2 max-pool after it)."""

    out_channels: int
    kernel: int = 3
    stride: int = 2
    pool: bool = False

    def __post_init__(self) -> None:
        check_int("stem out_channels", self.out_channels, 1)
        check_int("stem kernel", self.kernel, 1)
        if self.kernel % 2 == 0:
            raise ValueError(f"stem kernel must be odd, got {self.kernel}")
        if self.stride not in (1, 2) or isinstance(self.stride, bool):
            raise ValueError(f"stem stride must be 1 or 2, got {self.stride!r}")
        if not isinstance(self.pool, bool):
            raise ValueError(f"stem pool must be true or false, got {self.pool!r}")


@dataclass(frozen=True)
class Block:
    """One concrete block, as :meth:`Network.blocks` expands the stages."""

    index: int  # global block index, 0-based
    stage: int
    op: str
    in_channels: int
    out_channels: int
    expand_ratio: float
    kernel: int
    stride: int
    se_ratio: float
    skip: bool
    divisor: int = 8

    @property
    def mid_channels(self) -> int:
        """Width of the block's inner feature map."""
        return KINDS[self.op].mid_channels(self)

    @property
    def has_expansion(self) -> bool:
        return KINDS[self.op].has_expansion(self)

    @property
    def se_channels(self) -> int:
        """Squeeze width: from the block input channels, as in the reference code."""
        return max(1, int(self.in_channels * self.se_ratio)) if self.se_ratio > 0 else 0

    @property
    def has_residual(self) -> bool:
        """Whether the block adds a shortcut (and so can be dropped by stochastic depth)."""
        return KINDS[self.op].has_residual(self)

    @property
    def has_projection_shortcut(self) -> bool:
        return KINDS[self.op].has_projection_shortcut(self)


@dataclass(frozen=True)
class Network:
    """A whole network: stem, stages, optional 1x1 head convolution, pooling, dropout, classifier."""

    name: str
    stem: Stem
    stages: tuple[Stage, ...]
    head_channels: int | None
    resolution: int
    dropout: float
    activation: str = "silu"
    num_classes: int = 1000
    fixed_stem_head: bool = False  # Lite: stem, head and first/last stage depth are not scaled
    divisor: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.stem, Stem):
            raise ValueError("stem must be a Stem")
        stages = tuple(self.stages)
        if not stages or not all(isinstance(s, Stage) for s in stages):
            raise ValueError("stages must be a non-empty sequence of Stage")
        object.__setattr__(self, "stages", stages)
        if self.head_channels is not None:
            check_int("head_channels", self.head_channels, 1)
        check_int("resolution", self.resolution, 1)
        _check_float("dropout", self.dropout, 0.0, 1.0)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        check_int("num_classes", self.num_classes, 0)
        if not isinstance(self.fixed_stem_head, bool):
            raise ValueError(f"fixed_stem_head must be true or false, got {self.fixed_stem_head!r}")
        check_int("divisor", self.divisor, 1)

    # ----- derived views -------------------------------------------------------------
    def blocks(self) -> Iterator[Block]:
        """Every block in order, with its input channels and stride resolved."""
        in_ch = self.stem.out_channels
        index = 0
        for s, stage in enumerate(self.stages):
            for r in range(stage.repeats):
                yield Block(
                    index=index, stage=s, op=stage.op, in_channels=in_ch,
                    out_channels=stage.out_channels, expand_ratio=stage.expand_ratio,
                    kernel=stage.kernel, stride=stage.stride if r == 0 else 1,
                    se_ratio=stage.se_ratio, skip=stage.skip, divisor=self.divisor,
                )
                in_ch = stage.out_channels
                index += 1

    @property
    def num_blocks(self) -> int:
        return sum(s.repeats for s in self.stages)

    @property
    def num_features(self) -> int:
        """Channels entering the classifier."""
        return self.head_channels if self.head_channels is not None else self.stages[-1].out_channels

    def stage_strides(self) -> list[int]:
        """Cumulative stride (reduction) at the output of each stage."""
        reduction = self.stem.stride * (2 if self.stem.pool else 1)
        out = []
        for stage in self.stages:
            reduction *= stage.stride
            out.append(reduction)
        return out

    # ----- JSON ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stages"] = [asdict(s) for s in self.stages]
        return {"format": FORMAT, "version": FORMAT_VERSION, **d}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> "Network":
        if not isinstance(data, dict):
            raise ValueError("architecture description must be a JSON object")
        data = dict(data)
        fmt = data.pop("format", FORMAT)
        version = data.pop("version", FORMAT_VERSION)
        if fmt != FORMAT:
            raise ValueError(f"not an effnet architecture description (format {fmt!r})")
        if version != FORMAT_VERSION:
            raise ValueError(f"unsupported description version {version!r} (this effnet reads {FORMAT_VERSION})")
        _check_keys("network", data, cls)
        for key in ("stem", "stages"):
            if key not in data:
                raise ValueError(f"network description is missing {key!r}")
        stem = data["stem"]
        if not isinstance(stem, dict):
            raise ValueError("stem must be an object")
        _check_keys("stem", stem, Stem)
        stages = data["stages"]
        if not isinstance(stages, list) or not stages:
            raise ValueError("stages must be a non-empty list")
        parsed = []
        for i, st in enumerate(stages):
            if not isinstance(st, dict):
                raise ValueError(f"stage {i} must be an object")
            _check_keys(f"stage {i}", st, Stage)
            try:
                parsed.append(Stage(**st))
            except TypeError as exc:
                raise ValueError(f"stage {i}: {exc}") from None
            except ValueError as exc:
                raise ValueError(f"stage {i}: {exc}") from None
        data["stem"] = Stem(**stem) if _has_required(stem, Stem) else _missing("stem", stem, Stem)
        data["stages"] = tuple(parsed)
        if not _has_required(data, cls):
            _missing("network", data, cls)
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "Network":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"architecture description is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Network":
        p = Path(path)
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read architecture description {p}: {exc}") from None
        try:
            return cls.from_json(text)
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from None

    def replace(self, **changes: Any) -> "Network":
        return replace(self, **changes)

    # ----- printing ------------------------------------------------------------------
    def table(self, resolution: int | None = None) -> str:
        """The description as the paper's Table 1: operator, input resolution, channels, layers."""
        res = resolution or self.resolution
        rows = [("Stage", "Operator", "Resolution", "#Channels", "#Layers")]
        size = res
        rows.append(("1", f"Conv{self.stem.kernel}x{self.stem.kernel}", f"{size}x{size}",
                     str(self.stem.out_channels), "1"))
        size = -(-size // self.stem.stride)
        if self.stem.pool:
            size = -(-size // 2)
        for i, st in enumerate(self.stages):
            rows.append((str(i + 2), _op_label(st), f"{size}x{size}", str(st.out_channels), str(st.repeats)))
            size = -(-size // st.stride)
        head = "Pooling & FC" if self.head_channels is None else "Conv1x1 & Pooling & FC"
        rows.append((str(len(self.stages) + 2), head, f"{size}x{size}",
                     str(self.head_channels or self.num_classes), "1"))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        lines = [f"{self.name}  ({self.activation}, dropout {self.dropout:g}, {self.num_classes} classes)"]
        for j, r in enumerate(rows):
            lines.append("  ".join(v.ljust(widths[c]) for c, v in enumerate(r)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.table()


def _op_label(st: Stage) -> str:
    k = f"k{st.kernel}x{st.kernel}"
    se = f", SE{st.se_ratio:g}" if st.se_ratio else ""
    if st.op == "mbconv":
        return f"MBConv{st.expand_ratio:g}, {k}{se}"
    if st.op == "dsconv":
        return f"DSConv, {k}{se}"
    if st.op == "conv":
        return f"Conv, {k}{se}"
    return f"Bottleneck{st.expand_ratio:g}, {k}{se}"


def _check_keys(what: str, data: dict, cls: type) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{what} has unknown key(s): {', '.join(unknown)}")


def _has_required(data: dict, cls: type) -> bool:
    from dataclasses import MISSING

    return all(f.name in data for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)


def _missing(what: str, data: dict, cls: type):
    from dataclasses import MISSING

    need = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING and f.name not in data]
    raise ValueError(f"{what} description is missing {', '.join(repr(n) for n in need)}")
