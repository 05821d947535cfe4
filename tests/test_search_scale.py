"""Compound-scaling grid search: enumeration, tolerance, resumable studies, bad input, one real run."""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from effnet.search.budget import Budget
from effnet.arch import cost, get_network, round_filters, round_repeats
from effnet.search.kinds.grid import (Coefficients, ScaleSearchConfig, grid_candidates, run_scale_search,
                                        scaled_candidate)
from effnet.search.runner import StudyOptions
from effnet.search.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


class PeakTrainer:
    """Accuracy peaks at (1.2, 1.1, 1.15); no training. Records every call."""

    num_classes = 3

    def __init__(self) -> None:
        self.calls: list[tuple[float, float, float, int]] = []

    def __call__(self, desc, img_size, seed, reporter, budget_fraction=1.0, seed_offset=0):
        a, b, g = (float(x) for x in re.search(r"-a([\d.]+)-b([\d.]+)-g([\d.]+)-phi", desc.name).groups())
        self.calls.append((a, b, g, seed))
        acc = 0.9 - abs(a - 1.2) - abs(b - 1.1) - abs(g - 1.15) + 0.001 * seed
        acc -= 0.45 if budget_fraction < 1 else 0.0  # the positive control's short run learns less
        reporter.report(1, acc)
        return {"val_acc": acc, "train_time_s": 0.0}


def _config(**kw):
    base = dict(base=get_network("efficientnet_b0"), data="synthetic", img_size=32, budget=Budget(1),
                grid_step=0.1, tolerance=0.05, max_coefficient=1.3)
    base.update(kw)
    return ScaleSearchConfig(**base)


def _states(url: str, name: str) -> list[tuple[int, str, object]]:
    import optuna

    study = optuna.load_study(study_name=name, storage=url)
    return [(t.number, t.state.name, t.value) for t in study.get_trials(deepcopy=False)]


def test_grid_candidates_are_exactly_the_points_within_the_relative_tolerance():
    got = grid_candidates(0.1, 0.05)
    values = [round(1 + k * 0.1, 10) for k in range(0, 13)]
    expect = {(a, b, g) for a in values for b in values for g in values if abs(a * b * b * g * g - 2) <= 0.1 + 1e-12}
    assert {(c.alpha, c.beta, c.gamma) for c in got} == expect
    assert (1.9, 1.0, 1.0) in expect and (2.2, 1.0, 1.0) not in expect
    assert all(1.9 - 1e-9 <= c.product <= 2.1 + 1e-9 and min(c.alpha, c.beta, c.gamma) >= 1 for c in got)
    assert Coefficients(1.2, 1.0, 1.3) in got


def test_grid_tolerance_and_cap_shrink_the_grid():
    wide, narrow = grid_candidates(0.05, 0.1), grid_candidates(0.05, 0.02)
    assert set(narrow) < set(wide)
    capped = grid_candidates(0.05, 0.1, max_coefficient=1.3)
    assert capped and all(max(c.alpha, c.beta, c.gamma) <= 1.3 for c in capped)


@pytest.mark.parametrize("step, tol, msg", [(0.3, 0.01, "no alpha, beta, gamma"), (0, 0.1, "grid step"),
                                            (0.1, 1.5, "tolerance")])
def test_grid_without_candidates_or_with_bad_numbers_is_refused(step, tol, msg):
    with pytest.raises(ValueError, match=msg):
        grid_candidates(step, tol)


def test_candidate_trains_at_base_resolution_times_gamma_to_the_phi():
    desc, px = scaled_candidate(get_network("efficientnet_b0"), Coefficients(1.2, 1.1, 1.15), 2.0, 64)
    assert px == round(64 * 1.15**2) == desc.resolution
    assert desc.stages[-1].out_channels == round_filters(320, 1.1**2)
    assert desc.stages[-1].repeats == round_repeats(1, 1.2**2)


def test_search_scores_every_candidate_with_paired_seeds_and_names_the_planted_peak(tmp_path):
    cfg = _config(seeds=2)
    trainer = PeakTrainer()
    summary = run_scale_search(cfg, StudyOptions(tmp_path), trainer=trainer)
    cands = cfg.plan(3)
    assert len(trainer.calls) == 2 * len(cands)
    assert sorted(seed for *_, seed in trainer.calls) == sorted([0, 1] * len(cands))
    # the peak of PeakTrainer is the paper's point; the control (base vs base at 4x) is separated
    assert summary["winner"] == "a1.2-b1.1-g1.15" and summary["decided"]
    assert summary["verdict"].startswith("Winner a1.2-b1.1-g1.15")
    assert summary["control"]["separated"] and summary["control"]["diff"] == pytest.approx(0.45)
    assert summary["best"]["val_acc"] == pytest.approx(0.9005)  # mean of seeds 0 and 1
    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert len(rows) == 2 * len(cands) and {r["state"] for r in rows} == {"COMPLETE"}
    assert all(int(r["macs"]) > 0 for r in rows)
    stored = json.loads((tmp_path / "best.json").read_text())
    assert stored["best"]["alpha"] == 1.2 and stored["verdict"] == summary["verdict"]
    for png in ("heatmap.png", "acc_vs_flops.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG
    assert "FLOPs" in (tmp_path / "points.md").read_text()


def test_plan_always_has_the_controls_the_paper_point_and_the_corners_at_matched_cost():
    cands, notes = _config(img_size=64).plan_with_notes(3)
    keys = [c.key for c in cands]
    assert keys[0] == "base" and keys[-2:] == ["base-quarter", "base-twin"]
    quarter, twin = cands[-2:]
    # the controls are the base itself: a quarter of the budget, and other training seeds
    same = {json.dumps(c.desc.replace(name="x").to_dict()) for c in (quarter, twin, cands[0])}
    assert len(same) == 1 and quarter.img_size == twin.img_size == 64
    assert (quarter.budget_fraction, quarter.seed_offset) == (0.25, 0) and (twin.budget_fraction, twin.seed_offset) == (1.0, 1000)
    assert {"a1.2-b1.1-g1.15", "a2-b1-g1", "a1-b1.4142-g1", "a1-b1-g1.4142"} <= set(keys)
    assert len(keys) == len(set(keys))
    b0 = get_network("efficientnet_b0").replace(num_classes=3)
    base_macs = cost(b0, 64).macs
    for c in cands:
        real = cost(c.desc, c.img_size).macs / base_macs
        assert c.facts["achieved_ratio"] == pytest.approx(real)  # the ratio reported is the realised one
        if c.role == "candidate":  # grid points are on target or dropped
            assert abs(real / 2 - 1) <= 0.1 + 1e-9
    # identical networks are one candidate: no two candidates build the same network at the same size
    trained = [c for c in cands if c.role != "control"]
    sigs = {(json.dumps(c.desc.replace(name="x").to_dict(), sort_keys=True), c.img_size) for c in trained}
    assert len(sigs) == len(trained)
    assert notes["dropped_off_target"] >= 0
    # the compound control, as studies made before the choice: the base at 4x, second in the plan
    legacy = _config(img_size=64, control="compound").plan(3)
    assert [c.key for c in legacy][:2] == ["base", "control-4x"] and "base-twin" not in [c.key for c in legacy]
    assert abs(legacy[1].facts["achieved_ratio"] / 4 - 1) < 0.35
    assert "control" not in _config(control="compound").settings() and _config().settings()["control"] == "budget"


def test_points_that_build_the_same_network_are_merged():
    # at phi 1 and 32 px, alpha 1.1 and 1.2 round B0's one-block stages the same way for some points
    cfg = _config(grid_step=0.05, tolerance=0.1, max_coefficient=1.25, cost_tolerance=0.5)
    cands, notes = cfg.plan_with_notes(3)
    merged = [k for ks in notes["merged"].values() for k in ks]
    assert merged and not set(merged) & {c.key for c in cands}


def test_rerun_of_a_finished_search_trains_nothing(tmp_path):
    run_scale_search(_config(), StudyOptions(tmp_path), trainer=PeakTrainer())
    again = PeakTrainer()
    summary = run_scale_search(_config(), StudyOptions(tmp_path), trainer=again)
    assert again.calls == [] and summary["finished"]


def test_pruning_stops_trials_below_the_median(tmp_path):
    class Curves:
        num_classes = 3

        def __init__(self):
            self.epochs_run = {}

        def __call__(self, desc, img_size, seed, reporter, **control):
            acc = 0.9 if "-a1-" in desc.name else 0.3  # the first trials (alpha 1) set a high median
            for epoch in range(1, 4):
                self.epochs_run[desc.name] = epoch
                reporter.report(epoch, acc)
            return {"val_acc": acc}

    t = Curves()
    summary = run_scale_search(_config(prune=True, grid_step=0.1, tolerance=0.05, max_coefficient=1.4),
                               StudyOptions(tmp_path), trainer=t)
    assert summary["progress"]["pruned"] >= 1
    assert any(n == 1 for n in t.epochs_run.values())  # a pruned trial stopped after its first epoch


WORKER = textwrap.dedent('''
    import os, sys, time
    from effnet.arch import get_network
    from effnet.search.budget import Budget
    from effnet.search.kinds.grid import ScaleSearchConfig, run_scale_search
    from effnet.search.runner import StudyOptions

    out, log, sleep, storage = sys.argv[1], sys.argv[2], float(sys.argv[3]), (sys.argv[4] if len(sys.argv) > 4 else None)

    class Slow:
        num_classes = 3
        def __call__(self, desc, img_size, seed, reporter, **control):
            with open(log, "a") as f:
                f.write(f"start {desc.name} {os.getpid()}\\n")
            time.sleep(sleep)
            with open(log, "a") as f:
                f.write(f"done {desc.name} {os.getpid()}\\n")
            return {"val_acc": 0.5}

    cfg = ScaleSearchConfig(get_network("efficientnet_b0"), data="synthetic", img_size=32, budget=Budget(1),
                            grid_step=0.1, tolerance=0.05, max_coefficient=1.3)
    opts = StudyOptions(out, storage=storage, study_name="shared", heartbeat_interval=1, grace_period=2)
    run_scale_search(cfg, opts, trainer=Slow())
''')


def _worker(tmp_path: Path, log: Path, sleep: float, storage: str | None = None) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    args = [sys.executable, str(script), str(tmp_path / "out"), str(log), str(sleep)] + ([storage] if storage else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _lines(log: Path, word: str) -> list[str]:
    return [line.split()[1] for line in log.read_text().splitlines() if line.startswith(word)] if log.exists() else []


def _wait_for(cond, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


N_SMALL_GRID = len(_config().plan(3))  # the candidates of WORKER's study (one seed each)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_worker_loses_no_finished_trial_and_the_rerun_retries_only_the_interrupted_one(tmp_path, sig):
    log = tmp_path / "log.txt"
    proc = _worker(tmp_path, log, sleep=1.0)
    # at least three started (a loaded machine may poll after the third): kill during one that runs
    _wait_for(lambda: len(_lines(log, "start")) >= 3 and len(_lines(log, "start")) > len(_lines(log, "done")),
              timeout=180)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    finished = _lines(log, "done")
    interrupted = [n for n in _lines(log, "start") if n not in finished]
    assert len(finished) >= 2 and len(interrupted) == 1

    rerun = _worker(tmp_path, log, sleep=0.0)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()[-2000:]
    starts = _lines(log, "start")
    assert all(starts.count(n) == 1 for n in finished)  # no finished point ran again
    assert starts.count(interrupted[0]) == 2  # the interrupted one was retried
    assert sorted(set(starts)) == sorted(set(_lines(log, "done"))) and len(set(starts)) == N_SMALL_GRID
    states = _states(f"sqlite:///{tmp_path / 'out' / 'study.db'}", "shared")
    assert [s for _, s, _ in states].count("COMPLETE") == N_SMALL_GRID
    assert [s for _, s, _ in states].count("FAIL") == 1
    rows = list(csv.DictReader((tmp_path / "out" / "trials.csv").open()))
    assert len(rows) == N_SMALL_GRID and all(r["state"] == "COMPLETE" for r in rows)


def test_two_workers_on_one_sqlite_study_never_run_a_point_twice(tmp_path):
    log = tmp_path / "log.txt"
    workers = [_worker(tmp_path, log, sleep=0.2) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()[-2000:]
    starts = _lines(log, "start")
    assert len(starts) == len(set(starts)) == N_SMALL_GRID


def _cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``effnet ARGS`` in this process; returns code and captured output like ``subprocess.run``."""
    import contextlib
    import io

    from effnet.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["effnet", *args], code, out.getvalue(), err.getvalue())


def _one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("effnet search: error:") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_input_gives_one_line_and_touches_no_stored_trial(tmp_path):
    out = tmp_path / "out"
    run_scale_search(_config(), StudyOptions(out, study_name="kept"), trainer=PeakTrainer())
    url = f"sqlite:///{out / 'study.db'}"
    before = _states(url, "kept")
    common = ["search", "scale", "--data", "synthetic", "--img-size", "32", "--out", str(out), "--study", "kept"]

    _one_line_error(_cli(*common, "--budget-epochs", "0"), "budget")
    _one_line_error(_cli(*common, "--grid-step", "0.3", "--tolerance", "0.01"), "no alpha, beta, gamma")
    _one_line_error(_cli(*common, "--grid-step", "0.1", "--tolerance", "0.05", "--max-coefficient", "1.3",
                         "--budget-epochs", "3"), "other settings")
    unreachable = _cli(*common, "--storage", "postgresql+psycopg2://u:secret@127.0.0.1:1/none")
    _one_line_error(unreachable, "cannot reach")
    assert "secret" not in unreachable.stderr  # the password is not printed
    assert _states(url, "kept") == before


def test_storage_settings_are_checked():
    with pytest.raises(ValueError, match="grace period"):
        open_storage("sqlite://", heartbeat_interval=5, grace_period=5)


@pytest.mark.slow
def test_grid_search_end_to_end_with_real_training(tmp_path):
    out = tmp_path / "search"
    proc = _cli("search", "scale", "--data", "synthetic", "--limit-per-class", "4", "--img-size", "32",
                "--budget-epochs", "1", "--grid-step", "0.1", "--tolerance", "0.02", "--max-coefficient", "1.3",
                "--batch-size", "8", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if not line.startswith(("grid search:", "trial "))]
    assert lines[0].startswith("Positive control") and lines[1].startswith("Negative control")  # the controls first
    assert lines[2].startswith(("Winner", "Not decided"))  # then the verdict
    rows = list(csv.DictReader((out / "trials.csv").open()))
    n = len(_config(tolerance=0.02).plan(3))
    assert len(rows) == n and all(r["state"] == "COMPLETE" and 0 <= float(r["val_acc"]) <= 1 for r in rows)
    assert float(rows[0]["train_time_s"]) > 0 and all(r["test_acc"] != "" for r in rows)
    summary = json.loads((out / "best.json").read_text())
    per = {p["key"]: p for p in summary["per_candidate"]}
    assert per["base"]["seeds_done"] == 1 and per["base"]["mean"] is not None
    best = summary["best"]
    family = tmp_path / "family"
    proc = _cli("scale", "--base", "efficientnet_b0", "--coefficients", str(out / "best.json"), "--phi", "0,1",
                "--img-size", "32", "--out", str(family))
    assert proc.returncode == 0, proc.stderr
    from effnet.arch import Network

    assert Network.load(family / "phi1.json").resolution == round(32 * best["gamma"])


def test_grid_search_json_holds_per_candidate_intervals_differences_and_the_control(tmp_path, monkeypatch):
    import effnet.train
    from search_helpers import PredictingQuickTrain

    monkeypatch.setattr(effnet.train, "quick_train", PredictingQuickTrain())
    out = tmp_path / "summary.json"
    proc = _cli("search", "scale", "--data", "synthetic", "--limit-per-class", "100", "--img-size", "32",
                "--budget-epochs", "1", "--grid-step", "0.1", "--tolerance", "0.02", "--max-coefficient", "1.3",
                "--seeds", "3", "--out", str(tmp_path / "run"), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    printed = [line for line in proc.stdout.splitlines() if not line.startswith(("grid search:", "trial "))]
    # the controls first, then the verdict
    assert printed[:3] == [data["control"]["text"], data["negative_control"]["text"], data["verdict"]]
    assert data["negative_control"]["passed"]  # the base twice, other seeds: indistinguishable
    rows = {r["key"]: r for r in data["per_candidate"]}
    assert {"base", "base-quarter", "base-twin", "a1.2-b1.1-g1.15", "a2-b1-g1", "a1-b1.4142-g1",
            "a1-b1-g1.4142"} <= set(rows)
    for r in rows.values():
        assert r["seeds_done"] == 3 and r["achieved_ratio"] > 0 and r["ci_low"] <= r["mean"] <= r["ci_high"]
        assert r["control_separated"] == data["control"]["separated"]
        if r["role"] in ("candidate", "reference"):
            assert r["diff_to_best_ci_low"] <= r["diff_to_best"] <= r["diff_to_best_ci_high"]
            assert isinstance(r["indistinguishable_from_best"], bool)
    assert data["control"]["separated"]
    named = data["winner"]
    assert (named is None) == (len(data["indistinguishable"]) > 1)  # a winner only when it alone is left


def test_racing_gives_survivors_more_seeds_and_reports_training_received(tmp_path, monkeypatch):
    import effnet.train
    from search_helpers import PredictingQuickTrain

    def peak(desc, img_size):  # PeakTrainer's landscape, per image: the paper's point is clearly best
        a, b, g = (float(x) for x in re.search(r"-a([\d.]+)-b([\d.]+)-g([\d.]+)-phi", desc.name).groups())
        return max(0.2, 0.9 - 2 * (abs(a - 1.2) + abs(b - 1.1) + abs(g - 1.15)))

    monkeypatch.setattr(effnet.train, "quick_train", PredictingQuickTrain(peak))
    proc = _cli("search", "scale", "--data", "synthetic", "--limit-per-class", "60", "--img-size", "32",
                "--budget-epochs", "1", "--grid-step", "0.1", "--tolerance", "0.02", "--max-coefficient", "1.3",
                "--seeds", "1", "--race", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    race = json.loads((tmp_path / "race.json").read_text())
    first = race["rounds"][0]
    assert first["epochs"] == 1 and first["seeds"] == 1 and len(first["kept"]) < first["candidates"]
    got = {k: v["epoch_seeds"] for k, v in race["training_received"].items()}
    controls = ("base", "base-quarter", "base-twin")
    assert {got[k] for k in controls} == {1 + 2 * 2}  # the controls run in every round
    for key in first["kept"]:
        assert got[key] == 5  # 1 epoch x 1 seed, then 2 epochs x 2 seeds
    assert {got[k] for k in got if k not in first["kept"] and k not in controls} == {1}


def test_extra_worker_processes_log_at_the_commands_optuna_level(tmp_path):
    import optuna

    from effnet.search.runner import run_local_workers
    from search_helpers import record_optuna_verbosity

    path = tmp_path / "levels.txt"
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        run_local_workers(record_optuna_verbosity, (str(path),), 2, local=lambda: record_optuna_verbosity(path) or 0)
    finally:
        optuna.logging.set_verbosity(before)
    assert path.read_text().split() == [str(optuna.logging.WARNING)] * 2


def test_a_worker_that_looks_while_another_creates_the_study_joins_it():
    """Worker B reads the study between worker A creating it and A marking it and queueing trials."""
    import optuna

    from effnet.search.engine import KIND_ATTR, SETTINGS_ATTR, check_settings

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="shared", direction="maximize")
    settings = {"budget": 2}

    def creator_finishes():
        study.set_user_attr(KIND_ATTR, "grid search")
        study.set_user_attr(SETTINGS_ATTR, settings)
        study.enqueue_trial({}, user_attrs={"effnet.key": "a"})

    class Racing:
        """Storage whose first read of the marks or the trial count lets worker A finish right after."""

        def __init__(self) -> None:
            self.raced = False

        def __getattr__(self, name):
            real = getattr(storage, name)
            if name not in ("get_study_user_attrs", "get_n_trials"):
                return real

            def read(*args, **kwargs):
                out = real(*args, **kwargs)
                if not self.raced:
                    self.raced = True
                    creator_finishes()
                return out
            return read

    assert check_settings(Racing(), "shared", "grid search", settings) is True


def test_a_solved_grid_is_read_back_from_the_plan_cache_unchanged(tmp_path, monkeypatch):
    from effnet.search.kinds import grid as scale_search

    monkeypatch.setenv("EFFNET_PLAN_CACHE", str(tmp_path))
    cfg = _config(img_size=64)
    fresh = cfg._plan(3)
    scale_search._PLANS.clear()
    assert cfg.plan_with_notes(3) == fresh  # solved, then written
    (cache,) = tmp_path.glob("*.json")
    scale_search._PLANS.clear()
    monkeypatch.setattr(ScaleSearchConfig, "_plan", lambda self, n: pytest.fail("solved again"))
    assert cfg.plan_with_notes(3) == fresh  # read back, not solved
    cache.write_text('{"candidates": [{"key": 1')  # damaged: solved again and rewritten
    monkeypatch.undo()
    monkeypatch.setenv("EFFNET_PLAN_CACHE", str(tmp_path))
    scale_search._PLANS.clear()
    assert cfg.plan_with_notes(3) == fresh
    assert json.loads(cache.read_text())["candidates"][0]["key"] == fresh[0][0].key


def test_plan_cache_can_be_turned_off_and_an_unwritable_one_is_skipped(tmp_path, monkeypatch):
    from effnet.search.kinds import grid as scale_search

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for env in ("off", str(blocker / "plans")):
        monkeypatch.setenv("EFFNET_PLAN_CACHE", env)
        scale_search._PLANS.clear()
        assert len(_config().plan(3)) == N_SMALL_GRID
    assert scale_search.plan_cache_dir() is not None and not (blocker / "plans").exists()


def test_the_papers_point_is_re_solved_only_where_phi_1_misses_the_target_cost():
    from effnet.arch import ALPHA, BETA, GAMMA
    from effnet.factory import resolve_description
    from effnet.search.kinds.grid import Coefficients, matched_point

    base = resolve_description("efficientnet_b0").replace(num_classes=10)
    point = Coefficients(ALPHA, BETA, GAMMA)
    # at 32 px the point trains at 37 px, whose last feature map is 2x2 instead of 1x1: far off 2x, and
    # no phi along its direction lands within 10% (the next rounding step down is 1.5x)
    at32 = matched_point(base, point, phi=1.0, img_size=32)
    assert at32["nominal_ratio"] > 3 and not at32["on_target"] and at32["phi"] < 1
    # at 40 px phi = 1 is already within 10%: kept as it is
    at40 = matched_point(base, point, phi=1.0, img_size=40)
    assert at40["on_target"] and at40["phi"] == 1.0 and at40["ratio"] == at40["nominal_ratio"]
    assert at40["img_size"] == round(40 * GAMMA)


def test_the_paper_point_cost_script_records_where_the_point_misses_its_target(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "paper_point_cost.py"
    out = tmp_path / "cost.json"
    done = subprocess.run([sys.executable, str(script), "--sizes", "31-41", "--json", str(out),
                           "--plot", str(tmp_path / "cost.png")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert [r["base_px"] for r in summary["rows"]] == list(range(31, 42))
    assert summary["off_target_ranges"] == ["31-32"] and 40 in summary["on_target_sizes"]
    assert (tmp_path / "cost.png").read_bytes()[:4] == b"\x89PNG"
    bad = subprocess.run([sys.executable, str(script), "--sizes", "40-30", "--json", str(out)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--sizes must be LO-HI" in bad.stderr and "Traceback" not in bad.stderr
