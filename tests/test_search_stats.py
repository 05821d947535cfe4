"""Paired statistics of studies, tested on synthetic scores with a known answer (fixed seeds).

These test the statistic, not training: per-image correctness is drawn from known accuracies, with
a seed-level shift shared by all images of one run (training noise) and independent image noise.
"""
from __future__ import annotations

import numpy as np
import pytest

from effnet.search.stats import bootstrap, compare, holm, paired_difference


def runs(rng: np.random.Generator, accuracies, seeds: int = 3, images: int = 300, seed_sd: float = 0.02):
    """``correct[c][k]``: candidate c, seed k, one 0/1 per image (the same images for every candidate)."""
    out = []
    for acc in accuracies:
        per_seed = []
        for _ in range(seeds):
            p = float(np.clip(acc + rng.normal(0.0, seed_sd), 0.0, 1.0))
            per_seed.append((rng.random(images) < p).astype(float))
        out.append(per_seed)
    return out


def test_identical_candidates_are_reported_indistinguishable_in_at_least_95_percent_of_runs():
    rng = np.random.default_rng(2024)
    repeats, clean = 60, 0
    for r in range(repeats):
        cmp = compare([f"c{i}" for i in range(6)], runs(rng, [0.7] * 6), draws=400, seed=r)
        clean += all(cmp.indistinguishable) and cmp.winner is None
    assert clean >= 0.95 * repeats, clean


def test_a_planted_difference_is_found_and_its_interval_excludes_zero():
    rng = np.random.default_rng(7)
    cmp = compare(["small", "big", "also-small"], runs(rng, [0.60, 0.75, 0.60]), baseline=0, draws=1000)
    assert cmp.best == 1 and cmp.winner == 1
    assert cmp.indistinguishable == [False, True, False]
    lo, hi = cmp.diff_to_best_ci[0]
    assert hi < 0  # the small one is worse than the best: its interval excludes 0
    assert cmp.diff_to_baseline_ci[1][0] > 0 and cmp.p_vs_baseline_holm[1] < 0.05
    d = paired_difference(runs(np.random.default_rng(8), [0.75])[0], runs(np.random.default_rng(9), [0.6])[0])
    assert d["separated"] and d["ci_low"] > 0


def test_seed_noise_widens_the_interval_one_run_per_seed_cannot_hide():
    """Two candidates whose runs differ by a large seed-to-seed spread but equal mean are not separated,
    even though thousands of images would separate any one pair of runs."""
    rng = np.random.default_rng(3)
    cmp = compare(["a", "b"], runs(rng, [0.7, 0.7], seeds=3, images=5000, seed_sd=0.05), draws=1000)
    assert all(cmp.indistinguishable)
    assert cmp.ci[0][1] - cmp.ci[0][0] > 2 * 1.96 * np.sqrt(0.21 / 15000)  # wider than images alone give


def test_one_seed_adds_mcnemar_and_accuracies_per_run_work_without_images():
    rng = np.random.default_rng(5)
    one = compare(["a", "b"], runs(rng, [0.6, 0.8], seeds=1, images=400), draws=500)
    assert one.mcnemar_p_vs_best[0] < 1e-6 and one.mcnemar_p_vs_best[1] is None
    per_run = compare(["a", "b"], [[[0.61], [0.60], [0.62]], [[0.71], [0.70], [0.72]]], draws=500)
    assert per_run.winner == 1 and per_run.mean == pytest.approx([0.61, 0.71])


def test_bootstrap_is_paired_and_reproducible():
    rng = np.random.default_rng(1)
    data = runs(rng, [0.7, 0.7])
    same = [data[0], data[0]]
    mats = [np.vstack([same[0][k], same[1][k]]) for k in range(3)]
    draws = bootstrap(mats, 300, seed=4)
    assert np.array_equal(draws[:, 0], draws[:, 1])  # identical candidates get identical draws
    assert np.array_equal(draws, bootstrap(mats, 300, seed=4))


def test_holm_matches_the_step_down_definition():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def test_candidates_scored_on_different_images_are_refused():
    with pytest.raises(ValueError, match="different numbers of images"):
        compare(["a", "b"], [[np.ones(10)], [np.ones(9)]])
