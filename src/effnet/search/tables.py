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


def ci_text(lo_key: str, hi_key: str):
    return lambda row: "" if row.get(lo_key) is None else f"{row[lo_key]:.4f} to {row[hi_key]:.4f}"


def signed_ci_text(lo_key: str, hi_key: str):
    return lambda row: "" if row.get(lo_key) is None else f"{row[lo_key]:+.4f} to {row[hi_key]:+.4f}"


def decorate(rows: Sequence[dict[str, Any]]) -> None:
    """Add the text columns (intervals, yes/no) the Markdown tables print."""
    for r in rows:
        r["ci_text"] = ci_text("ci_low", "ci_high")(r)
        r["dbest_text"] = signed_ci_text("diff_to_best_ci_low", "diff_to_best_ci_high")(r)
        r["dbase_text"] = signed_ci_text("diff_to_baseline_ci_low", "diff_to_baseline_ci_high")(r)
        flag = r.get("indistinguishable_from_best")
        r["indist_text"] = "" if flag is None else ("best" if r.get("is_best") else ("yes" if flag else "no (worse)"))
        r["test_text"] = ("" if r.get("test_mean") is None else
                          f"{r['test_mean']:.4f} [{r['test_ci_low']:.4f}, {r['test_ci_high']:.4f}]")


def public_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row without the text columns :func:`decorate` added (what JSON keeps)."""
    return {k: v for k, v in row.items() if not k.endswith("_text")}
