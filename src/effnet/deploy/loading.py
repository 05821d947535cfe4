"""Turn a command-line model argument into a model: a name, a description JSON or a checkpoint."""
from __future__ import annotations

from pathlib import Path

from torch import nn


def load_model_arg(spec: str | Path, pretrained: bool = False) -> nn.Module:
    """An eval-mode model from ``spec``.

    ``spec`` is a registered name (``efficientnet_b0``), a description ``.json`` file, or a
    checkpoint written by ``effnet.weights.save_model`` (its description, preprocessing and class
    names come from the file). ``pretrained`` loads effnet's offline ImageNet weights for a name.
    """
    from ..factory import create_model

    text = str(spec)
    path = Path(text).expanduser()
    if path.exists() and path.suffix.lower() != ".json":
        from ..weights import load_model

        if pretrained:
            raise ValueError(f"--pretrained applies to model names; {text} is a checkpoint and already has weights")
        model = load_model(path)
    else:
        if text.endswith(".json") and not path.exists():
            raise ValueError(f"description file not found: {text}")
        model = create_model(text, pretrained=pretrained)
    return model.eval()


def class_names_of(model: nn.Module, num_classes: int) -> list[str]:
    """The model's class names, or ``class_<i>`` when it carries none (or the count differs)."""
    names = list(getattr(getattr(model, "preprocessing", None), "class_names", ()) or ())
    if len(names) != num_classes:
        names = [f"class_{i}" for i in range(num_classes)]
    return names
