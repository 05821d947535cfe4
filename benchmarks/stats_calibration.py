"""Do the studies' intervals keep their promise? Simulated studies with a known answer.

Runs :func:`effnet.search.calibration.replicate` over scenarios (equal candidates whose images
swap difficulty, equal candidates driven by the image, the same with training noise, planted gaps
of 5 and 10 points with and without training noise), seed counts and image counts, in the studies'
default design (one split shared by every seed). Beside each cell, the procedure before image
identity (an independent image draw per seed) on the same simulated data, for comparison.

    python benchmarks/stats_calibration.py [--replications 300] [--out benchmarks/results/stats-calibration.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from effnet.search import calibration
from effnet.search.calibration import Scenario, replicate


def per_seed_draws(mats, draws, seed):
    """The earlier procedure: each seed's images weighted independently (an image scored under K
    seeds counted as K images); kept here only to show what it promised and what it gave."""
    rng = np.random.default_rng(seed)
    k = len(mats)
    picks = rng.multinomial(k, np.full(k, 1.0 / k), size=draws)
    num, den = np.zeros((draws, mats[0].shape[0])), np.zeros(draws)
    for j, m in enumerate(mats):
        w = rng.poisson(picks[:, j:j + 1].astype(float), size=(draws, m.shape[1])).astype(float)
        num += w @ m.T
        den += w.sum(axis=1)
    return num / np.maximum(den, 1.0)[:, None]


def legacy(scn: Scenario, *, seeds: int, images: int, replications: int, draws: int, seed: int) -> dict:
    truth_a, _ = calibration.population_accuracy(scn)
    rng = np.random.default_rng(seed)
    sep = cov = 0
    for r in range(replications):
        pa, pb = scn.chances(rng, images)
        a = calibration._runs(rng, pa, seeds, scn.seed_sd)
        b = calibration._runs(rng, pb, seeds, scn.seed_sd)
        boot = per_seed_draws([np.vstack([a[k], b[k]]) for k in range(seeds)], draws, r)
        lo, hi = np.percentile(boot[:, 0], [2.5, 97.5])
        cov += lo <= truth_a <= hi
        dlo, dhi = np.percentile(boot[:, 1] - boot[:, 0], [2.5, 97.5])
        sep += dlo > 0 or dhi < 0
    return {"coverage": cov / replications, "separated": sep / replications}


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


SCENARIOS = [
    Scenario("swap"), Scenario("image"), Scenario("image", seed_sd=0.3),
    Scenario("gap", gap=0.10), Scenario("gap", gap=0.10, seed_sd=0.15), Scenario("gap", gap=0.10, seed_sd=0.3),
    Scenario("gap", gap=0.05),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replications", type=int, default=300)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--out", default="benchmarks/results/stats-calibration.json")
    args = ap.parse_args()
    cells = []
    t0 = time.time()
    for scn in SCENARIOS:
        for seeds in (1, 2, 3, 5):
            for images in ((400, 2000) if seeds == 3 else (400,)):
                cell = replicate(scn, seeds=seeds, images=images, replications=args.replications, draws=args.draws,
                                 seed=seeds * 1000 + images)
                old = legacy(scn, seeds=seeds, images=images, replications=args.replications, draws=args.draws,
                             seed=seeds * 1000 + images)
                cell["before_image_identity"] = old
                cells.append(cell)
                rate = cell.get("power", cell.get("false_separation"))
                print(f"{scn.kind:5s} sd {scn.seed_sd:.2f} gap {cell['gap']:+.3f} K {seeds} n {images}: coverage "
                      f"{cell['coverage']:.3f} (before {old['coverage']:.3f}), "
                      f"{'power' if 'power' in cell else 'false separations'} {rate:.3f} "
                      f"(before {old['separated']:.3f})  [{time.time() - t0:.0f} s]", flush=True)
    out = {"what": "simulated studies with known truth, called the way the studies call effnet.search.stats",
           "design": "one split shared by every seed; replications each draw new images and new runs",
           "promise": {"false_separation_at_most": 0.05, "coverage_at_least": 0.95},
           "targets": {"false_separation_at_most": 0.08, "coverage_at_least": 0.90, "power_10_points_at_least": 0.80},
           "replications": args.replications, "draws": args.draws, "cells": cells,
           "machine": {"cpu": _cpu(), "python": platform.python_version(),
                       "numpy": np.__version__}, "seconds": round(time.time() - t0, 1),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
