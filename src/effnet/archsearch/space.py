"""The architecture search space: MnasNet's factorised hierarchical space over a base description.

Each stage of the base network gets six independent decisions (the ``nas_objective`` space of the
paper's baseline search):

========  ======================================================================
op        ``conv`` (regular kxk), ``dsconv`` (depthwise separable), ``mbconv1``,
          ``mbconv3``, ``mbconv6`` (MBConv with expansion 1, 3, 6)
kernel    3 or 5
se        squeeze-excite ratio 0 or 0.25
skip      identity shortcut off or on (``Stage.skip``; it applies where shapes allow)
filters   output channels x0.75, x1.0, x1.25, rounded with ``make_divisible``
layers    repeats -1, 0, +1 relative to the base stage
========  ======================================================================

The stem, the head, the stage strides and the activation stay those of the base. A *choice
vector* holds one index per decision; :meth:`ArchSpace.decode` turns it into a
:class:`effnet.arch.Network` and :meth:`ArchSpace.encode` turns such a description back into the
vector. To keep the two a bijection, a decision never offers two values that give the same
description: a filter ratio that rounds to the same channel count as another is dropped (the
ratio nearer 1.0 is kept) and ``layers -1`` is not offered for a stage of one block.

Pure Python: no torch, no Optuna. Costing a vector uses the analytic :func:`effnet.arch.cost`.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Sequence

from ..arch import Cost, Network, Stage, cost, get_network, make_divisible

#: Operator choices: (name, Stage.op, Stage.expand_ratio).
OPS: tuple[tuple[str, str, float], ...] = (
    ("conv", "conv", 1.0),
    ("dsconv", "dsconv", 1.0),
    ("mbconv1", "mbconv", 1.0),
    ("mbconv3", "mbconv", 3.0),
    ("mbconv6", "mbconv", 6.0),
)
KERNELS = (3, 5)
SE_RATIOS = (0.0, 0.25)
SKIPS = (False, True)
FILTER_RATIOS = (0.75, 1.0, 1.25)
LAYER_DELTAS = (-1, 0, 1)
#: The decisions of one stage, in the order they appear in a choice vector.
FIELDS = ("op", "kernel", "se", "skip", "filters", "layers")
#: Base networks the space can be laid over.
BASES = ("efficientnet_b0", "mobilenet_v2")


@dataclass(frozen=True)
class Decision:
    """One categorical decision: a field of one stage and the values it may take."""

    stage: int
    field: str
    choices: tuple[Any, ...]  # JSON-able values: str, int, float or bool

    @property
    def name(self) -> str:
        return f"s{self.stage}_{self.field}"


def filter_options(channels: int, divisor: int = 8) -> tuple[tuple[float, int], ...]:
    """``(ratio, channels)`` pairs for a base channel count, one per distinct rounded count."""
    kept: dict[int, float] = {}
    for r in FILTER_RATIOS:
        ch = make_divisible(channels * r, divisor)
        if ch not in kept or abs(r - 1.0) < abs(kept[ch] - 1.0):
            kept[ch] = r
    return tuple(sorted(((r, ch) for ch, r in kept.items())))


class ArchSpace:
    """The factorised search space around ``base`` (a description or a registered name).

    ``resolution`` and ``num_classes`` are set on every decoded description (they are not
    searched); ``name`` prefixes the decoded descriptions' names.
    """

    def __init__(self, base: Network | str = "efficientnet_b0", *, resolution: int | None = None,
                 num_classes: int | None = None, name: str | None = None) -> None:
        if isinstance(base, str):
            if base not in BASES:
                raise ValueError(f"search base must be one of {', '.join(BASES)} or a description, got {base!r}")
            base = get_network(base)
        if not isinstance(base, Network):
            raise ValueError(f"search base must be a Network or a name, got {type(base).__name__}")
        if any(st.op == "bottleneck" for st in base.stages):
            raise ValueError("the search space replaces stage operators; a bottleneck base is not supported")
        changes: dict[str, Any] = {}
        if resolution is not None:
            changes["resolution"] = resolution
        if num_classes is not None:
            changes["num_classes"] = num_classes
        self.base = base.replace(**changes) if changes else base
        self.name = name or f"{self.base.name}_search"
        decisions: list[Decision] = []
        self._filters: list[tuple[tuple[float, int], ...]] = []
        for i, st in enumerate(self.base.stages):
            filters = filter_options(st.out_channels, self.base.divisor)
            self._filters.append(filters)
            layers = tuple(d for d in LAYER_DELTAS if st.repeats + d >= 1)
            decisions += [
                Decision(i, "op", tuple(name for name, _, _ in OPS)),
                Decision(i, "kernel", KERNELS),
                Decision(i, "se", SE_RATIOS),
                Decision(i, "skip", SKIPS),
                Decision(i, "filters", tuple(r for r, _ in filters)),
                Decision(i, "layers", layers),
            ]
        self.decisions: tuple[Decision, ...] = tuple(decisions)

    # ----- shape of the space --------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of choices of each decision."""
        return tuple(len(d.choices) for d in self.decisions)

    @property
    def num_architectures(self) -> int:
        return math.prod(self.sizes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.decisions)

    def __len__(self) -> int:
        return len(self.decisions)

    def __repr__(self) -> str:
        return (f"ArchSpace(base={self.base.name!r}, stages={len(self.base.stages)}, "
                f"decisions={len(self)}, architectures~{self.num_architectures:.2e})")

    # ----- choice vectors ------------------------------------------------------------
    def check(self, choices: Sequence[int]) -> tuple[int, ...]:
        """``choices`` as a tuple of ints, or ValueError naming the first bad entry."""
        choices = tuple(choices)
        if len(choices) != len(self.decisions):
            raise ValueError(f"choice vector has {len(choices)} entries, the space has {len(self.decisions)} decisions")
        for d, c in zip(self.decisions, choices):
            if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(d.choices):
                raise ValueError(f"choice for {d.name} must be an index in 0..{len(d.choices) - 1}, got {c!r}")
        return choices

    def values(self, choices: Sequence[int]) -> dict[str, Any]:
        """Decision name -> chosen value (the form Optuna stores as trial params)."""
        choices = self.check(choices)
        return {d.name: d.choices[c] for d, c in zip(self.decisions, choices)}

    def from_values(self, values: dict[str, Any]) -> tuple[int, ...]:
        """Inverse of :meth:`values`."""
        out = []
        for d in self.decisions:
            if d.name not in values:
                raise ValueError(f"missing value for decision {d.name}")
            v = values[d.name]
            # bool is an int in Python: False == 0, so compare the bool-ness as well as the value
            matches = [i for i, c in enumerate(d.choices) if c == v and isinstance(c, bool) == isinstance(v, bool)]
            if not matches:
                raise ValueError(f"{v!r} is not a choice of {d.name} ({', '.join(map(repr, d.choices))})")
            out.append(matches[0])
        return tuple(out)

    def base_choices(self) -> tuple[int, ...]:
        """The vector of the base network itself."""
        return self.encode(self.base)

    def sample(self, rng: random.Random) -> tuple[int, ...]:
        """A uniformly random choice vector."""
        return tuple(rng.randrange(n) for n in self.sizes)

    def code(self, choices: Sequence[int]) -> str:
        """A compact, readable label: one group per stage, e.g. ``m6k5e+1x1.25L+0``."""
        v = self.values(choices)
        parts = []
        for i in range(len(self.base.stages)):
            op = v[f"s{i}_op"]
            op = {"conv": "c", "dsconv": "d"}.get(op, "m" + op[-1])
            se = "e" if v[f"s{i}_se"] else ""
            skip = "+" if v[f"s{i}_skip"] else "-"
            parts.append(f"{op}k{v[f's{i}_kernel']}{se}{skip}x{v[f's{i}_filters']:g}L{v[f's{i}_layers']:+d}")
        return " ".join(parts)

    def decode(self, choices: Sequence[int], name: str | None = None) -> Network:
        """The description a choice vector stands for."""
        choices = self.check(choices)
        per = len(FIELDS)
        stages = []
        for i, base_stage in enumerate(self.base.stages):
            op_i, k_i, se_i, skip_i, f_i, l_i = choices[i * per:(i + 1) * per]
            _, op, expand = OPS[op_i]
            stages.append(Stage(
                op=op,
                expand_ratio=expand,
                kernel=KERNELS[k_i],
                stride=base_stage.stride,
                out_channels=self._filters[i][f_i][1],
                repeats=base_stage.repeats + self.decisions[i * per + 5].choices[l_i],
                se_ratio=SE_RATIOS[se_i],
                skip=SKIPS[skip_i],
            ))
        label = name or f"{self.name}_" + "".join(str(c) for c in choices)
        return self.base.replace(name=label, stages=tuple(stages))

    def encode(self, desc: Network) -> tuple[int, ...]:
        """The choice vector of a description in this space, or ValueError saying why it is not."""
        if not isinstance(desc, Network):
            raise ValueError(f"encode() takes an effnet.arch.Network, got {type(desc).__name__}")
        base = self.base
        if desc.stem != base.stem:
            raise ValueError(f"{desc.name}: stem differs from the base {base.name}")
        if desc.head_channels != base.head_channels or desc.activation != base.activation or desc.divisor != base.divisor:
            raise ValueError(f"{desc.name}: head, activation or divisor differ from the base {base.name}")
        if len(desc.stages) != len(base.stages):
            raise ValueError(f"{desc.name}: has {len(desc.stages)} stages, the base {base.name} has {len(base.stages)}")
        out: list[int] = []
        for i, (st, bs) in enumerate(zip(desc.stages, base.stages)):
            if st.stride != bs.stride:
                raise ValueError(f"{desc.name}: stage {i} stride {st.stride} differs from the base ({bs.stride})")
            op = [j for j, (_, o, e) in enumerate(OPS) if o == st.op and (o != "mbconv" or e == st.expand_ratio)]
            if not op:
                raise ValueError(f"{desc.name}: stage {i} operator {st.op} x{st.expand_ratio:g} is not in the space")
            if st.kernel not in KERNELS or st.se_ratio not in SE_RATIOS:
                raise ValueError(f"{desc.name}: stage {i} kernel {st.kernel} / SE {st.se_ratio:g} is not in the space")
            filters = [j for j, (_, ch) in enumerate(self._filters[i]) if ch == st.out_channels]
            if not filters:
                raise ValueError(f"{desc.name}: stage {i} has {st.out_channels} channels; the space allows "
                                 f"{', '.join(str(ch) for _, ch in self._filters[i])}")
            layers = self.decisions[i * len(FIELDS) + 5].choices
            if st.repeats - bs.repeats not in layers:
                raise ValueError(f"{desc.name}: stage {i} has {st.repeats} blocks; the space allows "
                                 f"{', '.join(str(bs.repeats + d) for d in layers)}")
            out += [op[0], KERNELS.index(st.kernel), SE_RATIOS.index(st.se_ratio), SKIPS.index(st.skip),
                    filters[0], layers.index(st.repeats - bs.repeats)]
        return tuple(out)

    def cost(self, choices: Sequence[int], resolution: int | None = None) -> Cost:
        """Analytic parameters and multiply-adds of a vector (at the space's resolution by default)."""
        return cost(self.decode(choices), resolution)


def reward(accuracy: float, macs: float, target_macs: float, w: float = -0.07) -> float:
    """MnasNet/EfficientNet objective ``ACC(m) * (FLOPs(m) / T) ** w`` (FLOPs = multiply-adds)."""
    if not (isinstance(target_macs, (int, float)) and target_macs > 0 and math.isfinite(target_macs)):
        raise ValueError(f"target MACs must be a positive number, got {target_macs!r}")
    if macs <= 0:
        raise ValueError(f"a network's MACs must be positive, got {macs!r}")
    return float(accuracy) * (float(macs) / float(target_macs)) ** float(w)
