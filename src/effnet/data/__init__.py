"""Data: image datasets (image folders, CSV lists, the bundled ELPV solar-cell set, synthetic
images), deterministic stratified splits, robust image decoding, and transforms derived from a
model's preprocessing metadata.

    from effnet.data import load_splits
    splits = load_splits("elpv", img_size=224, limit_per_class=50)
    image, label = splits.train[0]        # normalised float tensor 3 x 224 x 224, int
"""
from .datasets import ImageDataset, Splits, read_csv_list, read_image_folder
from .elpv import ELPV_TASKS, elpv_records, elpv_root
from .images import check_image, load_image, to_rgb
from .splits import load_splits, split_sizes
from .synthetic import SyntheticDataset, synthetic_splits
from .transforms import AUGMENTATIONS, crop_scale_for, eval_resize_size, make_transforms

__all__ = [
    "AUGMENTATIONS", "ELPV_TASKS", "ImageDataset", "Splits", "SyntheticDataset", "check_image",
    "crop_scale_for", "elpv_records", "elpv_root", "eval_resize_size", "load_image", "load_splits", "make_transforms",
    "read_csv_list", "read_image_folder", "split_sizes", "synthetic_splits", "to_rgb",
]
