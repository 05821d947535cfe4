"""Paired statistics for comparing trained candidates (the procedure in docs/statistics.md).

Input: for every candidate ``c`` and shared seed ``k``, a vector of per-image scores ``correct[c][k]``
(1/0 per image of that seed's scoring split; the same images, in the same order, for every
candidate of seed ``k``), and optionally which images those were (``image_ids[k]``; without them,
seeds with equally long vectors are read as the same images, the studies' default design). When a
trainer reports only an accuracy per run, that run is a vector of one value and the image level
drops out.

* **Two-level bootstrap** (B draws, :func:`draw`): seeds resampled with replacement, and each
  distinct image weighted once per draw for every seed and candidate that scored it; every
  candidate is scored on the same draw, so differences are paired. The seed part is rescaled for
  the few seeds a study has. Each interval is the estimate +- Student's t times the bootstrap
  standard deviation, at the Welch-Satterthwaite degrees of freedom of its seed part (``K - 1``
  degrees of freedom; the seeds-only bootstrap variance at its upper confidence bound) and its
  image part (:func:`spread`).
* **Against the best** (the highest mean, chosen on the same data), a per-pair test would be biased:
  the best is the maximum of noisy means. The indistinguishable set therefore uses a simultaneous
  bound: ``q`` is the 95th percentile over draws of the range ``max_c e_c - min_c e_c`` of the centred
  accuracies ``e_c = acc*_c - mean(acc*_c)`` (widened like the pairwise intervals), so with 95%
  confidence every pairwise difference is within ``q`` of its estimate (a bootstrap version of
  Tukey's studentised-range procedure). Candidate ``c`` is worse than the best only when
  ``acc_best - acc_c > q``; the interval of ``d(c, best)`` printed is ``d +- q``, so
  "indistinguishable" and "the interval contains 0" say the same thing.
* **Against a fixed comparator** (the baseline, named before any data are seen), p-values from the
  same t and bootstrap standard deviation as the intervals,
  with Holm's step-down correction over the candidates compared.
* **One seed**: McNemar's exact test (``scipy.stats.binomtest`` on the discordant images) against the
  best is reported as well, and the report says that seed noise is not covered.
* **What it would take**: the seed and image parts of each difference's variance give about how
  many seeds or images would resolve an observed gap (:meth:`Spread.needed`).

scipy and numpy give the tests and the random draws; the resampling scheme itself is written here
because no library offers a paired, crossed (seeds x images) bootstrap.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

ALPHA = 0.05
DEFAULT_DRAWS = 2000
DOF_BOUND_LEVEL = 0.8


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


def matrices(correct: Sequence[Sequence[Sequence[float]]]) -> list[np.ndarray]:
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


def independent_splits(lengths: Sequence[int]) -> list[np.ndarray]:
    """Image ids for seeds that each scored a split of their own (``--split-seeds``): no image is shared."""
    ids, start = [], 0
    for n in lengths:
        ids.append(np.arange(start, start + int(n)))
        start += int(n)
    return ids


def _image_index(mats: Sequence[np.ndarray], image_ids: Sequence[Sequence[Any]] | None) -> tuple[list[np.ndarray], int]:
    """Per seed, the index of each scored image among the distinct images of the comparison.

    Without ids, seeds with vectors of one length are read as the same images in the same order
    (the conservative reading: the default design, one split shared by every seed); vectors of
    different lengths cannot be the same images and are kept apart.
    """
    if image_ids is None:
        lengths = sorted({m.shape[1] for m in mats})
        offset = {n: sum(lengths[:j]) for j, n in enumerate(lengths)}
        return [offset[m.shape[1]] + np.arange(m.shape[1]) for m in mats], sum(lengths)
    if len(image_ids) != len(mats):
        raise ValueError(f"image ids for {len(image_ids)} seed(s), scores for {len(mats)}")
    flat = []
    for k, (m, ids) in enumerate(zip(mats, image_ids)):
        a = np.asarray(ids).ravel()
        if a.size != m.shape[1]:
            raise ValueError(f"seed {k}: {a.size} image ids for {m.shape[1]} scores")
        flat.append(a)
    uniq, inverse = np.unique(np.concatenate(flat), return_inverse=True)
    bounds = np.cumsum([0] + [a.size for a in flat])
    return [inverse[bounds[k]:bounds[k + 1]] for k in range(len(flat))], int(uniq.size)


def point_estimates(mats: Sequence[np.ndarray]) -> np.ndarray:
    return sum(m.sum(axis=1) for m in mats) / sum(m.shape[1] for m in mats)


@dataclass
class Draws:
    """Bootstrap accuracies (``draws x C``) of one comparison, with the data they were drawn from.

    ``joint`` resamples seeds and images together; ``seeds_only`` uses the same seed draws with
    every image at its observed weight. With the per-seed means and the image index they give the
    seed part of each quantity's variance (what more seeds buy) and the rest (what more images buy).
    """

    joint: np.ndarray
    seeds_only: np.ndarray
    mats: list[np.ndarray]
    index: list[np.ndarray]
    images: int  # distinct images

    @property
    def seeds(self) -> int:
        return len(self.mats)

    @functools.cached_property
    def proportions(self) -> bool:
        """Whether every score is a proportion (0..1), so accuracies lie in [0, 1] and differences in [-1, 1]."""
        return all(float(m.min()) >= 0.0 and float(m.max()) <= 1.0 for m in self.mats)

    def scaled(self, factors: np.ndarray) -> "Draws":
        return Draws(self.joint * factors[None, :], self.seeds_only * factors[None, :],
                     [m * factors[:, None] for m in self.mats], self.index, self.images)

    def subset(self, cols: Sequence[int]) -> "Draws":
        """The same draws for some of the candidates (so every figure of one quantity comes from one draw)."""
        c = list(cols)
        return Draws(self.joint[:, c], self.seeds_only[:, c], [m[c] for m in self.mats], self.index, self.images)

    def estimates(self) -> np.ndarray:
        return point_estimates(self.mats)

    def seed_floor(self, weights: np.ndarray) -> float:
        """The part of the seed-only variance of ``weights @ accuracy`` that image-level noise alone
        puts there (the spread seed means would have with no training noise at all): the two-way
        residual variance for seeds that scored one split, each seed's own image variance otherwise."""
        rows = [weights @ m for m in self.mats]
        floors = np.zeros(len(rows))
        groups: dict[bytes, list[int]] = {}
        for k, idx in enumerate(self.index):
            groups.setdefault(idx.tobytes(), []).append(k)
        for members in groups.values():
            n = rows[members[0]].size
            if n < 2:
                continue
            if len(members) > 1:
                d = np.vstack([rows[k] for k in members])
                r = d - d.mean(axis=1, keepdims=True) - d.mean(axis=0, keepdims=True) + d.mean()
                floors[members] = float((r ** 2).sum()) / ((len(members) - 1) * (n - 1)) / n
            else:
                floors[members[0]] = float(np.var(rows[members[0]], ddof=1)) / n
        return float(floors.mean()) / len(rows)


def draw(mats: Sequence[np.ndarray], draws: int = DEFAULT_DRAWS, seed: int = 0,
         image_ids: Sequence[Sequence[Any]] | None = None, chunk: int = 250) -> Draws:
    """The two-level bootstrap: seeds resampled, and each distinct image resampled once per draw.

    An image is one unit however many seeds or candidates scored it: one Poisson(1) weight per
    distinct image per draw serves every seed and every candidate that scored it (the crossed,
    "pigeonhole" bootstrap). Seeds are drawn with replacement (multinomial counts); as the plain
    bootstrap of ``K`` values shrinks their variance by ``(K - 1) / K``, the seed part of each draw
    is scaled by ``sqrt(K / (K - 1))``. Every candidate gets the same weights (paired).
    """
    rng = np.random.default_rng(seed)
    mats = list(mats)
    n_seeds, n_cand = len(mats), mats[0].shape[0]
    index, n_images = _image_index(mats, image_ids)
    sizes = np.array([m.shape[1] for m in mats], dtype=float)
    share = sizes / sizes.sum()
    scale = math.sqrt(n_seeds / (n_seeds - 1)) if n_seeds > 1 else 0.0
    per_seed = np.stack([m.mean(axis=1) for m in mats])  # K x C
    point = share @ per_seed
    joint, seeds_only = np.empty((draws, n_cand)), np.empty((draws, n_cand))
    for start in range(0, draws, chunk):
        b = min(chunk, draws - start)
        picks = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=b).astype(float)
        w = rng.poisson(1.0, size=(b, n_images)).astype(float)
        acc_k = np.empty((b, n_seeds, n_cand))
        for k, (m, idx) in enumerate(zip(mats, index)):
            wk = w[:, idx]
            den = wk.sum(axis=1)
            acc = (wk @ m.T) / np.maximum(den, 1.0)[:, None]
            acc_k[:, k] = np.where((den > 0)[:, None], acc, per_seed[k][None, :])
        seed_w = picks * sizes[None, :]
        seed_w /= seed_w.sum(axis=1, keepdims=True)
        img = np.einsum("k,bkc->bc", share, acc_k)
        joint[start:start + b] = img + scale * (np.einsum("bk,bkc->bc", seed_w, acc_k) - img)
        seeds_only[start:start + b] = point[None, :] + scale * (seed_w @ per_seed - point[None, :])
    return Draws(joint, seeds_only, mats, index, n_images)


def bootstrap(mats: Sequence[np.ndarray], draws: int = DEFAULT_DRAWS, seed: int = 0,
              image_ids: Sequence[Sequence[Any]] | None = None) -> np.ndarray:
    """``draws x C`` bootstrap accuracies (:func:`draw`'s joint draws)."""
    return draw(mats, draws, seed, image_ids).joint


def _dof(raw: float, floor: float, v_rest: float, seeds: int, images: int) -> float:
    """Welch-Satterthwaite degrees of freedom of a quantity whose variance is a training-noise part
    resting on ``seeds - 1`` degrees of freedom and the rest (``v_rest``) on ``images - 1``.

    The seeds-only bootstrap variance ``raw`` estimates the training-noise part plus the image-level
    noise ``floor`` that seed means carry anyway, on ``seeds - 1`` degrees of freedom; with one or
    two of them it is often far below its truth, and a training-noise part estimated at zero would
    mean normal quantiles for an interval that rests on two or three seeds. The part is therefore
    taken at its upper confidence bound, ``raw * (K - 1) / chi2_{1 - level}(K - 1) - floor``
    (:data:`DOF_BOUND_LEVEL`); infinite degrees of freedom only where even that is zero.
    """
    from scipy.stats import chi2

    if seeds < 2:
        return math.inf
    v_seed = raw * (seeds - 1) / float(chi2.ppf(1 - DOF_BOUND_LEVEL, seeds - 1)) - floor
    if v_seed <= 0:
        return math.inf
    den = v_seed ** 2 / (seeds - 1) + (v_rest ** 2 / (images - 1) if images > 1 else 0.0)
    return (v_seed + v_rest) ** 2 / den


@dataclass
class Spread:
    """One quantity's interval, and its variance split into training noise (falls with more seeds)
    and the rest (image sampling and seed-by-image noise; falls with more images)."""

    estimate: float
    low: float
    high: float
    var_seeds: float
    var_images: float
    factor: float  # Student's t quantile over the normal one (the small-sample widening)
    dof: float = math.inf  # Welch-Satterthwaite degrees of freedom

    @property
    def sd(self) -> float:
        return math.sqrt(self.var_seeds + self.var_images)

    def p_value(self) -> float:
        """Two-sided p-value of the estimate against 0 (Student's t at :attr:`dof`)."""
        from scipy.stats import norm, t

        if self.sd == 0:
            return 0.0 if self.estimate != 0 else 1.0
        z = abs(self.estimate) / self.sd
        return float(2 * (norm.sf(z) if math.isinf(self.dof) else t.sf(z, self.dof)))

    def needed(self, gap: float, seeds: int, images: int, alpha: float = ALPHA,
               bound: float | None = None) -> dict[str, int | None]:
        """About how many seeds (images fixed) or images (seeds fixed) would bring the half-width
        below ``|gap|``; None where that level alone cannot get there. ``bound`` is the half-width
        in use now when it is not this quantity's own 95% one (a simultaneous bound, say): it is
        taken to shrink in proportion to this quantity's standard error."""
        from scipy.stats import norm

        if bound:
            target = (self.var_seeds + self.var_images) * (abs(gap) / bound) ** 2
        else:
            target = (abs(gap) / norm.ppf(1 - alpha / 2)) ** 2
        out: dict[str, int | None] = {"seeds": None, "images": None, "both_times": None}
        if target <= 0:
            return out
        if self.var_images < target:
            out["seeds"] = max(seeds, math.ceil(self.var_seeds * seeds / (target - self.var_images)))
        if self.var_seeds < target:
            out["images"] = max(images, math.ceil(self.var_images * images / (target - self.var_seeds)))
        # neither level alone: how many times more of both
        out["both_times"] = max(1, math.ceil((self.var_seeds + self.var_images) / target))
        return out


def spread(d: Draws, weights: np.ndarray, estimate: float, alpha: float = ALPHA) -> Spread:
    """The interval of ``sum_c weights[c] * accuracy_c`` (an accuracy, or a paired difference):
    the estimate +- Student's t (at the Welch-Satterthwaite degrees of freedom of its seed and image
    parts) times the bootstrap standard deviation. With a few seeds the percentiles of the draws
    are lumpy (three seeds give ten seed resamples), so the draws give the spread, not the quantile."""
    from scipy.stats import norm, t

    joint = d.joint @ weights
    total = float(np.var(joint))
    raw, floor = float(np.var(d.seeds_only @ weights)), d.seed_floor(weights)
    v_seed = min(total, max(0.0, raw - floor))
    dof = _dof(raw, floor, total - v_seed, d.seeds, d.images)
    z = float(norm.ppf(1 - alpha / 2))
    quantile = z if math.isinf(dof) else float(t.ppf(1 - alpha / 2, dof))
    half = quantile * math.sqrt(total)
    low, high = estimate - half, estimate + half
    if d.proportions and np.all(weights >= 0) and abs(weights.sum() - 1.0) < 1e-9:  # an accuracy: [0, 1]
        low, high = max(low, 0.0), min(high, 1.0)
    elif d.proportions and abs(weights.sum()) < 1e-9 and abs(weights[weights > 0].sum() - 1.0) < 1e-9:
        low, high = max(low, -1.0), min(high, 1.0)  # a difference of accuracies: [-1, 1]
    return Spread(estimate, low, high, v_seed, total - v_seed, quantile / z, dof)


@dataclass
class Comparison:
    """Every figure the reports print, per candidate (in input order), all from one set of draws."""

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
    distinct_images: int = 0
    diff_to_best_spread: list[Spread | None] = field(default_factory=list)

    @property
    def winner(self) -> int | None:
        """The best, when nothing else is left in the indistinguishable set (evidence rules for
        naming it in a verdict, such as the number of seeds, are the caller's)."""
        return self.best if sum(self.indistinguishable) == 1 else None

    def needed(self, i: int, alpha: float = ALPHA) -> dict[str, int | None]:
        """About how many seeds or images would resolve candidate ``i``'s observed gap to the best."""
        sp = self.diff_to_best_spread[i] if self.diff_to_best_spread else None
        if sp is None or self.diff_to_best[i] == 0:
            return {"seeds": None, "images": None, "both_times": None}
        return sp.needed(self.diff_to_best[i], self.seeds, self.distinct_images, alpha, bound=self.range_bound)

    def row(self, i: int) -> dict[str, Any]:
        lo, hi = self.ci[i]
        dlo, dhi = self.diff_to_best_ci[i]
        out = {"mean": self.mean[i], "ci_low": lo, "ci_high": hi, "diff_to_best": self.diff_to_best[i],
               "diff_to_best_ci_low": dlo, "diff_to_best_ci_high": dhi,
               "diff_to_best_marginal_ci_low": self.diff_to_best_ci_marginal[i][0],
               "diff_to_best_marginal_ci_high": self.diff_to_best_ci_marginal[i][1],
               "indistinguishable_from_best": self.indistinguishable[i], "is_best": i == self.best}
        sp = self.diff_to_best_spread[i] if self.diff_to_best_spread else None
        if sp is not None:
            need = self.needed(i)
            out.update(diff_to_best_var_seeds=sp.var_seeds, diff_to_best_var_images=sp.var_images,
                       seeds_to_resolve=need["seeds"], images_to_resolve=need["images"],
                       both_times_to_resolve=need["both_times"])
        if self.baseline is not None:
            b = self.diff_to_baseline_ci[i]
            out.update(diff_to_baseline=self.diff_to_baseline[i], diff_to_baseline_ci_low=b[0] if b else None,
                       diff_to_baseline_ci_high=b[1] if b else None, p_vs_baseline_holm=self.p_vs_baseline_holm[i])
        if self.mcnemar_p_vs_best[i] is not None:
            out["mcnemar_p_vs_best"] = self.mcnemar_p_vs_best[i]
        return out


def compare(names: Sequence[str], correct: Sequence[Sequence[Sequence[float]]], *, baseline: int | None = None,
            draws: int = DEFAULT_DRAWS, seed: int = 0, alpha: float = ALPHA,
            image_ids: Sequence[Sequence[Any]] | None = None) -> Comparison:
    """Means, intervals, paired differences to the best and the baseline, the indistinguishable set.

    ``image_ids[k]`` names the images seed ``k`` scored (see :func:`draw`); without them, seeds
    with equally long vectors are read as the same images."""
    return _compare(names, matrices(correct), None, baseline, draws, seed, alpha, image_ids)


def compare_scaled(names: Sequence[str], correct: Sequence[Sequence[Sequence[float]]], factors: Sequence[float], *,
                   baseline: int | None = None, draws: int = DEFAULT_DRAWS, seed: int = 0,
                   alpha: float = ALPHA, image_ids: Sequence[Sequence[Any]] | None = None) -> Comparison:
    """:func:`compare` of ``factors[c] * accuracy_c`` (a known, noise-free factor per candidate, such
    as an architecture search's ``(MACs / T) ** w``): the intervals, the best, the paired differences
    and the indistinguishable set are those of the scaled scores, on the same bootstrap draws as
    :func:`compare` with the same seed. McNemar's test stays on the unscaled per-image outcomes."""
    f = np.asarray(factors, dtype=float)
    if f.shape != (len(names),) or not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise ValueError("every candidate needs one finite, positive factor")
    return _compare(names, matrices(correct), f, baseline, draws, seed, alpha, image_ids)


def _compare(names: Sequence[str], mats: list[np.ndarray], factors: np.ndarray | None, baseline: int | None,
             draws: int, seed: int, alpha: float, image_ids: Sequence[Sequence[Any]] | None = None) -> Comparison:
    if len(mats[0]) != len(names):
        raise ValueError(f"{len(names)} names for {len(mats[0])} candidates")
    d = draw(mats, draws, seed, image_ids)
    return compare_draws(names, d.scaled(factors) if factors is not None else d, baseline=baseline, alpha=alpha,
                         unscaled=mats)


def contrast_interval(d: Draws, weights: np.ndarray, alpha: float = ALPHA) -> tuple[Spread, float]:
    """The spread of one contrast of accuracies and its two-sided bootstrap p-value against 0."""
    sp = spread(d, weights, float(d.estimates() @ weights), alpha)
    return sp, sp.p_value()


def compare_draws(names: Sequence[str], d: Draws, *, baseline: int | None = None, alpha: float = ALPHA,
                  unscaled: Sequence[np.ndarray] | None = None) -> Comparison:
    """:func:`compare` on draws already made (a subset of a larger comparison's, say)."""
    n = len(names)
    mats = list(unscaled) if unscaled is not None else d.mats
    acc = d.estimates()
    best = int(np.argmax(acc))  # ties: the first (callers list cheaper or reference candidates first)

    def contrast(i: int, j: int) -> np.ndarray:
        w = np.zeros(n)
        w[i] += 1.0
        w[j] -= 1.0
        return w

    unit = np.eye(n)
    ci = []
    for i in range(n):
        sp = spread(d, unit[i], float(acc[i]), alpha)
        ci.append((sp.low, sp.high))
    to_best: list[Spread | None] = [None if i == best else spread(d, contrast(i, best), float(acc[i] - acc[best]), alpha)
                                    for i in range(n)]
    widen = max([sp.factor for sp in to_best if sp is not None], default=1.0)
    centred = d.joint - d.joint.mean(axis=0, keepdims=True)
    q = widen * float(np.quantile(centred.max(axis=1) - centred.min(axis=1), 1 - alpha)) if n > 1 else 0.0
    # simultaneous is never narrower than any one pair's own interval
    q = max([q] + [(sp.high - sp.low) / 2 for sp in to_best if sp is not None])
    diff_best = [float(acc[i] - acc[best]) for i in range(n)]
    indist = [bool(acc[best] - acc[i] <= q + 1e-12) for i in range(n)]
    marginal = [(sp.low, sp.high) if sp is not None else (0.0, 0.0) for sp in to_best]
    d_base: list[float | None] = [None] * n
    d_base_ci: list[tuple[float, float] | None] = [None] * n
    p_holm: list[float | None] = [None] * n
    if baseline is not None:
        others = [i for i in range(n) if i != baseline]
        raw = []
        for i in others:
            sp, p = contrast_interval(d, contrast(i, baseline), alpha)
            raw.append(p)
            d_base[i], d_base_ci[i] = sp.estimate, (sp.low, sp.high)
        for i, p in zip(others, holm(raw) if raw else []):
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
        names=list(names), mean=acc.tolist(), ci=ci, best=best,
        diff_to_best=diff_best, diff_to_best_ci=[(max(x - q, -1.0), min(x + q, 1.0)) if d.proportions else (x - q, x + q)
                                                 for x in diff_best],
        diff_to_best_ci_marginal=marginal, indistinguishable=indist, range_bound=q, baseline=baseline,
        diff_to_baseline=d_base, diff_to_baseline_ci=d_base_ci, p_vs_baseline_holm=p_holm,
        mcnemar_p_vs_best=mcnemar, seeds=len(mats), images=[m.shape[1] for m in mats], draws=len(d.joint),
        distinct_images=d.images, diff_to_best_spread=to_best,
    )


def paired_difference(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], *, draws: int = DEFAULT_DRAWS,
                      seed: int = 0, image_ids: Sequence[Sequence[Any]] | None = None,
                      alpha: float = ALPHA) -> dict[str, Any]:
    """Accuracy of ``a`` minus ``b`` (per seed, per image, paired) with its 95% bootstrap interval,
    the seed and image parts of its variance, and about how many seeds or images would resolve it."""
    mats = matrices([a, b])
    acc = point_estimates(mats)
    d = draw(mats, draws, seed, image_ids)
    sp = spread(d, np.array([1.0, -1.0]), float(acc[0] - acc[1]), alpha)
    need = (sp.needed(sp.estimate, d.seeds, d.images, alpha) if sp.estimate
            else {"seeds": None, "images": None, "both_times": None})
    return {"diff": sp.estimate, "ci_low": sp.low, "ci_high": sp.high, "separated": bool(sp.low > 0),
            "seeds": d.seeds, "images": d.images, "var_seeds": sp.var_seeds, "var_images": sp.var_images,
            "half_width": (sp.high - sp.low) / 2, "seeds_to_resolve": need["seeds"],
            "images_to_resolve": need["images"], "both_times_to_resolve": need["both_times"]}


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
