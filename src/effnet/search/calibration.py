"""Does :mod:`effnet.search.stats` keep its promise? Simulated studies with a known answer.

Each scenario is an image population with known per-image chances of being right, for two
candidates, and a training noise that shifts a whole run (one seed of one candidate) on the logit
scale. A replication draws ``images`` images from the population once (the study's one split,
shared by every seed, as in the default design) and scores them under ``seeds`` paired seeds, then
calls :func:`~effnet.search.stats.compare` and :func:`~effnet.search.stats.paired_difference` the
way the studies do. Over replications we count:

* ``false_separation``: the difference of two candidates equal on the population is called
  separated (its 95% interval excludes 0), promised at most 5%;
* ``coverage``: candidate A's 95% accuracy interval contains its population accuracy, promised 95%;
* ``power``: with a planted gap, the better candidate is separated from the other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import compare, paired_difference


@dataclass(frozen=True)
class Scenario:
    """An image population for two candidates.

    ``kind``: ``"swap"`` (each image easy for one candidate and hard for the other; equal on the
    population), ``"image"`` (per-image chances near 0 or 1, so seeds agree on most images; the two
    candidates equal), or ``"gap"`` (B better than A by ``gap`` on the population).
    ``seed_sd``: training noise, the logit shift of one run (one candidate, one seed).
    """

    kind: str
    seed_sd: float = 0.0
    gap: float = 0.0

    def chances(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-image chance of being right for A and for B, for ``n`` images drawn from the population."""
        if self.kind == "swap":
            s = rng.random(n) < 0.5
            a = np.where(s, 0.9, 0.3)
            return a, np.where(s, 0.3, 0.9)
        a = rng.beta(0.4, 0.25, size=n)  # mean 0.615; most images near 0 or 1
        if self.kind == "image":
            return a, a.copy()
        if self.kind == "gap":  # B closes the same share of A's errors on every image
            return a, a + self.gap / (1.0 - 0.4 / 0.65) * (1.0 - a)
        raise ValueError(f"unknown scenario kind {self.kind!r}")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _runs(rng: np.random.Generator, p: np.ndarray, seeds: int, seed_sd: float) -> list[np.ndarray]:
    out = []
    for _ in range(seeds):
        q = p if seed_sd == 0 else 1.0 / (1.0 + np.exp(-(_logit(p) + rng.normal(0.0, seed_sd))))
        out.append((rng.random(p.size) < q).astype(float))
    return out


def population_accuracy(scn: Scenario, samples: int = 400_000, seed: int = 12345) -> tuple[float, float]:
    """Both candidates' population accuracies (images and training noise integrated out)."""
    rng = np.random.default_rng(seed)
    a, b = scn.chances(rng, samples)
    if scn.seed_sd == 0:
        return float(a.mean()), float(b.mean())
    shift = rng.normal(0.0, scn.seed_sd, size=samples)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    return float(sig(_logit(a) + shift).mean()), float(sig(_logit(b) + rng.permutation(shift)).mean())


def replicate(scn: Scenario, *, seeds: int, images: int, replications: int, draws: int = 500,
              seed: int = 0) -> dict[str, float | int]:
    """Rates over ``replications`` simulated studies (see the module docstring)."""
    truth_a, truth_b = population_accuracy(scn)
    rng = np.random.default_rng(seed)
    separated = covered = 0
    for r in range(replications):
        pa, pb = scn.chances(rng, images)
        a, b = _runs(rng, pa, seeds, scn.seed_sd), _runs(rng, pb, seeds, scn.seed_sd)
        cmp = compare(["a", "b"], [a, b], draws=draws, seed=r)
        lo, hi = cmp.ci[0]
        covered += lo <= truth_a <= hi
        d = paired_difference(b, a, draws=draws, seed=r)
        separated += d["ci_low"] > 0 or d["ci_high"] < 0
    out: dict[str, float | int] = {"kind": scn.kind, "seed_sd": scn.seed_sd, "gap": round(truth_b - truth_a, 4),
                                   "seeds": seeds, "images": images, "replications": replications, "draws": draws,
                                   "coverage": covered / replications}
    out["power" if scn.kind == "gap" else "false_separation"] = separated / replications
    return out
