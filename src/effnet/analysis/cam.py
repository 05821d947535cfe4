"""Class activation maps (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017) on the last
feature map, and a figure comparing models image by image as in the paper's Figure 7.

CAM weights the final feature map by the classifier row of the class: it needs global average
pooling followed by a linear classifier, which every effnet classifier has. Grad-CAM weights it
by the spatial mean of the class score's gradient; for that same head the gradient is the
classifier row divided by the number of positions, so Grad-CAM equals CAM up to a positive scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data import load_image, make_transforms
from ..deploy.loading import class_names_of, load_model_arg
from ..fsutil import atomic_savefig

METHODS = ("cam", "gradcam")


@dataclass
class CamResult:
    maps: torch.Tensor  # N x H x W, each in [0, 1], at the input size
    raw: torch.Tensor  # N x h x w, before ReLU, upsampling and normalisation
    classes: list[int]
    probabilities: list[float]


def _check_head(model: nn.Module) -> None:
    if getattr(model, "features_only", False) or not isinstance(getattr(model, "classifier", None), nn.Linear):
        raise ValueError("class activation maps need a classifier model (global pooling and a linear classifier)")


def normalise_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map (N x H x W) to [0, 1] by its own minimum and maximum; flat maps become 0."""
    flat = maps.flatten(1)
    low = flat.min(1).values.view(-1, 1, 1)
    span = (flat.max(1).values.view(-1, 1, 1) - low)
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


def class_activation_maps(model: nn.Module, x: torch.Tensor, method: str = "cam",
                          target: Sequence[int] | None = None) -> CamResult:
    """Heat maps of ``target`` classes (default: the predicted ones) for the batch ``x``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    _check_head(model)
    model = model.eval()
    with torch.enable_grad():
        with torch.no_grad():
            feats = model.forward_features(x)
        feats.requires_grad_(method == "gradcam")  # gradients are needed only from the head onwards
        logits = model.forward_head(feats)
        probs = logits.detach().softmax(1)
        classes = list(target) if target is not None else probs.argmax(1).tolist()
        if len(classes) != x.shape[0]:
            raise ValueError(f"target gives {len(classes)} classes for {x.shape[0]} images")
        idx = torch.as_tensor(classes, dtype=torch.long)
        if method == "cam":
            weights = model.classifier.weight.detach()[idx]  # N x C
        else:
            score = logits.gather(1, idx[:, None]).sum()
            (grad,) = torch.autograd.grad(score, feats)
            weights = grad.mean((2, 3))  # N x C
    raw = torch.einsum("nc,nchw->nhw", weights, feats.detach())
    up = F.interpolate(raw.clamp_min(0)[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return CamResult(normalise_maps(up), raw, classes, probs.gather(1, idx[:, None])[:, 0].tolist())


def _display_image(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]):
    m = torch.tensor(mean).view(-1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1)
    img = (x * s + m).clamp(0, 1)
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    return img.permute(1, 2, 0).numpy()


def cam_figure(images: Sequence[str | Path], models: Sequence[str | Path | nn.Module], out: str | Path,
               method: str = "cam", labels: Sequence[str] | None = None, pretrained: bool = False) -> Path:
    """A PNG grid: one row per model, one column per image, the heat map over each image and the
    predicted class (with its probability) as the title. Each model sees the image resized and
    centre-cropped at its own resolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not images:
        raise ValueError("no images given")
    if not models:
        raise ValueError("no models given")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    pil = [load_image(p) for p in images]
    fig, axes = plt.subplots(len(models), len(images), figsize=(2.6 * len(images), 2.9 * len(models)),
                             squeeze=False)
    for row, spec in enumerate(models):
        model = spec if isinstance(spec, nn.Module) else load_model_arg(spec, pretrained=pretrained)
        _check_head(model)
        prep = model.preprocessing
        tf = make_transforms(prep, prep.resolution, train=False)
        x = torch.stack([tf(im) for im in pil])
        result = class_activation_maps(model, x, method)
        names = class_names_of(model, model.num_classes)
        label = labels[row] if labels else (Path(str(spec)).stem if not isinstance(spec, nn.Module) else model.desc.name)
        for col in range(len(images)):
            ax = axes[row][col]
            ax.imshow(_display_image(x[col], prep.mean, prep.std))
            ax.imshow(result.maps[col].numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
            cls = names[result.classes[col]]
            ax.set_title(f"{cls[:28]} ({result.probabilities[col]:.0%})", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"{label}\n{prep.resolution}px", fontsize=8)
    fig.suptitle(f"{'CAM' if method == 'cam' else 'Grad-CAM'} on the last feature map (predicted class)", fontsize=9)
    fig.tight_layout()
    target = atomic_savefig(fig, out, dpi=100)
    plt.close(fig)
    return target
