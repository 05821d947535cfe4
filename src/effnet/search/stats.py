"""Paired statistics for comparing trained candidates (the procedure in docs/scaling-study.md).

Input: for every candidate ``c`` and shared seed ``k``, a vector of per-image scores ``correct[c][k]``
(1/0 per image of that seed's scoring split; the same images, in the same order, for every
candidate of seed ``k``). When a trainer reports only an accuracy per run, that run is a vector of
one value and the image level drops out.

* **Two-level bootstrap** (B draws): resample seeds with replacement, then each drawn seed's images
  with replacement; every candidate is scored on the same draw, so differences are paired.
  Accuracy intervals are the 2.5 and 97.5 percentiles.
* **Against the best** (the highest mean, chosen on the same data), a per-pair test would be biased:
  the best is the maximum of noisy means. The indistinguishable set therefore uses a simultaneous
  bound: ``q`` is the 95th percentile over draws of the range ``max_c e_c - min_c e_c`` of the centred
  accuracies ``e_c = acc*_c - acc_c``, so with 95% confidence every pairwise difference is within
  ``q`` of its estimate (a bootstrap version of Tukey's studentised-range procedure). Candidate ``c``
  is worse than the best only when ``acc_best - acc_c > q``; the interval of ``d(c, best)`` printed
  is ``d +- q``, so "indistinguishable" and "the interval contains 0" say the same thing.
* **Against a fixed comparator** (the baseline, named before any data are seen), bootstrap p-values
  with Holm's step-down correction over the candidates compared.
* **One seed**: McNemar's exact test (``scipy.stats.binomtest`` on the discordant images) against the
  best is reported as well, and the report says that seed noise is not covered.

scipy and numpy give the tests and the random draws; the resampling scheme itself is written here
because no library offers a paired two-level (seeds, then images) bootstrap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

ALPHA = 0.05
DEFAULT_DRAWS = 2000


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (family-wise error), in the input order."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def _matrices(correct: Sequence[Sequence[Sequence[float]]]) -> list[np.ndarray]:
    """``correct[c][k]`` -> one ``C x n_k`` matrix per seed; every candidate needs every seed, same length."""
    n_cand = len(correct)
    if n_cand == 0:
        raise ValueError("no candidates to compare")
    n_seeds = len(correct[0])
    if n_seeds == 0 or any(len(c) != n_seeds for c in correct):
        raise ValueError("every candidate needs a score for every seed")
    out = []
    for k in range(n_seeds):
        rows = [np.asarray(correct[c][k], dtype=float).ravel() for c in range(n_cand)]
        if len({r.size for r in rows}) != 1 or rows[0].size == 0:
            raise ValueError(f"seed {k}: candidates were scored on different numbers of images")
        out.append(np.vstack(rows))
    return out


def point_estimates(mats: Sequence[np.ndarray]) -> np.ndarray:
    return sum(m.sum(axis=1) for m in mats) / sum(m.shape[1] for m in mats)


def bootstrap(mats: Sequence[np.ndarray], draws: int = DEFAULT_DRAWS, seed: int = 0,
              chunk: int = 500) -> np.ndarray:
    """``draws x C`` bootstrap accuracies: seeds resampled, then images within each drawn seed.

    Seeds are drawn exactly (multinomial counts ``m_k``). Images use the Poisson bootstrap: a seed
    drawn ``m_k`` times weights each of its images by an independent Poisson(``m_k``) count, the
    large-sample equivalent of ``m_k`` multinomial resamples and far cheaper for thousands of
    images. Every candidate gets the same weights (paired).
    """
    rng = np.random.default_rng(seed)
    n_seeds, n_cand = len(mats), mats[0].shape[0]
    out = np.empty((draws, n_cand))
    for start in range(0, draws, chunk):
        b = min(chunk, draws - start)
        picks = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=b)
        num, den = np.zeros((b, n_cand)), np.zeros(b)
        for k, m in enumerate(mats):
            n = m.shape[1]
            if n == 1:
                weights = picks[:, k:k + 1].astype(float)
            else:
                weights = rng.poisson(picks[:, k:k + 1].astype(float), size=(b, n)).astype(float)
            num += weights @ m.T
            den += weights.sum(axis=1)
        out[start:start + b] = num / np.maximum(den, 1.0)[:, None]
    return out


def _p_two_sided(diff: np.ndarray) -> float:
    b = diff.size
    return min(1.0, 2 * min((np.sum(diff <= 0) + 1) / (b + 1), (np.sum(diff >= 0) + 1) / (b + 1)))


def _interval(x: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(x, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass
class Comparison:
    """Every figure the reports print, per candidate (in input order)."""

    names: list[str]
    mean: list[float]
    ci: list[tuple[float, float]]
    best: int
    diff_to_best: list[float]
    diff_to_best_ci: list[tuple[float, float]]  # simultaneous (see the module docstring)
    diff_to_best_ci_marginal: list[tuple[float, float]]
    indistinguishable: list[bool]
    range_bound: float
    baseline: int | None
    diff_to_baseline: list[float | None]
    diff_to_baseline_ci: list[tuple[float, float] | None]
    p_vs_baseline_holm: list[float | None]
    mcnemar_p_vs_best: list[float | None]
    seeds: int
    images: list[int]
    draws: int

    @property
    def winner(self) -> int | None:
        """The best, when nothing else is left in the indistinguishable set."""
        return self.best if sum(self.indistinguishable) == 1 else None

    def row(self, i: int) -> dict[str, Any]:
        lo, hi = self.ci[i]
        dlo, dhi = self.diff_to_best_ci[i]
        out = {"mean": self.mean[i], "ci_low": lo, "ci_high": hi, "diff_to_best": self.diff_to_best[i],
               "diff_to_best_ci_low": dlo, "diff_to_best_ci_high": dhi,
               "diff_to_best_marginal_ci_low": self.diff_to_best_ci_marginal[i][0],
               "diff_to_best_marginal_ci_high": self.diff_to_best_ci_marginal[i][1],
               "indistinguishable_from_best": self.indistinguishable[i], "is_best": i == self.best}
        if self.baseline is not None:
            b = self.diff_to_baseline_ci[i]
            out.update(diff_to_baseline=self.diff_to_baseline[i], diff_to_baseline_ci_low=b[0] if b else None,
                       diff_to_baseline_ci_high=b[1] if b else None, p_vs_baseline_holm=self.p_vs_baseline_holm[i])
        if self.mcnemar_p_vs_best[i] is not None:
            out["mcnemar_p_vs_best"] = self.mcnemar_p_vs_best[i]
        return out


def compare(names: Sequence[str], correct: Sequence[Sequence[Sequence[float]]], *, baseline: int | None = None,
            draws: int = DEFAULT_DRAWS, seed: int = 0, alpha: float = ALPHA) -> Comparison:
    """Means, intervals, paired differences to the best and the baseline, the indistinguishable set."""
    return _compare(names, _matrices(correct), None, baseline, draws, seed, alpha)


def compare_scaled(names: Sequence[str], correct: Sequence[Sequence[Sequence[float]]], factors: Sequence[float], *,
                   baseline: int | None = None, draws: int = DEFAULT_DRAWS, seed: int = 0,
                   alpha: float = ALPHA) -> Comparison:
    """:func:`compare` of ``factors[c] * accuracy_c`` (a known, noise-free factor per candidate, such
    as an architecture search's ``(MACs / T) ** w``): the intervals, the best, the paired differences
    and the indistinguishable set are those of the scaled scores, on the same bootstrap draws as
    :func:`compare` with the same seed. McNemar's test stays on the unscaled per-image outcomes."""
    f = np.asarray(factors, dtype=float)
    if f.shape != (len(names),) or not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise ValueError("every candidate needs one finite, positive factor")
    return _compare(names, _matrices(correct), f, baseline, draws, seed, alpha)


def _compare(names: Sequence[str], mats: list[np.ndarray], factors: np.ndarray | None, baseline: int | None,
             draws: int, seed: int, alpha: float) -> Comparison:
    acc = point_estimates(mats)
    boot = bootstrap(mats, draws, seed)
    if factors is not None:
        acc, boot = acc * factors, boot * factors[None, :]
    n = len(names)
    best = int(np.argmax(acc))  # ties: the first (callers list cheaper or reference candidates first)
    centred = boot - acc[None, :]
    q = float(np.quantile(centred.max(axis=1) - centred.min(axis=1), 1 - alpha)) if n > 1 else 0.0
    diff_best = [float(acc[i] - acc[best]) for i in range(n)]
    indist = [bool(acc[best] - acc[i] <= q + 1e-12) for i in range(n)]
    marginal = [_interval(boot[:, i] - boot[:, best]) if i != best else (0.0, 0.0) for i in range(n)]
    d_base: list[float | None] = [None] * n
    d_base_ci: list[tuple[float, float] | None] = [None] * n
    p_holm: list[float | None] = [None] * n
    if baseline is not None:
        others = [i for i in range(n) if i != baseline]
        raw = [_p_two_sided(boot[:, i] - boot[:, baseline]) for i in others]
        for i, p in zip(others, holm(raw) if raw else []):
            d_base[i] = float(acc[i] - acc[baseline])
            d_base_ci[i] = _interval(boot[:, i] - boot[:, baseline])
            p_holm[i] = p
        d_base[baseline], d_base_ci[baseline] = 0.0, (0.0, 0.0)
    mcnemar: list[float | None] = [None] * n
    if len(mats) == 1 and mats[0].shape[1] > 1:
        from scipy.stats import binomtest

        m = mats[0] > 0.5
        for i in range(n):
            if i == best:
                continue
            b01 = int(np.sum(m[best] & ~m[i]))
            b10 = int(np.sum(~m[best] & m[i]))
            mcnemar[i] = float(binomtest(b10, b01 + b10, 0.5).pvalue) if b01 + b10 else 1.0
    return Comparison(
        names=list(names), mean=acc.tolist(), ci=[_interval(boot[:, i]) for i in range(n)], best=best,
        diff_to_best=diff_best, diff_to_best_ci=[(d - q, d + q) for d in diff_best],
        diff_to_best_ci_marginal=marginal, indistinguishable=indist, range_bound=q, baseline=baseline,
        diff_to_baseline=d_base, diff_to_baseline_ci=d_base_ci, p_vs_baseline_holm=p_holm,
        mcnemar_p_vs_best=mcnemar, seeds=len(mats), images=[m.shape[1] for m in mats], draws=draws,
    )


def paired_difference(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], *, draws: int = DEFAULT_DRAWS,
                      seed: int = 0) -> dict[str, float]:
    """Accuracy of ``a`` minus ``b`` (per seed, per image, paired) with its 95% bootstrap interval."""
    mats = _matrices([a, b])
    acc = point_estimates(mats)
    boot = bootstrap(mats, draws, seed)
    lo, hi = _interval(boot[:, 0] - boot[:, 1])
    return {"diff": float(acc[0] - acc[1]), "ci_low": lo, "ci_high": hi, "separated": bool(lo > 0)}


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    from scipy.stats import kendalltau

    tau = kendalltau(x, y).statistic
    return float(tau) if tau is not None and math.isfinite(tau) else 0.0


def mean_interval(values: Sequence[float], alpha: float = ALPHA) -> dict[str, Any]:
    """Mean of a few independent values (e.g. one per search seed) with Student's t interval;
    ``ci_low``/``ci_high``/``half_width`` are None for a single value (no spread to estimate)."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("need at least one finite value")
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "half_width": None, "n": 1}
    half = float(t.ppf(1 - alpha / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "half_width": half, "n": int(x.size)}
