"""Scoring a model on a data set (top-1, top-5, per class, confusion) and the confusion-matrix plot."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..fsutil import atomic_savefig
from .runtime import unwrap
from .sampling import eval_loader


def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 64, *, device: torch.device | None = None,
             amp_dtype: torch.dtype | None = None, channels_last: bool = False,
             num_classes: int | None = None, workers: int = 0, predictions: bool = False) -> dict[str, Any]:
    """Top-1, top-5 (5 or more classes), per-class accuracy, confusion matrix and mean cross-entropy.

    ``per_class[k]`` is the accuracy on images of class ``k`` (``None`` when the set has none);
    ``confusion[true][predicted]`` counts images. With ``predictions=True`` the result also holds
    ``pred`` and ``target``: the predicted and true class of every image, in the data set's order.
    The model's train/eval mode is restored.
    """
    if len(dataset) == 0:
        raise ValueError("the evaluation set is empty")
    model = unwrap(model)
    device = device or next((p.device for p in model.parameters()), torch.device("cpu"))
    classes = num_classes or getattr(model, "num_classes", 0) or None
    was_training = model.training
    model.eval()
    confusion: torch.Tensor | None = None
    loss_sum, top5_hits, n = 0.0, 0, 0
    preds: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    loader = eval_loader(dataset, batch_size, workers=workers, pin_memory=device.type == "cuda")
    try:
        with torch.inference_mode():
            for x, y in loader:
                x = x.to(device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits = model(x)
                logits = logits.float().cpu()
                y = torch.as_tensor(y, dtype=torch.long)
                if classes is None:
                    classes = logits.shape[1]
                if confusion is None:
                    confusion = torch.zeros(classes, classes, dtype=torch.long)
                if int(y.max()) >= classes:
                    raise ValueError(f"label {int(y.max())} is outside the model's {classes} classes")
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                pred = logits.argmax(1)
                if predictions:
                    preds.append(pred)
                    targets.append(y)
                confusion += torch.bincount(y * classes + pred, minlength=classes * classes).view(classes, classes)
                if classes >= 5:
                    top5_hits += int((logits.topk(5, dim=1).indices == y[:, None]).any(1).sum())
                n += len(y)
    finally:
        model.train(was_training)
    assert confusion is not None
    support = confusion.sum(1)
    correct = confusion.diag()
    out: dict[str, Any] = {
        "top1": float(correct.sum()) / n,
        "per_class": [float(c) / float(s) if s else None for c, s in zip(correct.tolist(), support.tolist())],
        "confusion": confusion.tolist(),
        "loss": loss_sum / n,
        "n": n,
    }
    if classes >= 5:
        out["top5"] = top5_hits / n
    if predictions:
        out["pred"] = torch.cat(preds).tolist()
        out["target"] = torch.cat(targets).tolist()
    return out


def plot_confusion(confusion: list[list[int]], class_names: list[str], path: Path, title: str = "") -> None:
    """A confusion-matrix heat map with counts, rows true class, columns predicted (PNG, written atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = len(confusion)
    size = max(4.0, 0.6 * k + 2.5)
    fig = Figure(figsize=(size, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    data = torch.tensor(confusion, dtype=torch.float64)
    ax.imshow(data.numpy(), cmap="Blues")
    peak = float(data.max()) if data.numel() else 0.0
    for i in range(k):
        for j in range(k):
            value = int(confusion[i][j])
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                    color="white" if value > peak / 2 else "black")
    names = class_names if len(class_names) == k else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=9, wrap=True)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
