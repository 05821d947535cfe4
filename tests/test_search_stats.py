"""Paired statistics of studies, tested on synthetic scores with a known answer (fixed seeds).

These test the statistic, not training: per-image correctness is drawn from known accuracies, with
a seed-level shift shared by all images of one run (training noise) and independent image noise.
"""
from __future__ import annotations

import numpy as np
import pytest

from effnet.search.calibration import Scenario, replicate
from effnet.search.stats import Spread, bootstrap, compare, holm, independent_splits, paired_difference


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


# ----- an image is one unit, however many seeds scored it --------------------------------------

def image_driven(rng, images=400, seeds=3):
    """Seeds agree on every image: correctness is a property of the image, not of the run."""
    p = rng.random(images) < 0.7
    return [[p.astype(float)] * seeds]


def test_seeds_that_share_a_split_do_not_multiply_the_images():
    rng = np.random.default_rng(11)
    three = image_driven(rng)
    one = [three[0][:1]]
    w3 = np.diff(compare(["a"], three, draws=1500).ci[0])[0]
    w1 = np.diff(compare(["a"], one, draws=1500).ci[0])[0]
    assert w3 == pytest.approx(w1, rel=0.15)  # three copies of 400 images are still 400 images
    ids = independent_splits([400, 400, 400])
    w_own = np.diff(compare(["a"], three, draws=1500, image_ids=ids).ci[0])[0]
    assert w_own < 0.9 * w3  # seeds with their own splits did score 1,200 images (read conservatively)


def test_explicit_image_ids_that_repeat_within_a_seed_count_each_image_once():
    rng = np.random.default_rng(12)
    a = (rng.random(300) < 0.8).astype(float)
    b = (rng.random(300) < 0.6).astype(float)
    single = paired_difference([a, a], [b, b], draws=1500)
    ids = [np.tile(np.arange(300), 3)] * 2
    pooled = paired_difference([np.tile(a, 3)] * 2, [np.tile(b, 3)] * 2, draws=1500, image_ids=ids)
    assert pooled["images"] == 300
    assert pooled["ci_high"] - pooled["ci_low"] == pytest.approx(single["ci_high"] - single["ci_low"], rel=0.15)


def test_image_ids_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="image ids"):
        compare(["a"], [[[1, 0, 1]]], image_ids=[[0, 1]])


@pytest.mark.parametrize("kind", ["swap", "image"])
def test_equal_candidates_are_separated_rarely_and_intervals_cover(kind):
    """The promise at a small size: at most 8% false separations, at least 90% coverage."""
    r = replicate(Scenario(kind), seeds=3, images=300, replications=120, draws=300, seed=1)
    assert r["false_separation"] <= 0.08, r
    assert r["coverage"] >= 0.90, r


@pytest.mark.parametrize("seeds", [2, 3])
def test_intervals_still_cover_when_training_noise_dominates(seeds):
    """Many images, few seeds, large run-to-run noise: the interval rests on the seeds' spread."""
    r = replicate(Scenario("image", seed_sd=0.3), seeds=seeds, images=1500, replications=100, draws=300, seed=2)
    assert r["false_separation"] <= 0.08 and r["coverage"] >= 0.90, r


def test_a_planted_ten_point_difference_is_found():
    r = replicate(Scenario("gap", gap=0.10), seeds=3, images=400, replications=80, draws=300, seed=3)
    assert r["power"] >= 0.80, r


def test_what_it_would_take_grows_with_the_gap_it_must_resolve():
    rng = np.random.default_rng(4)
    a, b = runs(rng, [0.72, 0.68], seeds=3, images=500, seed_sd=0.005)
    d = paired_difference(a, b, draws=1000)
    assert not d["separated"] and d["diff"] > 0
    assert d["images_to_resolve"] is None or d["images_to_resolve"] > 500
    assert d["seeds_to_resolve"] is None or d["seeds_to_resolve"] > 3
    assert d["images_to_resolve"] or d["seeds_to_resolve"] or d["both_times_to_resolve"] > 1
    sp = Spread(0.02, -0.02, 0.06, var_seeds=0.0, var_images=4e-4, factor=1.0)
    assert sp.needed(0.02, 3, 500)["seeds"] is None  # training noise is not what stands in the way
    assert sp.needed(0.02, 3, 500)["images"] > 500
    assert sp.needed(0.04, 3, 500)["images"] < sp.needed(0.02, 3, 500)["images"]
