"""Result tables as CSV (every value, full precision) and Markdown (formatted for reading)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..fsutil import atomic_write_text


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: Callable[[Any], str] = str


def fixed(digits: int) -> Callable[[Any], str]:
    return lambda v: "" if v is None else f"{v:.{digits}f}"


def millions(v: Any) -> str:
    return "" if v is None else f"{v / 1e6:.2f}"


def plain(v: Any) -> str:
    return "" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def to_csv(rows: Sequence[Mapping], columns: Sequence[Column]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.key for c in columns])
    for r in rows:
        writer.writerow(["" if r.get(c.key) is None else r.get(c.key) for c in columns])
    return buf.getvalue()


def to_markdown(rows: Sequence[Mapping], columns: Sequence[Column]) -> str:
    lines = ["| " + " | ".join(c.header for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(c.fmt(r.get(c.key)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_tables(rows: Sequence[Mapping], columns: Sequence[Column], stem: str | Path) -> tuple[Path, Path]:
    """``stem.csv`` and ``stem.md``, each written atomically."""
    stem = Path(stem)
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    atomic_write_text(csv_path, to_csv(rows, columns))
    atomic_write_text(md_path, to_markdown(rows, columns))
    return csv_path, md_path
