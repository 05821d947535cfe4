"""Top-k predictions for image files, with the preprocessing that travels with the model."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from ..data import load_image, make_transforms
from ..errors import EffnetError
from ..weights.meta import input_size
from .loading import class_names_of


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image, or the reason it could not be read."""

    path: str
    labels: tuple[str, ...] = ()
    indices: tuple[int, ...] = ()
    probabilities: tuple[float, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, "top_k": [{"label": l, "index": i, "probability": p}
                                             for l, i, p in zip(self.labels, self.indices, self.probabilities)]}


@dataclass
class PredictRun:
    predictions: list[Prediction]
    img_size: int
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Prediction]:
        return [p for p in self.predictions if p.error is not None]


def predict_files(model: nn.Module, paths: Sequence[str | Path], top_k: int = 5, batch_size: int = 8,
                  img_size: int | None = None, runner: Callable[[np.ndarray], np.ndarray] | None = None) -> PredictRun:
    """Classify each image file; unreadable files get ``Prediction.error`` and the rest still run.

    Images are resized and centre-cropped as ``model.preprocessing`` says, at ``img_size``
    (default: the model's own resolution; a different size is allowed and noted in ``warnings``).
    ``runner`` (float32 NCHW batch -> logits, :func:`effnet.deploy.paths.build_runner`) runs the
    model another way; by default it runs in PyTorch with BatchNorm folded and channels_last.
    """
    for name, value in (("top_k", top_k), ("batch_size", batch_size)):
        check_int(name, value, 1)
    if not paths:
        raise ValueError("no image files given")
    prep = getattr(model, "preprocessing", None)
    own = getattr(prep, "resolution", None)
    size = input_size(model, img_size)
    warnings: list[str] = []
    if img_size is not None and own is not None and img_size != own:
        warnings.append(f"--img-size {img_size} differs from the model's own resolution {own}; "
                        "accuracy may be lower than at the trained size")
    transform = make_transforms(prep, size, train=False)
    model = model.eval()
    if runner is None and hasattr(model, "optimize_for_inference"):
        model = model.optimize_for_inference()  # BatchNorm folded, channels_last: same outputs, faster
    results: dict[int, Prediction] = {}
    pending: list[tuple[int, torch.Tensor]] = []
    names: list[str] | None = None

    def flush() -> None:
        nonlocal names
        if not pending:
            return
        batch = torch.stack([t for _, t in pending])
        if runner is not None:
            probs = torch.from_numpy(np.asarray(runner(batch.numpy()))).float().softmax(dim=1)
        else:
            with torch.inference_mode():
                probs = model(batch).float().softmax(dim=1)
        if names is None:
            names = class_names_of(model, probs.shape[1])
        k = min(top_k, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        for (i, _), v, idx in zip(pending, values.tolist(), indices.tolist()):
            results[i] = Prediction(str(paths[i]), tuple(names[j] for j in idx), tuple(idx), tuple(v))
        pending.clear()

    for i, path in enumerate(paths):
        try:
            image = load_image(path)
        except (ValueError, OSError) as exc:
            results[i] = Prediction(str(path), error=str(exc))
            continue
        pending.append((i, transform(image)))
        if len(pending) == batch_size:
            flush()
    flush()
    return PredictRun([results[i] for i in range(len(paths))], size, warnings)


def image_views(model: nn.Module, paths: Sequence[str | Path], img_size: int, per_image: int = 4) -> np.ndarray:
    """``per_image`` random crops (seeded) of each readable image file through the model's
    preprocessing: in-domain calibration images for INT8. Unreadable files are left out."""
    torch.manual_seed(0)
    tf = make_transforms(getattr(model, "preprocessing", None), img_size, train=True, augment="none")
    views = []
    for path in paths:
        try:
            image = load_image(path)
        except (ValueError, OSError):
            continue
        views += [tf(image) for _ in range(per_image)]
    if not views:
        raise EffnetError("no readable image to calibrate INT8 on")
    return torch.stack(views).numpy()
