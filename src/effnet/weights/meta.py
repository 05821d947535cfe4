"""Metadata that travels with weights: how to prepare an image for the model. No torch import."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..checks import check_int

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")
#: The input size of a model that carries no preprocessing (ImageNet's usual).
DEFAULT_RESOLUTION = 224


#: The smallest image side any command accepts: every network here ends in a 1x1 map at or before
#: it, and the studies, the search and the deployment paths (ONNX export, INT8, OpenVINO) run there.
MIN_IMAGE_SIZE = 8


def input_size(model: object, size: int | None = None) -> int:
    """The image side to feed ``model``: ``size`` when given (at least :data:`MIN_IMAGE_SIZE`),
    else its preprocessing's resolution, else :data:`DEFAULT_RESOLUTION`."""
    if size is not None:
        return check_int("image size", size, MIN_IMAGE_SIZE)
    return getattr(getattr(model, "preprocessing", None), "resolution", None) or DEFAULT_RESOLUTION


@dataclass(frozen=True)
class Preprocessing:
    """Resize to ``resolution / crop_fraction``, centre-crop ``resolution``, normalise."""

    resolution: int = DEFAULT_RESOLUTION
    crop_fraction: float = 0.875
    interpolation: str = "bicubic"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    class_names: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        check_int("preprocessing resolution", self.resolution, 1)
        if not (isinstance(self.crop_fraction, (int, float)) and 0 < self.crop_fraction <= 1):
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "class_names", tuple(str(v) for v in self.class_names))
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            raise ValueError("preprocessing mean and std must have equal length and std > 0")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"], d["class_names"] = list(self.mean), list(self.std), list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        known = {"resolution", "crop_fraction", "interpolation", "mean", "std", "class_names"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"preprocessing has unknown key(s): {', '.join(unknown)}")
        return cls(**data)
