"""Strict loading of a state dict (in effnet's naming) into a module, with short, exact errors."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from ..checks import check_int

STEM_WEIGHT = "stem.conv.weight"
_HEAD_PREFIXES = ("head.", "classifier.")
_SHOWN = 3  # mismatches named in an error; the rest are counted


def adapt_stem_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """A stem convolution weight trained on RGB (``[C, 3, k, k]``) for ``in_chans`` input channels.

    * 1 channel: the sum over R, G and B, so a grey image gives the response its RGB copy gave.
    * 2 channels: R plus half of B, and G plus half of B; again the sum over input channels (and so
      the response to a constant image) is unchanged.
    * more than 3: R, G, B repeated cyclically (channel i takes colour i mod 3), scaled by 3/N.
    * 3: unchanged.
    """
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"only a 3-channel stem weight can be adapted, got shape {list(weight.shape)}")
    check_int("in_chans", in_chans, 1)
    if in_chans == 3:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    if in_chans == 2:
        half_blue = weight[:, 2:3] / 2
        return torch.cat([weight[:, 0:1] + half_blue, weight[:, 1:2] + half_blue], dim=1)
    index = torch.arange(in_chans) % 3
    return weight[:, index] * (3.0 / in_chans)


def _shape(t: torch.Tensor) -> str:
    return str(list(t.shape))


def load_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> nn.Module:
    """Load ``state_dict`` (effnet key names) into ``model``, strictly; ``source`` names it in errors.

    A 3-channel stem weight is adapted to ``model.in_chans`` (see :func:`adapt_stem_weight`); head and
    classifier tensors are skipped when the model is ``features_only``; BatchNorm
    ``num_batches_tracked`` counters absent from older checkpoints keep the model's. Anything else
    that does not fit (a tensor missing, left over or of another shape) raises one ``ValueError``
    naming the first few, e.g. ``checkpoint does not fit efficientnet_b0: stages.1.0.expand.conv.weight
    is [96, 16, 1, 1] in the checkpoint, [144, 24, 1, 1] in the model (and 212 more)``.
    """
    expected = model.state_dict()
    state = dict(state_dict)
    if getattr(model, "features_only", False):
        state = {k: v for k, v in state.items() if k in expected or not k.startswith(_HEAD_PREFIXES)}
    in_chans = getattr(model, "in_chans", 3)
    stem = state.get(STEM_WEIGHT)
    if (stem is not None and STEM_WEIGHT in expected and stem.ndim == 4 and stem.shape[1] == 3
            and in_chans != 3 and expected[STEM_WEIGHT].shape[1] == in_chans):
        state[STEM_WEIGHT] = adapt_stem_weight(stem, in_chans)
    for k, v in expected.items():
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = v

    # tensors of another shape say most about the difference, so they are named first
    problems = [f"{k} is {_shape(state[k])} in the checkpoint, {_shape(v)} in the model"
                for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems += [f"{k} is missing from the checkpoint" for k in expected if k not in state]
    problems += [f"{k} is in the checkpoint but not in the model" for k in state if k not in expected]
    if problems:
        name = getattr(getattr(model, "desc", None), "name", type(model).__name__)
        raise ValueError(_mismatch_message(name, source, problems, state, expected))
    model.load_state_dict(state, strict=True)
    return model


def _mismatch_message(name: str, source: str, problems: list[str], state: Mapping[str, torch.Tensor],
                      expected: Mapping[str, torch.Tensor]) -> str:
    shown = problems[:_SHOWN]
    lines = [f"{source} does not fit {name}: {shown[0]}"] + [f"  {p}" for p in shown[1:]]
    if len(problems) > _SHOWN:
        lines[-1] += f" (and {len(problems) - _SHOWN} more)"
    if all(p.startswith("classifier.") for p in problems) and "classifier.weight" in state:
        got = state["classifier.weight"].shape[0]
        want = expected["classifier.weight"].shape[0] if "classifier.weight" in expected else 0
        lines.append(f"  the checkpoint has {got} classes, the model {want}; create the model with "
                     f"num_classes={got}, or pass num_classes to create_model(..., pretrained=...) to replace the classifier")
    elif STEM_WEIGHT in state and STEM_WEIGHT in expected and state[STEM_WEIGHT].shape[1] != expected[STEM_WEIGHT].shape[1] \
            and state[STEM_WEIGHT].shape[1] != 3:
        lines.append(f"  the checkpoint takes {state[STEM_WEIGHT].shape[1]} input channels; "
                     f"create the model with in_chans={state[STEM_WEIGHT].shape[1]}")
    return "\n".join(lines)
