"""Architecture search: the RL controller, the Optuna strategies, storage, resume and the command."""
from __future__ import annotations

import csv
import json
import statistics
import threading

import optuna
import pytest
import torch

from effnet.arch import Network, cost, scale
from effnet.archsearch.search import (
    CONTROLLER_ATTR, ArchSearchSettings, SyntheticAccuracy, analyse_search, best_description, count_finished, open_study,
    pareto_front, run_arch_search, study_controller, trial_rows, write_outputs,
)
from effnet.archsearch.space import reward
from effnet.archsearch.controller import Controller, ControllerConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)
TARGET = 8_000_000  # B0-sized networks at 32 px are near 8.5M multiply-adds


def settings(**kw) -> ArchSearchSettings:
    base = dict(target_macs=TARGET, img_size=32, num_classes=4, include_base=False, data="synthetic")
    base.update(kw)
    return ArchSearchSettings(**base)


def rewards(study) -> list[float]:
    return [t.user_attrs["reward"] for t in sorted(study.trials, key=lambda t: t.number) if "reward" in t.user_attrs]


# ----- the controller on its own -----------------------------------------------------------

def test_controller_state_survives_json_and_continues_identically():
    sizes = (5, 2, 3)
    a = Controller(sizes)
    for i, (c, r) in enumerate([((0, 1, 2), 0.5), ((4, 0, 1), 0.7), ((1, 1, 0), 0.6)]):
        a.learn([(i, c, r, None)])
    b = Controller.from_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.consumed == a.consumed and b.baseline == a.baseline and b.updates == a.updates
    a.update((2, 1, 1), 0.9)
    b.update((2, 1, 1), 0.9)  # same logits, same Adam moments -> same step
    assert torch.equal(a.logits, b.logits)


def test_controller_learns_from_each_trial_once():
    ctrl = Controller((3, 3))
    records = [(0, (0, 0), 0.5, None), (1, (1, 1), 0.6, None)]
    assert ctrl.learn(records) == 2
    assert ctrl.learn(records) == 0
    assert ctrl.learn(records + [(2, (2, 2), 0.7, None)]) == 1
    assert ctrl.updates == 3


def test_overwritten_controller_state_loses_no_trial():
    # Two workers load the same state; A learns trials {1, 3}, B learns {1, 2}; B writes last.
    start = Controller((4, 4))
    start.learn([(0, (0, 0), 0.5, None)])
    saved = json.dumps(start.state_dict())
    a, b = (Controller.from_state_dict(json.loads(saved)) for _ in range(2))
    a.learn([(1, (1, 1), 0.9, None), (3, (3, 3), 0.2, None)])
    b.learn([(1, (1, 1), 0.9, None), (2, (2, 2), 0.4, None)])
    survivor = Controller.from_state_dict(json.loads(json.dumps(b.state_dict())))
    everything = [(n, (n, n), 0.5, None) for n in range(4)]
    assert survivor.learn(everything) == 1  # only trial 3, which A had learnt, is new to B's lineage
    assert survivor.consumed == {0, 1, 2, 3} and survivor.updates == 4


def test_controller_moves_probability_towards_rewarded_choices():
    ctrl = Controller((3,), ControllerConfig(lr=0.1))
    gen = torch.Generator().manual_seed(0)
    for i in range(60):
        (c,), lp = ctrl.sample(gen)
        ctrl.learn([(i, (c,), 1.0 if c == 2 else 0.0, lp)])
    assert ctrl.probabilities()[0][2] > 0.8


def test_stale_trial_is_clipped_like_ppo():
    # A trial that the current policy already favours far more than the policy that sampled it
    # (ratio e^3 > 1 + clip) with a positive advantage gives no gradient: the step is clipped.
    ctrl = Controller((2,), ControllerConfig(lr=0.1, entropy_weight=0.0))
    ctrl.learn([(0, (0,), 0.5, None)])  # sets the baseline to 0.5
    twin = Controller.from_state_dict(ctrl.state_dict())
    before = ctrl.logits.detach().clone()
    current = ctrl.log_prob((1,))
    assert ctrl.update((1,), 1.0, behaviour_log_prob=current - 3.0) == pytest.approx(0.5)
    assert torch.equal(ctrl.logits.detach(), before)
    twin.update((1,), 1.0, behaviour_log_prob=current)  # the same trial on-policy moves the policy
    assert twin.logits[1] > before[1]


# ----- search on the synthetic task --------------------------------------------------------

SEEDS = range(5)
N_TRIALS, LAST = 60, 20
#: RL's mean reward over its last 20 of 60 trials beats the mean reward of 60 random trials by at
#: least this much, averaged over 5 seeds (measured: +0.055 with lr 0.05; -0.004 with lr 0; -0.022
#: with the sign of the advantage flipped).
MARGIN = 0.03


def _rl_minus_random(lr: float) -> list[float]:
    gaps = []
    for seed in SEEDS:
        s_rl = settings(strategy="rl", controller=ControllerConfig(lr=lr))
        s_rnd = settings(strategy="random")
        task = SyntheticAccuracy(s_rl.space(), seed=seed)
        rl = rewards(run_arch_search(s_rl, task, n_trials=N_TRIALS, seed=seed))
        rnd = rewards(run_arch_search(s_rnd, task, n_trials=N_TRIALS, seed=seed))
        assert len(rl) == len(rnd) == N_TRIALS
        gaps.append(statistics.mean(rl[-LAST:]) - statistics.mean(rnd))
    return gaps


def test_rl_controller_beats_random_sampling_on_the_synthetic_task():
    gaps = _rl_minus_random(lr=0.05)
    assert statistics.mean(gaps) > MARGIN, gaps
    assert sum(g > 0 for g in gaps) >= 4, gaps


def test_rl_controller_that_cannot_learn_does_not_pass_the_margin():
    gaps = _rl_minus_random(lr=0.0)
    assert statistics.mean(gaps) < MARGIN, gaps


@pytest.mark.parametrize("strategy", ["tpe", "nsga2", "random"])
def test_optuna_strategies_record_every_trial(strategy):
    s = settings(strategy=strategy, include_base=True)
    study = run_arch_search(s, SyntheticAccuracy(s.space(), seed=1), n_trials=12, seed=1)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 12 and done[0].user_attrs.get("is_base")
    assert space_choices(s, done[0]) == s.space().base_choices()
    for t in done:
        a = t.user_attrs
        desc = Network.from_json(a["description"])
        c = cost(desc)
        assert (a["macs"], a["params"]) == (c.macs, c.params)
        assert a["reward"] == pytest.approx(reward(a["accuracy"], a["macs"], TARGET))
        expected = (a["accuracy"], a["macs"]) if strategy == "nsga2" else (a["reward"],)
        assert tuple(t.values) == pytest.approx(expected)


def space_choices(s, trial):
    return s.space().from_values(trial.params)


def test_rl_state_is_kept_in_the_study_and_covers_every_trial():
    s = settings(strategy="rl")
    study = run_arch_search(s, SyntheticAccuracy(s.space(), seed=2), n_trials=15, seed=2)
    state = json.loads(study.user_attrs[CONTROLLER_ATTR])
    assert state["updates"] == 15 and state["consumed"] == [[0, 14]]
    assert all(t.user_attrs["policy_log_prob"] is not None for t in study.trials)


def test_interrupted_search_resumes_to_the_total(tmp_path):
    s = settings(strategy="rl")
    storage = optuna.storages.InMemoryStorage()
    task = SyntheticAccuracy(s.space(), seed=3)
    calls = []

    def flaky(desc):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return task(desc)

    with pytest.raises(KeyboardInterrupt):
        run_arch_search(s, flaky, n_trials=10, storage=storage, study_name="resume", seed=3)
    study = optuna.load_study(study_name="resume", storage=storage)
    assert count_finished(study) == 5
    assert [t.user_attrs.get("interrupted") for t in study.trials if t.state.name == "FAIL"] == [True]

    study = run_arch_search(s, flaky, n_trials=10, storage=storage, study_name="resume", seed=3)
    assert count_finished(study) == 10 and len(study.trials) == 11  # the interrupted trial is not counted
    ctrl = study_controller(study, s.space(), save=False)
    complete = {t.number for t in study.trials if t.state.name == "COMPLETE"}
    assert ctrl.consumed == complete and ctrl.updates == 10
    # and a finished study runs nothing more
    assert len(run_arch_search(s, flaky, n_trials=10, storage=storage, study_name="resume").trials) == 11


def test_failing_candidates_are_recorded_and_counted():
    s = settings(strategy="tpe")
    task = SyntheticAccuracy(s.space(), seed=4)

    def sometimes(desc):
        if s.space().encode(desc)[0] == 0:  # every regular-conv first stage "diverges"
            raise RuntimeError("loss is NaN")
        return task(desc)

    study = run_arch_search(s, sometimes, n_trials=12, seed=4)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert count_finished(study) == 12 and failed
    assert all(t.user_attrs["error"] == "loss is NaN" for t in failed)


def test_evaluator_returning_an_impossible_accuracy_fails_the_trial():
    s = settings(strategy="random")
    study = run_arch_search(s, lambda desc: {"accuracy": 1.5}, n_trials=3)
    assert [t.state.name for t in study.trials] == ["FAIL"] * 3
    assert all("accuracy 1.5" in t.user_attrs["error"] for t in study.trials)


def test_two_workers_share_one_rl_study():
    s = settings(strategy="rl")
    storage = optuna.storages.InMemoryStorage()
    open_study(s, storage=storage, study_name="shared")
    task = SyntheticAccuracy(s.space(), seed=5)
    errors = []

    def worker(seed):
        try:
            run_arch_search(s, task, n_trials=16, storage=storage, study_name="shared", seed=seed)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    study = optuna.load_study(study_name="shared", storage=storage)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert 16 <= len(complete) <= 17  # each worker may finish one trial past the total
    ctrl = study_controller(study, s.space())
    assert ctrl.consumed == {t.number for t in complete} and ctrl.updates == len(complete)
    # distinct trial numbers give distinct samples even from the same policy
    assert len({tuple(t.user_attrs["choices"]) for t in complete}) == len(complete)


def test_study_made_with_other_settings_is_refused():
    storage = optuna.storages.InMemoryStorage()
    open_study(settings(strategy="tpe"), storage=storage, study_name="s")
    with pytest.raises(ValueError, match="target_macs"):
        open_study(settings(strategy="tpe", target_macs=TARGET * 2), storage=storage, study_name="s")
    with pytest.raises(ValueError, match="strategy"):
        open_study(settings(strategy="rl"), storage=storage, study_name="s")
    optuna.create_study(storage=storage, study_name="foreign")
    with pytest.raises(ValueError, match="not made by effnet"):
        open_study(settings(), storage=storage, study_name="foreign")


def test_training_seed_is_recorded_and_studies_from_before_it_resume_at_seed_0():
    from effnet.search.engine import SETTINGS_ATTR

    storage = optuna.storages.InMemoryStorage()
    open_study(settings(strategy="random", seed=1), storage=storage, study_name="s")
    with pytest.raises(ValueError, match="seed 1 \\(stored\\) vs 0"):
        open_study(settings(strategy="random"), storage=storage, study_name="s")
    old = open_study(settings(strategy="random"), storage=storage, study_name="old")
    stored = dict(old.user_attrs[SETTINGS_ATTR])
    del stored["seed"]  # what a study made before the seed was recorded holds
    storage.set_study_user_attr(old._study_id, SETTINGS_ATTR, stored)
    open_study(settings(strategy="random"), storage=storage, study_name="old")  # seed 0: resumes
    with pytest.raises(ValueError, match="seed"):
        open_study(settings(strategy="random", seed=2), storage=storage, study_name="old")


@pytest.mark.parametrize("kw, match", [
    ({"target_macs": 0}, "positive"), ({"target_macs": -5}, "positive"), ({"strategy": "evolution"}, "strategy"),
    ({"base": "resnet50"}, "base"), ({"w": 0.5}, "exponent"), ({"seed": -1}, "seed"),
])
def test_bad_settings_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        settings(**kw)


def test_pareto_front_keeps_the_points_nothing_beats():
    points = [(10, 0.5), (20, 0.7), (15, 0.4), (30, 0.7), (5, 0.45), (25, 0.8)]
    assert pareto_front(points) == [4, 0, 1, 5]


def test_outputs_hold_best_description_table_and_plot(tmp_path):
    s = settings(strategy="nsga2", include_base=True)
    study = run_arch_search(s, SyntheticAccuracy(s.space(), seed=6), n_trials=10, seed=6)
    paths = write_outputs(study, tmp_path, s)
    best = Network.load(paths["best"])
    rows = trial_rows(study)
    top = max((r for r in rows if r["reward"] is not None), key=lambda r: r["reward"])
    assert cost(best).macs == top["macs"] and best.resolution == 32 and best.num_classes == 4
    assert best == best_description(study)
    assert scale(best, phi=1).resolution == round(32 * 1.15)  # usable as a base for compound scaling
    with open(paths["csv"]) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 10 and {"accuracy", "macs", "params", "reward", "pareto"} <= set(table[0])
    assert any(r["pareto"] == "True" for r in table)
    assert "| trial |" in paths["markdown"].read_text()
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----- the command ------------------------------------------------------------------------

def _cli(*argv):
    from effnet.cli import main

    return main(["search", "arch", *argv])


@pytest.mark.slow
def test_command_searches_with_real_training_on_synthetic_data(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "out"
    args = ["--data", "synthetic", "--limit-per-class", "4", "--img-size", "32", "--target-macs", "8M",
            "--trials", "3", "--budget-epochs", "1", "--batch-size", "4", "--max-steps", "2", "--out", str(out),
            "--strategy", "rl"]
    assert _cli(*args) == 0
    printed = capsys.readouterr().out
    assert "highest reward trial" in printed and printed.count("trial ") >= 3
    best = Network.load(out / "best.json")
    import effnet

    model = effnet.create_model(out / "best.json")
    assert model.desc.stages == best.stages
    from effnet.cli import main

    assert main(["scale", "--base", str(out / "best.json"), "--phi", "1"]) == 0  # a base for compound scaling
    capsys.readouterr()
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert len(rows) == 3 and rows[0]["base"] == "True" and all(float(r["train_time_s"]) > 0 for r in rows)
    # rerunning the finished search trains nothing and reports the same best
    assert _cli(*args) == 0
    assert "3 finished trials" in capsys.readouterr().out
    assert len(list(csv.DictReader(open(out / "trials.csv")))) == 3


@pytest.mark.parametrize("extra, message", [
    (["--target-macs", "0"], "--target-macs must be positive"),
    (["--target-macs=-3M"], "--target-macs must be positive"),
    (["--target-macs", "lots"], "--target-macs must be a number"),
    (["--target-macs", "8M", "--strategy", "evolution"], "unknown strategy"),
    (["--target-macs", "8M", "--storage", "sqlite:////nonexistent/dir/s.db"], "cannot open study storage"),
])
def test_command_refuses_bad_input_with_one_line(tmp_path, capsys, extra, message):
    code = _cli("--data", "synthetic", "--img-size", "32", "--trials", "1", "--out", str(tmp_path), *extra)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("effnet search: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_command_refuses_a_study_made_with_other_settings(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 's.db'}"
    s = settings(strategy="rl", data="synthetic (task default, 4 per class)", include_base=True)
    open_study(s, storage=db, study_name="mine")
    code = _cli("--data", "synthetic", "--limit-per-class", "4", "--img-size", "32", "--target-macs", "9M",
                "--trials", "1", "--storage", db, "--study", "mine", "--out", str(tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and "other settings" in err and "target_macs" in err
    assert len(err.strip().splitlines()) == 1


# ----- paired statistics in the report -------------------------------------------------------

class PlantedPerImage:
    """Each image of each training seed is right with probability ``accuracy(choices, split)``, drawn
    independently per architecture (fixed seeds: the same architecture always scores the same)."""

    def __init__(self, space, accuracy, *, seeds=2, images=300) -> None:
        self.space, self.accuracy, self.seeds, self.images = space, accuracy, seeds, images

    def __call__(self, desc):
        import numpy as np

        choices = self.space.encode(desc)
        out = {}
        for split in ("val", "test"):
            p = self.accuracy(choices, split)
            rng = np.random.default_rng([*choices, 0 if split == "val" else 1])
            out[f"{split}_correct"] = [rng.random(self.images) < p for _ in range(self.seeds)]
        out["accuracy"] = float(np.mean(out["val_correct"]))
        return out


def _planted_search(accuracy, *, seeds=3, n_trials=6, **kw):
    s = settings(strategy="random", include_base=True, seeds=seeds, **kw)
    base = s.space().base_choices()
    study = run_arch_search(s, PlantedPerImage(s.space(), lambda c, split: accuracy(c == base, split), seeds=seeds),
                            n_trials=n_trials, seed=7)
    return s, study


def test_report_separates_a_planted_accuracy_difference():
    s, study = _planted_search(lambda is_base, split: 0.85 if is_base else 0.55, w=0.0)
    summary = analyse_search(study, s, draws=500)
    assert summary["decided"] and summary["winner"] == 0 and summary["indistinguishable"] == [0]
    rows = {r["trial"]: r for r in summary["candidates"]}
    assert len(rows) == 6 and rows[0]["is_best"] and rows[0]["base"]
    for t, r in rows.items():
        if t != 0:
            assert r["accuracy_diff_to_best_ci_high"] < 0 and r["reward_diff_to_best_ci_high"] < 0
            assert not r["indistinguishable_from_best"]
    assert summary["verdict"].startswith("Trial 0 has the best reward")
    assert rows[0]["accuracy_ci_low"] < rows[0]["accuracy"] < rows[0]["accuracy_ci_high"]


def test_reward_interval_is_the_accuracy_interval_times_the_exact_macs_factor():
    s, study = _planted_search(lambda is_base, split: 0.7)
    for r in analyse_search(study, s, draws=300)["candidates"]:
        f = (r["macs"] / TARGET) ** s.w
        assert r["reward"] == pytest.approx(r["accuracy"] * f)
        assert (r["reward_ci_low"], r["reward_ci_high"]) == pytest.approx((r["accuracy_ci_low"] * f,
                                                                           r["accuracy_ci_high"] * f))


def test_identical_candidates_are_indistinguishable_and_no_winner_is_crowned(tmp_path):
    # every architecture gets the same per-image outcomes and w = 0: the rewards are equal by construction
    s = settings(strategy="random", include_base=True, seeds=2, w=0.0)

    def same(desc):
        import numpy as np

        rng = np.random.default_rng(0)
        val = [rng.random(200) < 0.6 for _ in range(2)]
        return {"accuracy": float(np.mean(val)), "val_correct": val}

    study = run_arch_search(s, same, n_trials=5, seed=8)
    summary = analyse_search(study, s, draws=300)
    assert not summary["decided"] and summary["winner"] is None
    assert sorted(summary["indistinguishable"]) == [0, 1, 2, 3, 4]
    cheapest = min(summary["candidates"], key=lambda r: r["macs"])
    assert summary["pick"] == cheapest["trial"]
    first = write_outputs(study, tmp_path, s, summary)["markdown"].read_text().splitlines()[0]
    assert first.startswith("Not decided: 5 of 5 candidates") and "no winner is named" in first
    assert f"trial {cheapest['trial']}" in first and "a pick by cost" in first
    assert json.loads((tmp_path / "search.json").read_text())["winner"] is None


def test_winner_is_chosen_on_validation_and_test_accuracy_is_only_reported():
    # the base is best on validation and worst on test: it is still the one chosen
    s, study = _planted_search(lambda is_base, split: (0.9 if split == "val" else 0.3) if is_base else 0.5, w=0.0)
    summary = analyse_search(study, s, draws=300)
    assert summary["winner"] == 0
    rows = {r["trial"]: r for r in summary["candidates"]}
    assert rows[0]["test_accuracy"] < min(r["test_accuracy"] for t, r in rows.items() if t != 0)
    assert "not used to choose" in summary["verdict"]


def test_report_compares_the_top_candidates_and_the_base():
    s, study = _planted_search(lambda is_base, split: 0.2 if is_base else 0.6, n_trials=8, w=0.0)
    summary = analyse_search(study, s, top=3, draws=200)
    assert [r["trial"] for r in summary["candidates"]][-1] == 0 and len(summary["candidates"]) == 4


def test_report_without_per_image_predictions_names_no_winner():
    s = settings(strategy="random")
    study = run_arch_search(s, SyntheticAccuracy(s.space(), seed=1), n_trials=4, seed=1)
    summary = analyse_search(study, s)
    assert summary["verdict"].startswith("Not decided: the trials carry no per-image predictions")
    assert summary["winner"] is None


def test_evaluator_with_per_image_results_for_the_wrong_number_of_seeds_fails_the_trial():
    s = settings(strategy="random", seeds=2)
    study = run_arch_search(s, lambda desc: {"accuracy": 0.5, "val_correct": [[1, 0, 1]]}, n_trials=1)
    assert study.trials[0].state.name == "FAIL" and "for 1 seed(s); expected 2" in study.trials[0].user_attrs["error"]


def test_a_planted_winner_with_one_seed_is_not_named():
    s, study = _planted_search(lambda is_base, split: 0.85 if is_base else 0.55, w=0.0, seeds=1)
    summary = analyse_search(study, s, draws=300)
    assert not summary["decided"] and summary["winner"] is None
    assert summary["verdict"].startswith("Not decided: one seed")


def test_differences_to_the_data_chosen_best_use_the_simultaneous_bound():
    s, study = _planted_search(lambda is_base, split: 0.85 if is_base else 0.55, w=0.0)
    summary = analyse_search(study, s, draws=300)
    for r in summary["candidates"]:
        half = (r["accuracy_diff_to_best_ci_high"] - r["accuracy_diff_to_best_ci_low"]) / 2
        assert half == pytest.approx(summary["candidates"][0]["accuracy_diff_to_best_ci_high"]
                                     - summary["candidates"][0]["accuracy_diff_to_best"])
        assert "accuracy_diff_p_holm" not in r  # no per-pair test against a best chosen on the same images
