"""Image datasets as lists of ``(path, label)``, the ``Splits`` container, and the readers for
image folders and CSV lists."""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from .images import load_image

__all__ = ["ImageDataset", "Splits", "read_image_folder", "read_csv_list", "IMG_EXTENSIONS"]

_CSV_PATH_HEADERS = {"path", "file", "filename", "filepath", "file_path", "image", "img", "image_path"}
_CSV_LABEL_HEADERS = {"label", "class", "class_name", "target", "category", "y"}
_INTEGER = re.compile(r"[+-]?\d+")


class ImageDataset(Dataset):
    """Images on disk with integer labels: yields ``(transform(load_image(path)), label)``.

    ``samples`` is the list of ``(path, label)``, ``targets`` the labels, ``classes`` the names
    (shared by all splits of one data set, so ``classes[label]`` names a label in every split).
    """

    def __init__(self, samples: Sequence[tuple[str, int]], classes: Sequence[str],
                 transform: Callable | None = None) -> None:
        self.samples = [(str(p), int(y)) for p, y in samples]
        self.classes = list(classes)
        self.transform = transform

    @property
    def targets(self) -> list[int]:
        return [y for _, y in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            image = load_image(path)
        except ValueError as exc:  # a data set can leave such files out; say how
            raise type(exc)(f"{exc} (skip_bad_images=True, on the command line --skip-bad-images, leaves unreadable "
                            "images out)") from exc
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} images, {len(self.classes)} classes)"


@dataclass
class Splits:
    """Train, validation and test datasets of one source, with the class names they share.

    ``skipped`` lists files left out because they could not be decoded (only with
    ``skip_bad_images=True``); ``source`` says where the data came from.
    """

    train: Dataset
    val: Dataset
    test: Dataset
    class_names: list[str]
    skipped: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self) -> dict[str, list[int]]:
        """Images per class in each split: ``{"train": [n_class0, ...], "val": [...], "test": [...]}``."""
        out = {}
        for name in ("train", "val", "test"):
            per_class = [0] * self.num_classes
            for y in getattr(self, name).targets:
                per_class[y] += 1
            out[name] = per_class
        return out

    def summary(self) -> str:
        """A small table of images per class and split, for printing."""
        counts = self.counts()
        width = max([len("class")] + [len(c) for c in self.class_names])
        lines = [f"data: {self.source}  ({self.num_classes} classes, {len(self.skipped)} unreadable files skipped)",
                 f"{'class':<{width}}  {'train':>7}  {'val':>7}  {'test':>7}"]
        for i, name in enumerate(self.class_names):
            lines.append(f"{name:<{width}}  " + "  ".join(f"{counts[s][i]:>7}" for s in ("train", "val", "test")))
        lines.append(f"{'total':<{width}}  " + "  ".join(f"{sum(counts[s]):>7}" for s in ("train", "val", "test")))
        return "\n".join(lines)


def _visible_image(path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(IMG_EXTENSIONS)


class _VisibleImageFolder(ImageFolder):
    """ImageFolder that ignores hidden folders (``.ipynb_checkpoints``, ``.DS_Store`` dirs)."""

    def find_classes(self, directory):
        classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
        if not classes:
            raise ValueError(f"no class folders in {directory} (expected one folder of images per class)")
        return classes, {name: i for i, name in enumerate(classes)}


def read_image_folder(root: str | Path) -> tuple[list[tuple[str, int]], list[str]]:
    """``root/<class>/<image>`` (torchvision ImageFolder layout) -> ``(samples, class names)``.

    Class names are the sorted folder names; files are those with an image extension
    (``IMG_EXTENSIONS``), hidden files and folders ignored. An empty class folder is an error.
    """
    root = Path(root)
    folder = _VisibleImageFolder(str(root), loader=load_image, is_valid_file=_visible_image, allow_empty=True)
    per_class = [0] * len(folder.classes)
    for _, y in folder.samples:
        per_class[y] += 1
    empty = [name for name, n in zip(folder.classes, per_class) if n == 0]
    if empty:
        raise ValueError(f"class folder(s) with no image files in {root}: {', '.join(empty)} "
                         f"(image extensions: {' '.join(IMG_EXTENSIONS)})")
    return [(str(p), int(y)) for p, y in folder.samples], list(folder.classes)


def _class_order(labels: set[str]) -> list[str]:
    if labels and all(_INTEGER.fullmatch(s) for s in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def read_csv_list(csv_path: str | Path) -> tuple[list[tuple[str, str, int]], list[str]]:
    """A CSV file of ``path,label`` rows -> ``([(path, label, line number), ...], class names)``.

    A first row such as ``path,label`` (or ``filename,class`` ...) is a header and skipped; blank
    rows and rows starting with ``#`` are ignored. Relative paths resolve against the CSV file's
    folder. Labels are class names; when all are integers they are ordered numerically (``2`` before
    ``10``), otherwise alphabetically, and the class index is the position in that order. Listing
    the same file twice is an error, since it could land in two splits.
    """
    csv_path = Path(csv_path)
    base = csv_path.parent
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{csv_path} is not a UTF-8 text file: {exc.reason}") from None
    rows: list[tuple[str, str, int]] = []
    seen: dict[str, int] = {}
    first = True
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not any(f.strip() for f in row) or row[0].lstrip().startswith("#"):
            continue
        where = f"{csv_path}:{line_no}"
        if len(row) != 2:
            raise ValueError(f"{where}: expected 2 fields 'path,label', got {len(row)}")
        path_text, label = row[0].strip(), row[1].strip()
        if first:
            first = False
            if path_text.lower() in _CSV_PATH_HEADERS and label.lower() in _CSV_LABEL_HEADERS:
                continue
        if not path_text:
            raise ValueError(f"{where}: empty image path")
        if not label:
            raise ValueError(f"{where}: empty label for {path_text}")
        if _INTEGER.fullmatch(label):
            label = str(int(label))
        path = Path(path_text).expanduser()
        resolved = str(path if path.is_absolute() else base / path)
        if resolved in seen:
            raise ValueError(f"{where}: {path_text} is listed twice (also on line {seen[resolved]})")
        seen[resolved] = line_no
        rows.append((resolved, label, line_no))
    if not rows:
        raise ValueError(f"{csv_path} lists no images (expected 'path,label' rows)")
    classes = _class_order({label for _, label, _ in rows})
    return rows, classes
