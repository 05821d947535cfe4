"""Data: image datasets (image folders, CSV lists, the bundled ELPV solar-cell set, Fashion-MNIST,
synthetic images), the data settings as one value (:class:`DataSpec`), deterministic stratified
splits, robust image decoding, and transforms derived from a model's preprocessing metadata.

    from effnet.data import DataSpec, load_data
    splits = load_data(DataSpec("elpv", limit_per_class=50), img_size=224)
    image, label = splits.train[0]        # normalised float tensor 3 x 224 x 224, int

Submodules load on first use: :mod:`effnet.data.spec` is torch-free, so a configuration can hold
a ``DataSpec`` without importing torch.
"""
from __future__ import annotations

from ..lazy import lazy_getattr

_LAZY = {
    "DataSpec": "spec", "split_sizes": "spec", "VAL_FRACTION": "spec", "TEST_FRACTION": "spec",
    "ImageDataset": "datasets", "Splits": "datasets", "read_csv_list": "datasets", "read_image_folder": "datasets",
    "ELPV_TASKS": "elpv", "elpv_records": "elpv", "elpv_root": "elpv",
    "check_image": "images", "load_image": "images", "to_rgb": "images",
    "load_data": "splits", "load_splits": "splits",
    "SyntheticDataset": "synthetic", "synthetic_splits": "synthetic",
    "AUGMENTATIONS": "transforms", "crop_scale_for": "transforms", "eval_resize_size": "transforms",
    "make_transforms": "transforms",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
