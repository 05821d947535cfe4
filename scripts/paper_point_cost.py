"""Where the paper's (1.2, 1.1, 1.15) lands in real multiply-adds at phi = 1, by base resolution.

Nominally every grid point at phi = 1 costs 2x the base. Rounding (whole blocks, channels in
multiples of 8, whole pixels, whole feature-map pixels at small inputs) moves the real cost; the
grid search re-solves phi along the point's direction when it is off by more than 10%. This script
plans the paper's point as `effnet search scale` does, for every base size in a range, and writes
the nominal ratio (at phi = 1), the ratio after re-solving, the phi used and the pixels, as JSON
and a plot: it is how a base size where the point can be compared at its target cost is chosen.

    python scripts/paper_point_cost.py --base efficientnet_b0 --classes 10 --sizes 24-128 \
        --json docs/paper-point-cost.json --plot docs/paper-point-cost.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from effnet.arch import ALPHA, BETA, GAMMA
from effnet.factory import resolve_description
from effnet.fsutil import atomic_savefig, atomic_write_text
from effnet.search.kinds.grid import TARGET, Coefficients, matched_point


def sizes(text: str) -> list[int]:
    """"LO-HI" (or one size) as the list of sizes; ValueError when it names none."""
    lo, _, hi = text.partition("-")
    out = list(range(int(lo), int(hi or lo) + 1))
    if not out or out[0] < 1:
        raise ValueError(text)
    return out


def ranges(values: list[int]) -> list[str]:
    """Consecutive integers as "lo-hi" runs."""
    out: list[list[int]] = []
    for v in values:
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return [f"{a}-{b}" if a != b else f"{a}" for a, b in out]


def measure(base_name: str, classes: int, pixels: list[int], tolerance: float) -> dict:
    base = resolve_description(base_name).replace(num_classes=classes)
    point = Coefficients(ALPHA, BETA, GAMMA)
    rows = []
    for px in pixels:
        m = matched_point(base, point, phi=1.0, img_size=px, cost_tolerance=tolerance)
        rows.append({"base_px": px, "nominal_ratio": m["nominal_ratio"], "ratio": m["ratio"], "phi": m["phi"],
                     "trains_at_px": m["img_size"], "on_target": m["on_target"]})
    on = [r["base_px"] for r in rows if r["on_target"]]
    return {"base": base_name, "classes": classes, "coefficients": [ALPHA, BETA, GAMMA], "target_ratio": TARGET,
            "cost_tolerance": tolerance, "rows": rows, "on_target_sizes": on,
            "off_target_sizes": [r["base_px"] for r in rows if not r["on_target"]],
            "off_target_ranges": ranges([r["base_px"] for r in rows if not r["on_target"]]),
            "sizes": f"{pixels[0]}-{pixels[-1]}",
            "smallest_on_target": min(on) if on else None}


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["base_px"] for r in summary["rows"]]
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    ax.plot(x, [r["nominal_ratio"] for r in summary["rows"]], "o-", ms=3, lw=1, label="at phi = 1")
    ax.plot(x, [r["ratio"] for r in summary["rows"]], "s-", ms=3, lw=1, label="after re-solving phi")
    tol = summary["cost_tolerance"]
    target = summary["target_ratio"]
    ax.axhspan(target * (1 - tol), target * (1 + tol), color="grey", alpha=0.2, label=f"target {target:g}x +- {tol:.0%}")
    ax.set_xlabel("base resolution (px)")
    ax.set_ylabel("multiply-adds / base's")
    ax.set_title(f"the paper's (1.2, 1.1, 1.15) at phi = 1 on {summary['base']} ({summary['classes']} classes)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="efficientnet_b0")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--sizes", default="24-128", help="base resolutions, LO-HI (default 24-128)")
    p.add_argument("--cost-tolerance", type=float, default=0.1)
    p.add_argument("--json", required=True, metavar="FILE")
    p.add_argument("--plot", default=None, metavar="FILE")
    args = p.parse_args(argv)
    try:
        pixels = sizes(args.sizes)
    except ValueError:
        p.error(f"--sizes must be LO-HI, got {args.sizes!r}")
    summary = measure(args.base, args.classes, pixels, args.cost_tolerance)
    atomic_write_text(Path(args.json), json.dumps(summary, indent=2) + "\n")
    if args.plot:
        plot(summary, Path(args.plot))
    print(f"on target at {len(summary['on_target_sizes'])} of {len(pixels)} sizes; off target at "
          f"{', '.join(map(str, summary['off_target_sizes'])) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
