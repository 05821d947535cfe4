"""``load_splits``: any supported source -> deterministic, stratified train/val/test datasets."""
from __future__ import annotations

import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..checks import check_int, check_range, optional
from ..errors import EffnetError
from ..weights.meta import DEFAULT_RESOLUTION, Preprocessing
from .datasets import ImageDataset, Splits, read_csv_list, read_image_folder
from .spec import TEST_FRACTION, VAL_FRACTION, DataSpec, split_sizes
from .elpv import ELPV_TASKS, elpv_records
from .fashion_mnist import ArrayDataset, fashion_mnist_splits
from .images import check_image
from .synthetic import synthetic_splits
from .transforms import make_transforms

__all__ = ["load_data", "load_splits", "split_sizes", "SPLIT_FOLDERS"]

log = logging.getLogger(__name__)

#: Sub-folder names that mark a data folder as already split (aliases map to the split they name).
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}

Records = list[tuple[str, int]]


class _Selector:
    """Per-class, seeded order of a record list, capped at ``limit`` and, when ``skip`` is set,
    keeping only files that decode (checked in that order, stopping once the cap is reached)."""

    def __init__(self, seed: int, limit: int | None, skip: bool) -> None:
        self.seed, self.limit, self.skip = seed, limit, skip
        self.skipped: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) if skip else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def _readable(self, paths: list[str], need: int) -> list[int]:
        """Positions in ``paths`` of the first ``need`` files that decode; bad ones are recorded."""
        good: list[int] = []
        pos = 0
        while len(good) < need and pos < len(paths):
            batch = range(pos, min(len(paths), pos + max(need - len(good), 32)))
            pos = batch.stop
            for i, reason in zip(batch, self._pool.map(check_image, [paths[i] for i in batch])):
                if len(good) == need:
                    break
                if reason is None:
                    good.append(i)
                else:
                    log.warning("skipping unreadable file: %s", reason)
                    self.skipped.append(paths[i])
        return good

    def select(self, records: Records, classes: list[str], tag: str) -> list[list[int]]:
        """For each class, the indices into ``records`` that are kept, in a seeded random order.

        Python's ``random.Random`` seeded by ``(seed, tag, class name)`` drives a plain per-class
        shuffle: a stratified split needs nothing more (scikit-learn is not a dependency), and a
        class's split does not move when other classes are added or removed.
        """
        by_class: list[list[int]] = [[] for _ in classes]
        for i, (_, y) in enumerate(records):
            by_class[y].append(i)
        kept = []
        for name, order in zip(classes, by_class):
            order.sort(key=lambda i: records[i][0])
            random.Random(f"{self.seed}/{tag}/{name}").shuffle(order)
            need = len(order) if self.limit is None else min(self.limit, len(order))
            if self.skip and order:
                chosen = [order[p] for p in self._readable([records[i][0] for i in order], need)]
                if not chosen:
                    raise ValueError(f"class {name!r} has no readable images ({len(order)} files, all unreadable)")
            else:
                chosen = order[:need]
            kept.append(chosen)
        return kept


def _stratified(records: Records, kept: list[list[int]], val_fraction: float,
                test_fraction: float) -> tuple[Records, Records, Records]:
    train, val, test = [], [], []
    for idx in kept:
        n_val, n_test = split_sizes(len(idx), val_fraction, test_fraction)
        test += idx[:n_test]
        val += idx[n_test:n_test + n_val]
        train += idx[n_test + n_val:]
    return tuple([records[i] for i in sorted(part)] for part in (train, val, test))


def _flatten(records: Records, kept: list[list[int]]) -> Records:
    return [records[i] for i in sorted(i for idx in kept for i in idx)]


def _split_layout(root: Path) -> dict[str, Path] | None:
    """``{"train": path, "val": path, "test": path}`` (val/test optional) when ``root`` holds
    ``train/`` and no sub-folders other than split names; ``None`` for a plain class-folder layout."""
    subdirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    names = {p.name.lower(): p for p in subdirs}
    if "train" not in names or not all(n in SPLIT_FOLDERS for n in names):
        return None
    layout: dict[str, Path] = {}
    for name, path in sorted(names.items()):
        split = SPLIT_FOLDERS[name]
        if split in layout:
            raise ValueError(f"{root} has two folders for the {split} split: {layout[split].name} and {path.name}")
        layout[split] = path
    return layout


def _read_csv_source(path: Path, skip: bool, skipped: list[str]) -> tuple[Records, list[str]]:
    rows, classes = read_csv_list(path)
    index = {name: i for i, name in enumerate(classes)}
    records = []
    for file, label, line_no in rows:
        if not os.path.isfile(file):
            if not skip:
                raise ValueError(f"{path}:{line_no}: image file not found: {file}")
            log.warning("skipping missing file listed in %s:%d: %s", path, line_no, file)
            skipped.append(file)
            continue
        records.append((file, index[label]))
    present = {y for _, y in records}
    if skip and len(present) < len(classes):
        lost = [c for i, c in enumerate(classes) if i not in present]
        raise ValueError(f"{path}: no existing image files for class(es) {', '.join(lost)}")
    return records, classes


def _check_args(img_size, val_fraction, test_fraction, limit_per_class, seed) -> None:
    optional(check_int, "img_size", img_size, 1)
    check_range("val_fraction", val_fraction, 0.0, 1.0, high_open=True)
    check_range("test_fraction", test_fraction, 0.0, 1.0, high_open=True)
    if val_fraction + test_fraction >= 1:
        raise EffnetError(f"val_fraction + test_fraction must be below 1, got {val_fraction + test_fraction:g}")
    optional(check_int, "limit_per_class", limit_per_class, 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise EffnetError(f"seed must be an integer, got {seed!r}")


def load_splits(
    source: str | Path,
    *,
    img_size: int | None = None,
    preprocessing: Preprocessing | None = None,
    task: str = "default",
    augment: str = "autoaugment",
    crop_scale: float | None = None,
    seed: int = 0,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    skip_bad_images: bool = False,
    limit_per_class: int | None = None,
) -> Splits:
    """Train, validation and test datasets from ``source``.

    ``source`` is ``"elpv"`` (the bundled solar-cell data set; ``task`` ``"default"``/``"defect4"``
    or ``"binary"``, see ``effnet.data.elpv``), ``"fashion-mnist"`` (the official train/test split,
    validation carved from train; ``effnet.data.fashion_mnist``), ``"synthetic"`` (``synthetic_splits`` with
    ``limit_per_class`` or 8 training images per class), a folder of class folders
    (``root/<class>/<image>``), a folder with ``train/`` and optionally ``val/`` (or ``valid/``,
    ``validation/``) and ``test/`` each in class-folder layout, or a ``.csv`` file of ``path,label``
    rows. A local folder literally named ``elpv`` or ``synthetic`` is reached as ``./elpv``.

    Splitting is stratified and deterministic for ``seed``: each class is shuffled on its own and
    ``val_fraction`` / ``test_fraction`` of it (rounded; at least one image once a class has three)
    go to validation / test. Given ``train/val/test`` folders are used as they are; a missing val or
    test folder is carved from train the same way. ``limit_per_class`` caps each class (before
    splitting; per given split in the ``train/val/test`` layout), a seeded random choice.

    Images are decoded when drawn, so an unreadable file normally fails there with a message naming
    it. With ``skip_bad_images=True`` every file that would be used is decoded once here and the
    bad ones (and missing files listed in a CSV) are left out and listed in ``Splits.skipped``.

    Train datasets use ``make_transforms(preprocessing, img_size, train=True, augment, crop_scale)``, val and
    test the eval transforms; ``img_size`` defaults to ``preprocessing.resolution`` (224).
    """
    _check_args(img_size, val_fraction, test_fraction, limit_per_class, seed)
    if preprocessing is None:
        preprocessing = Preprocessing(resolution=img_size or DEFAULT_RESOLUTION)
    size = img_size or preprocessing.resolution
    train_tf = make_transforms(preprocessing, size, train=True, augment=augment, crop_scale=crop_scale)
    eval_tf = make_transforms(preprocessing, size, train=False)

    name = str(source)
    if name == "synthetic":
        if task != "default":
            raise ValueError(f"the synthetic data set has no task {task!r}")
        return synthetic_splits(per_class=limit_per_class or 8, img_size=size, seed=seed, preprocessing=preprocessing)
    if name == "fashion-mnist":
        if task != "default":
            raise ValueError(f"the fashion-mnist data set has no task {task!r}")
        return fashion_mnist_splits(img_size=size, seed=seed, val_fraction=val_fraction,
                                    limit_per_class=limit_per_class, augment=augment, preprocessing=preprocessing)

    selector = _Selector(seed, limit_per_class, skip_bad_images)
    try:
        if name == "elpv":
            records, classes = elpv_records(task)
            layout, description = None, f"elpv (task {task if task != 'default' else 'defect4'})"
        else:
            if task != "default":
                raise ValueError(f"task {task!r} applies only to the 'elpv' data set "
                                 f"({', '.join(ELPV_TASKS)}); image folders and CSV lists have one labelling")
            path = Path(source).expanduser()
            description = str(path)
            if not path.exists():
                raise ValueError(f"data source not found: {source} (expected an image folder, a .csv list, "
                                 "'elpv', 'fashion-mnist' or 'synthetic')")
            layout = None
            if path.is_file():
                if path.suffix.lower() != ".csv":
                    raise ValueError(f"unsupported data source file {path}: expected a .csv list of path,label rows")
                records, classes = _read_csv_source(path, skip_bad_images, selector.skipped)
            elif (layout := _split_layout(path)) is None:
                records, classes = read_image_folder(path)
        if layout is None:
            _require_two_classes(classes, description)
            kept = selector.select(records, classes, "all")
            train, val, test = _stratified(records, kept, val_fraction, test_fraction)
        else:
            train, val, test, classes = _given_splits(layout, selector, val_fraction, test_fraction)
            _require_two_classes(classes, description)
    finally:
        selector.close()
    return Splits(
        train=ImageDataset(train, classes, train_tf),
        val=ImageDataset(val, classes, eval_tf),
        test=ImageDataset(test, classes, eval_tf),
        class_names=list(classes),
        skipped=selector.skipped,
        source=description,
    )


def _require_two_classes(classes: list[str], description: str) -> None:
    if len(classes) < 2:
        found = f"1 ({classes[0]})" if classes else "none"
        raise ValueError(f"{description}: a classification data set needs at least two classes, found {found}")


def _given_splits(layout: dict[str, Path], selector: _Selector, val_fraction: float,
                  test_fraction: float) -> tuple[Records, Records, Records, list[str]]:
    train_records, classes = read_image_folder(layout["train"])
    _require_two_classes(classes, str(layout["train"]))
    index = {c: i for i, c in enumerate(classes)}
    parts: dict[str, Records] = {}
    for split in ("val", "test"):
        if split not in layout:
            continue
        records, names = read_image_folder(layout[split])
        unknown = [c for c in names if c not in index]
        if unknown:
            raise ValueError(f"{layout[split]} has class folder(s) not in {layout['train']}: {', '.join(unknown)}")
        records = [(p, index[names[y]]) for p, y in records]
        parts[split] = _flatten(records, selector.select(records, classes, split))
    kept = selector.select(train_records, classes, "train")
    carve_val = val_fraction if "val" not in parts else 0.0
    carve_test = test_fraction if "test" not in parts else 0.0
    train, val, test = _stratified(train_records, kept, carve_val, carve_test)
    return train, parts.get("val", val), parts.get("test", test), classes


def without_augmentation(dataset, preprocessing: Preprocessing | None, img_size: int):
    """``dataset`` as the evaluation splits read their images (resize, centre crop, normalise; no
    random crop, flip or policy), for scoring a training split: a shallow copy, the original untouched."""
    import copy

    if isinstance(dataset, ImageDataset):
        out = copy.copy(dataset)
        out.transform = make_transforms(preprocessing or Preprocessing(resolution=img_size), img_size, train=False)
        return out
    if isinstance(dataset, ArrayDataset):
        out = copy.copy(dataset)
        out.augment = None
        return out
    return dataset  # generated data (synthetic) has no augmentation


def load_data(spec: DataSpec, *, img_size: int | None = None, preprocessing: Preprocessing | None = None,
              augment: str = "none", crop_scale: float | None = None, seed: int | None = None) -> Splits:
    """:func:`load_splits` of a :class:`DataSpec` (``seed`` replaces the spec's split seed): the
    data settings come from the spec, how the images are transformed from the caller."""
    spec.check()
    return load_splits(spec.source, img_size=img_size, preprocessing=preprocessing, task=spec.task,
                       augment=augment, crop_scale=crop_scale, seed=spec.seed if seed is None else seed,
                       val_fraction=spec.val_fraction, test_fraction=spec.test_fraction,
                       skip_bad_images=spec.skip_bad_images, limit_per_class=spec.limit_per_class)
