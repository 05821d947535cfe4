"""Figures: benchmark bar charts. matplotlib with the non-interactive Agg backend."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..fsutil import atomic_savefig


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bench(results: Sequence, path: str | Path, title: str = "") -> Path:
    """Throughput bars, one panel per (model, batch size), ours and peers side by side."""
    plt = _pyplot()
    ok = [r for r in results if r.ok]
    if not ok:
        raise ValueError("no benchmark row has a measurement to plot")
    groups: dict[tuple[str, int, int], list] = {}
    for r in ok:
        groups.setdefault((r.model, r.batch_size, r.img_size), []).append(r)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 4.2), squeeze=False)
    colours = {"effnet": "#1f77b4", "torchvision": "#ff7f0e", "timm": "#2ca02c"}
    for ax, ((model, batch, size), rows) in zip(axes[0], groups.items()):
        labels = [f"{r.impl}\n{r.path}" for r in rows]
        values = [r.throughput for r in rows]
        bars = ax.bar(range(len(rows)), values, color=[colours.get(r.impl, "grey") for r in rows])
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ax.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("images / s (higher is better)")
        ax.set_title(f"{model}, batch {batch}, {size}x{size}", fontsize=9)
    fig.suptitle(title or "CPU inference throughput", fontsize=10)
    fig.tight_layout()
    target = atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return target
