"""Held-out test top-1 of finished runs against the majority class and chance, with a 95% Wilson
interval and a one-sided exact binomial test against the majority-class rate.

    python benchmarks/defaults_summary.py RUN_DIR...
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    def log_pmf(i: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)
    return min(1.0, sum(math.exp(log_pmf(i)) for i in range(k, n + 1)))


def summary(run: Path) -> str:
    m = json.loads((run / "metrics.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    lines = []
    for kind in ("best", "ema", "last"):
        t = m["test"].get(kind)
        if t is None:
            continue
        n = t["n"]
        k = sum(t["confusion"][i][i] for i in range(len(t["confusion"])))
        support = [sum(row) for row in t["confusion"]]
        majority = max(support) / n
        lo, hi = wilson(k, n)
        lines.append(f"{run.name} [{kind}{' = ' + str(m.get('test_weights')) if kind == 'best' else ''}] "
                     f"test top-1 {k / n:.3f} (95% CI {lo:.3f}-{hi:.3f}, n={n}); majority class {majority:.3f}, "
                     f"chance {1 / len(support):.3f}; P(>= {k} | majority rate) = {binomial_tail(k, n, majority):.2g}; "
                     f"seed {cfg['seed']}, regime {cfg.get('decisions', {}).get('regime', {}).get('value')}")
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n".join(summary(Path(p)) for p in sys.argv[1:]))
