"""Figures for searches and studies, drawn with matplotlib's object API (no global pyplot state)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from ..fsutil import atomic_savefig


def _figure(width: float = 6.4, height: float = 4.8):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    return atomic_savefig(fig, path, bbox_inches="tight")


def grid_heatmap(
    points: Sequence[Mapping],
    path: str | Path,
    *,
    title: str,
    note: str = "",
    best: Mapping | None = None,
) -> Path:
    """Beta (x) by gamma (y); each cell shows the best mean accuracy over the alphas tried there.

    ``points`` are mappings with ``alpha``, ``beta``, ``gamma`` and ``acc`` (``None`` when the point
    has no finished result). Each cell is annotated with its accuracy and the alpha that gave it.
    """
    import numpy as np

    betas = sorted({p["beta"] for p in points})
    gammas = sorted({p["gamma"] for p in points})
    grid = np.full((len(gammas), len(betas)), np.nan)
    alpha_at: dict[tuple[int, int], float] = {}
    for p in points:
        if p.get("acc") is None:
            continue
        i, j = gammas.index(p["gamma"]), betas.index(p["beta"])
        if math.isnan(grid[i, j]) or p["acc"] > grid[i, j]:
            grid[i, j] = p["acc"]
            alpha_at[(i, j)] = p["alpha"]
    fig = _figure(max(4.8, 0.75 * len(betas) + 2.5), max(3.8, 0.55 * len(gammas) + 2.0))
    ax = fig.add_subplot(1, 1, 1)
    masked = np.ma.masked_invalid(grid)
    image = ax.imshow(masked, origin="lower", aspect="auto", cmap="viridis")
    fig.colorbar(image, ax=ax, label="validation accuracy (best over alpha)")
    ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
    ax.set_yticks(range(len(gammas)), [f"{g:g}" for g in gammas])
    ax.set_xlabel("beta (width coefficient)")
    ax.set_ylabel("gamma (resolution coefficient)")
    finite = grid[~np.isnan(grid)]
    mid = float(finite.mean()) if finite.size else 0.0
    for (i, j), a in alpha_at.items():
        colour = "black" if grid[i, j] > mid else "white"
        ax.text(j, i, f"{grid[i, j]:.3f}\nα={a:g}", ha="center", va="center", fontsize=7, color=colour)
    if best is not None and best.get("beta") in betas and best.get("gamma") in gammas:
        ax.add_patch(_box(betas.index(best["beta"]), gammas.index(best["gamma"])))
    ax.set_title(title, fontsize=10)
    if note:
        fig.text(0.01, -0.02, note, fontsize=7, ha="left", va="top", wrap=True)
    return _save(fig, path)


def _box(x: int, y: int):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2)


def accuracy_vs_flops(
    series: Mapping[str, Sequence[Mapping]],
    path: str | Path,
    *,
    title: str,
    note: str = "",
    connect: bool = False,
    highlight: Mapping | None = None,
    label_key: str | None = None,
) -> Path:
    """Accuracy against multiply-adds, one marker style (and, with ``connect``, a line) per series.

    Each point is a mapping with ``macs``, ``acc`` and optionally ``ci_low``/``ci_high`` (a 95%
    interval, drawn as the error bar) or ``std``, and the ``label_key`` field written beside it.
    """
    fig = _figure(6.8, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    _draw_series(ax, series, "macs", connect=connect, label_key=label_key)
    if highlight is not None and highlight.get("acc") is not None:
        ax.plot([highlight["macs"] / 1e6], [highlight["acc"]], marker="*", markersize=16, color="red",
                linestyle="none", label="best", zorder=5)
    ax.set_xlabel("FLOPs (millions of multiply-adds)")
    ax.set_ylabel("validation accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    if note:
        fig.text(0.01, -0.02, note, fontsize=7, ha="left", va="top", wrap=True)
    return _save(fig, path)


def _draw_series(ax, series: Mapping[str, Sequence[Mapping]], x_key: str, *, connect: bool,
                 label_key: str | None, dodge: float = 0.0) -> None:
    """Accuracy against ``x_key`` (in millions), one marker style per series, 95% intervals as error bars.

    ``dodge`` shifts series ``n`` of ``N`` by a factor ``1 + dodge * (n - (N - 1) / 2)`` along x, so that
    series measured at the same cost do not hide each other's error bars."""
    import numpy as np

    markers = "osD^vP*X"
    for n, (name, pts) in enumerate(series.items()):
        pts = sorted((p for p in pts if p.get("acc") is not None), key=lambda p: p[x_key])
        if not pts:
            continue
        shift = 1.0 + dodge * (n - (len(series) - 1) / 2)
        xs = [p[x_key] / 1e6 * shift for p in pts]
        ys = [p["acc"] for p in pts]
        if all(p.get("ci_low") is not None for p in pts):  # 95% intervals, asymmetric
            errs = [[y - p["ci_low"] for p, y in zip(pts, ys)], [p["ci_high"] - y for p, y in zip(pts, ys)]]
        else:
            errs = [p.get("std") or 0.0 for p in pts]
        ax.errorbar(xs, ys, yerr=errs if np.any(errs) else None, fmt=markers[n % len(markers)] + ("-" if connect else ""),
                    capsize=3, label=name, alpha=0.85, markersize=5)
        if label_key:
            for p, x, y in zip(pts, xs, ys):
                ax.annotate(str(p.get(label_key, "")), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)


def _titled(fig, path: str | Path, title: str, note: str) -> Path:
    """The title above, the note (what was measured) below, then saved."""
    fig.suptitle(title, fontsize=10)
    if note:
        fig.text(0.01, -0.02, note, fontsize=7, ha="left", va="top", wrap=True)
    return _save(fig, path)


def accuracy_vs_cost(
    series: Mapping[str, Sequence[Mapping]],
    path: str | Path,
    *,
    title: str,
    ylabel: str,
    note: str = "",
    reference: float | None = None,
    reference_label: str = "",
    label_key: str = "label",
) -> Path:
    """Two panels: accuracy against multiply-adds and against parameters, one line per series.

    Points are mappings with ``macs``, ``params``, ``acc``, ``ci_low``/``ci_high`` (a 95% interval)
    and ``label_key``; ``reference`` (e.g. the majority class's accuracy) is a dashed line on both.
    Series that share their x values (one network, two ways of training it) are drawn 1.5% apart.
    """
    fig = _figure(11.0, 4.6)
    axes = [fig.add_subplot(1, 2, i) for i in (1, 2)]
    for ax, key, xlabel in zip(axes, ("macs", "params"), ("FLOPs (millions of multiply-adds)", "parameters (millions)")):
        _draw_series(ax, series, key, connect=True, label_key=label_key, dodge=0.015)
        if reference is not None:
            ax.axhline(reference, linestyle="--", color="grey", linewidth=1, label=reference_label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    return _titled(fig, path, title, note)


def arms_side_by_side(
    arms: Mapping[str, Mapping],
    path: str | Path,
    *,
    title: str,
    ylabel: str,
    note: str = "",
    reference: float | None = None,
    reference_label: str = "",
) -> Path:
    """One network trained several ways: each arm's accuracy with its 95% interval, side by side
    (no cost axis: the arms are the same network, at the same multiply-adds and parameters)."""
    fig = _figure(5.6, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    for x, (name, p) in enumerate(arms.items()):
        acc = p.get("acc")
        if acc is None:
            continue
        lo, hi = p.get("ci_low"), p.get("ci_high")
        err = [[acc - lo], [hi - acc]] if lo is not None and hi is not None else None
        ax.errorbar([x], [acc], yerr=err, fmt="o", capsize=6, markersize=7, label=name)
        ax.annotate(f"{acc:.3f}", (x, acc), textcoords="offset points", xytext=(10, -3), fontsize=8)
    if reference is not None:
        ax.axhline(reference, linestyle="--", color="grey", linewidth=1, label=reference_label)
    ax.set_xticks(range(len(arms)), list(arms))
    ax.set_xlim(-0.6, len(arms) - 0.4)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _titled(fig, path, title, note)


def proxy_scatter(summary: Mapping, path: str | Path, *, title: str, note: str = "") -> Path:
    """Each candidate's accuracy at the proxy budget (x) against the long budget (y): the seed mean
    as a labelled marker, each seed as a small dot, chance as dotted lines. A faithful proxy puts
    the candidates in the same order on both axes."""
    fig = _figure(6.8, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    for c in summary["candidates"]:
        ax.plot(c["proxy_runs"], c["long_runs"], "o", markersize=3, color="grey", alpha=0.6)
        ax.plot([c["proxy_mean"]], [c["long_mean"]], "o", markersize=7)
        ax.annotate(c["key"], (c["proxy_mean"], c["long_mean"]), textcoords="offset points", xytext=(5, 3),
                    fontsize=7)
    if summary.get("chance") is not None:
        ax.axvline(summary["chance"], linestyle=":", color="black", linewidth=1, label="chance")
        ax.axhline(summary["chance"], linestyle=":", color="black", linewidth=1)
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(f"validation accuracy after {summary['proxy_epochs']} epoch(s) (proxy)")
    ax.set_ylabel(f"validation accuracy after {summary['long_epochs']} epoch(s)")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{title}\nKendall tau {summary['tau']:+.2f} (95% CI {summary['tau_ci_low']:+.2f} to "
                 f"{summary['tau_ci_high']:+.2f}), {summary['seeds']} paired seeds", fontsize=10)
    if note:
        fig.text(0.01, -0.02, note, fontsize=7, ha="left", va="top", wrap=True)
    return _save(fig, path)


def budget_ladder(rungs: Sequence[Mapping], path: str | Path, *, title: str, note: str = "") -> Path:
    """The controls at each budget of a ladder: the positive control's difference (full budget minus a
    quarter of it) and the negative control's (the base's twin minus the base), with 95% intervals,
    against the budget in steps (log scale); and the base's accuracy on a second axis."""
    fig = _figure(7.0, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    for key, label, colour, shift in (("positive", "positive control: full - quarter budget", "tab:blue", 0.97),
                                      ("negative", "negative control: twin - base", "tab:grey", 1.03)):
        pts = [(r["steps"], r[key]) for r in rungs if r.get(key) and r[key].get("diff") is not None]
        if not pts:
            continue
        xs = [s * shift for s, _ in pts]
        ys = [c["diff"] for _, c in pts]
        err = [[c["diff"] - c["ci_low"] for _, c in pts], [c["ci_high"] - c["diff"] for _, c in pts]]
        ax.errorbar(xs, ys, yerr=err, fmt="o-", color=colour, capsize=4, label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xscale("log", base=2)
    steps = sorted({r["steps"] for r in rungs})
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.minorticks_off()
    ax.set_xlabel("training budget (optimiser steps)")
    ax.set_ylabel("difference in validation accuracy (95% CI)")
    base = [(r["steps"], r["base_accuracy"]) for r in rungs if r.get("base_accuracy") is not None]
    if base:
        ax2 = ax.twinx()
        ax2.plot([s for s, _ in base], [a for _, a in base], "s--", color="tab:orange", alpha=0.7,
                 label="base accuracy (right)")
        ax2.set_ylabel("base validation accuracy")
        ax2.legend(loc="lower right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    return _titled(fig, path, title, note)
