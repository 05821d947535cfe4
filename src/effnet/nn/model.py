"""Build a ``torch.nn.Module`` from a network description."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ..arch import Network
from ..checks import check_int
from .blocks import NormOptions, make_block
from .layers import PADDINGS, ConvNormAct, make_max_pool


@dataclass(frozen=True)
class FeatureInfo:
    """One feature level: where it is taken, its channels and its stride relative to the input."""

    name: str  # "stem" or "stages.<i>"
    channels: int
    reduction: int


def feature_levels(desc: Network) -> list[FeatureInfo]:
    """The last point at each distinct stride: stem output, then stage outputs."""
    points = [FeatureInfo("stem", desc.stem.out_channels, desc.stem.stride)]
    for i, (stage, red) in enumerate(zip(desc.stages, desc.stage_strides())):
        points.append(FeatureInfo(f"stages.{i}", stage.out_channels, red))
    levels: dict[int, FeatureInfo] = {}
    for p in points:
        levels[p.reduction] = p  # later points at the same stride replace earlier ones
    return [levels[r] for r in sorted(levels)]


class EfficientNet(nn.Module):
    """Any described network: stem, stages of blocks, optional 1x1 head, pooling, dropout, classifier.

    With ``features_only`` the head and classifier are not built and ``forward`` returns the
    feature maps listed in ``feature_info``.
    """

    # TorchScript: ``features_only`` is fixed at build time, so ``forward`` compiles one return type;
    # ``num_classes`` reads the (non-tensor) description and is left out of the compiled module.
    __constants__ = ["features_only"]
    __jit_unused_properties__ = ["num_classes"]

    def __init__(
        self,
        desc: Network,
        *,
        num_classes: int | None = None,
        in_chans: int = 3,
        drop_rate: float | None = None,
        drop_path_rate: float = 0.2,
        padding: str = "symmetric",
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.01,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
        check_int("in_chans", in_chans, 1)
        if not (isinstance(drop_path_rate, (int, float)) and 0.0 <= drop_path_rate < 1.0):
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate!r}")
        if num_classes is not None:
            desc = desc.replace(num_classes=num_classes)
        if drop_rate is not None:
            desc = desc.replace(dropout=drop_rate)
        self.desc = desc
        self.in_chans = in_chans
        self.padding = padding
        self.features_only = features_only
        opts = NormOptions(act=desc.activation, padding=padding, bn_eps=bn_eps, bn_momentum=bn_momentum)

        self.stem = opts.cna(in_chans, desc.stem.out_channels, desc.stem.kernel, desc.stem.stride)
        self.stem_pool = make_max_pool(3, 2, padding) if desc.stem.pool else nn.Identity()

        total = desc.num_blocks
        stages: list[nn.Module] = []
        current: list[nn.Module] = []
        for block in desc.blocks():
            if block.stage != len(stages) and current:
                stages.append(nn.Sequential(*current))
                current = []
            # stochastic depth rises linearly with the global block index
            current.append(make_block(block, opts, drop_path_rate * block.index / total))
        stages.append(nn.Sequential(*current))
        self.stages = nn.Sequential(*stages)

        levels = feature_levels(desc)
        if out_indices is None:
            out_indices = range(len(levels))
        out_indices = list(out_indices)
        for i in out_indices:
            if isinstance(i, bool) or not isinstance(i, int) or not -len(levels) <= i < len(levels):
                raise ValueError(f"out_indices entry {i!r} is outside 0..{len(levels) - 1}")
        self.feature_info = [levels[i] for i in out_indices]
        self._taps = [f.name for f in self.feature_info]

        if features_only:
            self.head = nn.Identity()
            self.num_features = desc.stages[-1].out_channels
            self.pool = nn.Identity()
            self.dropout = nn.Identity()
            self.classifier = nn.Identity()
        else:
            self.head = (opts.cna(desc.stages[-1].out_channels, desc.head_channels, 1)
                         if desc.head_channels is not None else nn.Identity())
            self.num_features = desc.num_features
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.dropout = nn.Dropout(desc.dropout) if desc.dropout > 0 else nn.Identity()
            self.classifier = nn.Linear(self.num_features, desc.num_classes) if desc.num_classes else nn.Identity()
        init_weights(self)

    # ------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return 0 if self.features_only else self.desc.num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, stages and head: the final feature map before pooling."""
        x = self.stem_pool(self.stem(x))
        x = self.stages(x)
        return self.head(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)
        x = self.dropout(x)
        return x if pre_logits else self.classifier(x)

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps at the levels in ``feature_info``."""
        out: list[torch.Tensor] = []
        x = self.stem(x)
        if "stem" in self._taps:
            out.append(x)
        x = self.stem_pool(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if f"stages.{i}" in self._taps:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor):
        if self.features_only:
            return self.forward_levels(x)
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int, zero_init: bool = True) -> None:
        """Replace the classifier with a new one for ``num_classes``.

        The new head starts at zero, so the first loss is ln(num_classes) and the features are
        trained by sensible gradients from the first step. The reference rule, uniform
        +-1/sqrt(num_classes) (``zero_init=False``), is tuned for 1000 classes: for a handful of
        classes it starts with logits of several units and a first loss of 4 to 7.
        """
        self.desc = self.desc.replace(num_classes=num_classes)
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        if zero_init and num_classes:
            nn.init.zeros_(self.classifier.weight)
            nn.init.zeros_(self.classifier.bias)
        else:
            init_weights(self.classifier)

    def optimize_for_inference(self, channels_last: bool = True, inplace: bool = False) -> "EfficientNet":
        """A copy (or, with ``inplace``, this model) prepared for fast inference on CPU and GPU.

        1. Eval mode: dropout and stochastic depth become identities, BatchNorm uses running statistics.
        2. Every convolution's BatchNorm is folded into it (``torch.nn.utils.fusion.fuse_conv_bn_eval``):
           the convolution gains a bias and ``bn`` becomes ``nn.Identity``, which removes one pass
           over every feature map. Module names stay, so the state dict keeps its layout, less the
           BatchNorm entries.
        3. With ``channels_last`` (the default) the weights are stored NHWC, the layout in which
           oneDNN runs the depthwise and 1x1 convolutions fastest on CPU (cuDNN's NHWC kernels are
           the GPU counterpart); inputs may stay NCHW (the first convolution's output follows the
           weights' layout). ``benchmarks/bench_inference.py`` measures each step's share on CPU.

        Outputs equal the eval-mode model's up to float rounding (about 1e-6 relative). The result
        is for inference only: training it would train a network without BatchNorm. Call it under
        ``torch.inference_mode()`` for the least overhead. Attributes such as ``preprocessing``
        travel with the copy.
        """
        import copy

        from torch.nn.utils.fusion import fuse_conv_bn_eval

        model = self if inplace else copy.deepcopy(self)
        model.eval()
        for module in model.modules():
            if isinstance(module, ConvNormAct) and isinstance(getattr(module, "bn", None), nn.BatchNorm2d):
                module.conv = fuse_conv_bn_eval(module.conv, module.bn)
                module.bn = nn.Identity()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model


def init_weights(module: nn.Module) -> None:
    """TensorFlow reference initialisation.

    Convolutions: normal(0, sqrt(2 / fan_out)) with fan_out = k*k*out/groups; dense layers:
    uniform(+-1/sqrt(out)); BatchNorm: weight 1, bias 0.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            r = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -r, r)
            nn.init.zeros_(m.bias)


def build(desc: Network, **kwargs: Any) -> EfficientNet:
    """Build any description (official, scaled, searched or hand-written)."""
    if not isinstance(desc, Network):
        raise ValueError(f"build() takes an effnet.arch.Network, got {type(desc).__name__}")
    return EfficientNet(desc, **kwargs)
