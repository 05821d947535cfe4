"""The bundled real data set: ELPV, electroluminescence images of solar-cell modules.

2,624 grayscale 300x300 PNG images of mono- and polycrystalline cells, each labelled by experts
with the probability that the cell is defective: 0, 1/3, 2/3 or 1 (Buerhop-Lutz et al. 2018;
Deitsch et al. 2019). It ships with the ``elpv-dataset`` package, so nothing is downloaded.

Tasks:

* ``"default"`` / ``"defect4"``: four classes by defect probability, named
  ``functional`` (0), ``possibly_defective`` (1/3), ``likely_defective`` (2/3), ``defective`` (1).
* ``"binary"``: ``functional`` vs ``defective`` at probability >= 0.5, so 1/3 counts as functional
  and 2/3 as defective.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["ELPV_TASKS", "elpv_root", "elpv_records"]

ELPV_TASKS = {
    "default": ("functional", "possibly_defective", "likely_defective", "defective"),
    "defect4": ("functional", "possibly_defective", "likely_defective", "defective"),
    "binary": ("functional", "defective"),
}


def elpv_root() -> Path:
    """The folder holding ``labels.csv`` and ``images/`` of the installed ``elpv-dataset``."""
    spec = importlib.util.find_spec("elpv_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the 'elpv' data set comes with the 'data' extra: pip install 'effnet[data]' (or the package elpv-dataset)")
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (root / "labels.csv").is_file():
        raise ValueError(f"elpv-dataset is installed but {root / 'labels.csv'} is missing")
    return root


def _probability_level(text: str, where: str) -> int:
    """0, 1, 2 or 3 for probability 0, 1/3, 2/3, 1."""
    try:
        p = float(text)
    except ValueError:
        raise ValueError(f"{where}: defect probability {text!r} is not a number") from None
    level = round(p * 3)
    if not 0 <= level <= 3 or abs(p * 3 - level) > 1e-6:
        raise ValueError(f"{where}: defect probability {text!r} is not one of 0, 1/3, 2/3, 1")
    return level


def elpv_records(task: str = "default") -> tuple[list[tuple[str, int]], list[str]]:
    """``([(image path, class index), ...], class names)`` for ``task``, in ``labels.csv`` order.

    Only the label file is read; images are decoded later, when a sample is drawn.
    """
    if task not in ELPV_TASKS:
        raise ValueError(f"unknown elpv task {task!r}; choose one of {', '.join(ELPV_TASKS)}")
    root = elpv_root()
    labels = root / "labels.csv"
    records = []
    for line_no, line in enumerate(labels.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{labels}:{line_no}"
        if len(fields) != 3:
            raise ValueError(f"{where}: expected 'path probability type', got {line.strip()!r}")
        level = _probability_level(fields[1], where)
        label = level if task != "binary" else int(level >= 2)  # p >= 0.5 is defective
        records.append((str(root / fields[0]), label))
    return records, list(ELPV_TASKS[task])
