"""Architecture-search strategies against random search at equal trials, over search seeds."""
from __future__ import annotations

import json

import optuna
import pytest

from effnet.archsearch.compare import compare_studies, run_strategy_comparison, summarise
from effnet.archsearch.search import ArchSearchSettings, SyntheticAccuracy

optuna.logging.set_verbosity(optuna.logging.WARNING)


def settings(**kw) -> ArchSearchSettings:
    base = dict(target_macs=8_000_000, img_size=32, num_classes=4, include_base=True, data="synthetic")
    base.update(kw)
    return ArchSearchSettings(**base)


def noise_only(s: ArchSearchSettings) -> SyntheticAccuracy:
    """Accuracy unrelated to the architecture's choices: a fixed random number per architecture."""
    return SyntheticAccuracy(s.space(), seed=0, noise=0.1, floor=0.5, span=0.0)


def test_two_strategies_scored_by_the_same_random_evaluator_cannot_be_told_apart():
    s = settings()
    studies = run_strategy_comparison(s, noise_only(s), strategies=["rl", "random"], search_seeds=3, n_trials=8)
    summary = compare_studies(studies, n_trials=8)
    assert summary["finished"] and not summary["decided"]
    assert summary["verdict"].startswith("Rl and random cannot be told apart at 8 trials x 3 search seed(s)")
    d = summary["differences"]["rl"]
    assert d["ci_low"] <= 0 <= d["ci_high"] and d["half_width"] > 0 and len(d["per_search_seed"]) == 3
    for strategy in ("rl", "random"):
        st = summary["per_strategy"][strategy]
        assert len(st["best_reward"]) == 3 and st["best_reward_mean"]["ci_low"] <= st["best_reward_mean"]["mean"]


def _records(best_rewards, first=None):
    """One record per search seed; ``first``: the best reward after the first trial (default: the best)."""
    first = best_rewards if first is None else first
    return [{"study": f"s{k}", "finished": 4, "rewards": [f] + [r] * 3, "best_so_far": [f] + [r] * 3,
             "best_reward": r, "best_accuracy": r, "best_trial": 1, "best_macs": 1, "best_architecture": ""}
            for k, (r, f) in enumerate(zip(best_rewards, first))]


RANDOM_BEST = [0.61, 0.66, 0.58, 0.63]
# random search gains about 0.04 from its first trial to its fourth, on every search seed
RANDOM = _records(RANDOM_BEST, [r - 0.04 + e for r, e in zip(RANDOM_BEST, (0.003, -0.002, 0.001, 0.0))])
TWIN = _records([r + e for r, e in zip(RANDOM_BEST, (0.01, -0.02, 0.015, -0.004))])


def test_a_planted_advantage_is_found_and_named_when_both_controls_pass():
    rl_best = [r + 0.05 + e for r, e in zip(RANDOM_BEST, (0.004, -0.003, 0.002, -0.001))]
    summary = summarise({"rl": _records(rl_best), "random": RANDOM}, n_trials=4, twin=TWIN)
    assert summary["control"]["separated"] and summary["control"]["fewer_trials"] == 1
    assert summary["negative_control"]["passed"]
    assert summary["decided"] and summary["differences"]["rl"]["ci_low"] > 0
    assert summary["verdict"].startswith("Rl finds a higher best reward than random at 4 trials x 4 search seed(s)")
    assert summary["controls"][0].startswith("Positive control (random with 4 trials against its first 1)")
    assert "indistinguishable, as it must be" in summary["controls"][1]
    # the same numbers without the planted advantage: not separated
    summary = summarise({"rl": TWIN, "random": RANDOM}, n_trials=4, twin=TWIN)
    assert not summary["decided"] and "cannot be told apart" in summary["verdict"]


def test_no_strategy_is_named_unless_both_controls_pass():
    rl = _records([r + 0.05 for r in RANDOM_BEST])
    # no negative control run
    summary = summarise({"rl": rl, "random": RANDOM}, n_trials=4)
    assert not summary["decided"] and "not compared" in summary["verdict"]
    assert summary["controls"][1].startswith("Negative control: not run")
    # a positive control that does not separate: random search gained nothing after its first trial
    flat = _records(RANDOM_BEST)
    summary = summarise({"rl": rl, "random": flat}, n_trials=4, twin=TWIN)
    assert not summary["control"]["separated"] and not summary["decided"]
    assert "cannot resolve a gain of that size" in summary["controls"][0]
    # a negative control that separates: the same strategy twice came out different
    summary = summarise({"rl": rl, "random": RANDOM}, n_trials=4,
                        twin=_records([r + 0.03 + e for r, e in zip(RANDOM_BEST, (0.001, -0.001, 0.002, 0.0))]))
    assert not summary["negative_control"]["passed"] and not summary["decided"]
    assert "SEPARATED" in summary["controls"][1]


def test_the_negative_control_runs_the_reference_again_at_other_search_seeds():
    s = settings()
    storage = optuna.storages.InMemoryStorage()
    studies = run_strategy_comparison(s, noise_only(s), strategies=["rl", "random"], search_seeds=2, n_trials=4,
                                      storage=storage, negative_control=True)
    assert sorted(studies) == [("random", 0), ("random", 1), ("random", 1000), ("random", 1001), ("rl", 0), ("rl", 1)]
    assert studies["random", 1000].study_name == "arch-efficientnet_b0-random-search1000"
    summary = compare_studies(studies, n_trials=4)
    assert summary["search_seeds"] == 2 and len(summary["twin_runs"]) == 2 and summary["negative_control"]["run"]
    # other sampler seeds: other architectures
    codes = lambda st: [t.user_attrs["code"] for t in st.trials[1:]]  # noqa: E731 (trial 0 is the base)
    assert codes(studies["random", 1000]) != codes(studies["random", 0])


def test_runs_whose_best_candidates_sit_at_chance_are_reported_as_learning_nothing():
    at_chance = [dict(r, best_accuracy=0.1) for r in _records([0.1048, 0.1049])]
    summary = summarise({"rl": at_chance, "random": [dict(r, best_accuracy=0.1) for r in _records([0.1, 0.104])]},
                        n_trials=4, chance=0.1)
    assert not summary["decided"] and not summary["learned"]
    assert summary["verdict"].startswith("Nothing learned: every run's best candidate is at chance accuracy")
    learned = summarise({"rl": _records([0.61, 0.66]), "random": _records([0.6, 0.65])}, n_trials=4, chance=0.1)
    assert learned["learned"] and not learned["verdict"].startswith("Nothing learned")


def test_one_search_seed_gives_no_interval_and_no_verdict_of_difference():
    summary = summarise({"rl": _records([0.9]), "random": _records([0.5])}, n_trials=4)
    assert not summary["decided"] and "one search seed: no interval" in summary["verdict"]


def test_an_unfinished_run_is_not_compared():
    short = _records([0.5, 0.6])
    short[1]["finished"] = 2
    summary = summarise({"rl": _records([0.5, 0.6]), "random": short}, n_trials=4)
    assert not summary["finished"] and summary["verdict"].startswith("Not finished")


def test_rerunning_the_comparison_trains_nothing_already_finished():
    s = settings()
    task = noise_only(s)
    calls = []

    def counted(desc):
        calls.append(1)
        return task(desc)

    storage = optuna.storages.InMemoryStorage()
    run_strategy_comparison(s, counted, strategies=["tpe", "random"], search_seeds=1, n_trials=4, storage=storage)
    assert len(calls) == 8
    # the same plan again: nothing; one more search seed: only its trials
    run_strategy_comparison(s, counted, strategies=["tpe", "random"], search_seeds=1, n_trials=4, storage=storage)
    assert len(calls) == 8
    studies = run_strategy_comparison(s, counted, strategies=["tpe", "random"], search_seeds=2, n_trials=4,
                                      storage=storage)
    assert len(calls) == 16 and compare_studies(studies, n_trials=4)["finished"]


@pytest.mark.parametrize("kw, match", [
    ({"strategies": ["rl", "evolution"]}, "unknown strategy 'evolution'"),
    ({"strategies": ["rl"]}, "at least two different"),
    ({"strategies": ["rl", "rl"]}, "at least two different"),
    ({"search_seeds": 0}, "search seeds"),
    ({"n_trials": 0}, "number of trials"),
])
def test_bad_plans_are_refused(kw, match):
    s = settings()
    args = {**dict(strategies=["rl", "random"], search_seeds=1, n_trials=2), **kw}
    with pytest.raises(ValueError, match=match):
        run_strategy_comparison(s, noise_only(s), **args)


# ----- the command ------------------------------------------------------------------------

def _cli(*argv):
    from effnet.cli import main

    return main(["study", "arch-strategies", *argv])


@pytest.fixture
def fake_training(monkeypatch):
    import effnet.train
    from search_helpers import PredictingQuickTrain

    predict = PredictingQuickTrain()

    def quick_train(desc, splits, **kwargs):
        return {**predict(desc, splits, **kwargs), "train_loss": 1.0}

    monkeypatch.setattr(effnet.train, "quick_train", quick_train)


def test_command_compares_strategies_and_resumes(tmp_path, capsys, fake_training):
    out = tmp_path / "cmp"
    args = ["--data", "synthetic", "--limit-per-class", "6", "--img-size", "32", "--target-macs", "8M",
            "--strategies", "rl,random", "--search-seeds", "2", "--trials", "2", "--seeds", "2", "--out", str(out),
            "--json", str(tmp_path / "s.json")]
    assert _cli(*args) == 0
    printed = capsys.readouterr().out.splitlines()
    trial_lines = [line for line in printed if " search seed " in line and ": trial " in line]
    assert len(trial_lines) == 2 * 2 * 3  # rl, random and the negative control's random, 2 search seeds each
    summary = json.loads((tmp_path / "s.json").read_text())
    run = summary["run"]  # what the comparison cost, as every study summary records it
    assert run["trials"] == 12 and run["cores"] and run["wall_s"] >= 0 and run["first_start"].endswith("Z")
    verdict_at = printed.index(summary["verdict"])
    assert printed[verdict_at - 2].startswith("Positive control") and printed[verdict_at - 1].startswith("Negative")
    assert summary["trials"] == 2 and summary["search_seeds"] == 2 and summary["finished"]
    assert any(line == summary["verdict"] for line in printed)
    assert (out / "best_so_far.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "strategies.json").read_text())["settings"]["seeds"] == 2
    # chosen on validation only: the studies keep validation outcomes per seed and score no test image
    study = optuna.load_study(study_name="arch-efficientnet_b0-rl-search1", storage=f"sqlite:///{out / 'study.db'}")
    attrs = study.trials[0].user_attrs
    assert len(attrs["val_correct"].split()) == 2 and "test_correct" not in attrs
    assert _cli(*args) == 0  # resumed: every trial is already finished
    assert not [line for line in capsys.readouterr().out.splitlines() if ": trial " in line]


@pytest.mark.parametrize("extra, message", [
    (["--strategies", "rl,evolution"], "unknown strategy 'evolution'"),
    (["--strategies", ","], "at least two different strategies"),
    (["--search-seeds", "0"], "number of search seeds must be a positive integer"),
    (["--trials", "-1"], "number of trials must be a positive integer"),
    (["--target-macs", "lots"], "--target-macs must be a number"),
    (["--max-steps", "0"], "--max-steps must be a positive integer"),
])
def test_command_refuses_bad_input_with_one_line(tmp_path, capsys, extra, message):
    code = _cli("--data", "synthetic", "--img-size", "32", "--target-macs", "8M", "--trials", "2",
                "--out", str(tmp_path), *extra)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("effnet study: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_command_refuses_a_malformed_number_with_a_usage_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _cli("--data", "synthetic", "--target-macs", "8M", "--search-seeds", "three", "--out", str(tmp_path))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err and "--search-seeds: invalid int value" in err


def test_command_without_controls_runs_no_second_reference_and_names_nothing(tmp_path, capsys, fake_training):
    args = ["--data", "synthetic", "--limit-per-class", "6", "--img-size", "32", "--target-macs", "8M",
            "--strategies", "rl,random", "--search-seeds", "2", "--trials", "2", "--out", str(tmp_path / "cmp"),
            "--no-controls", "--json", str(tmp_path / "s.json")]
    assert _cli(*args) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len([line for line in printed if " search seed " in line and ": trial " in line]) == 2 * 2 * 2
    summary = json.loads((tmp_path / "s.json").read_text())
    assert not summary["decided"] and not summary["negative_control"]["run"] and "twin_runs" not in summary


def test_command_takes_its_budget_from_the_ladders_answer(tmp_path, capsys, fake_training):
    ladder = tmp_path / "budget.json"
    ladder.write_text(json.dumps({"kind": "budget ladder", "budget_steps": 3, "settings": {"batch_size": 8}}))
    args = ["--data", "synthetic", "--limit-per-class", "6", "--img-size", "32", "--target-macs", "8M",
            "--search-seeds", "2", "--trials", "2", "--out", str(tmp_path / "cmp"), "--budget-from", str(ladder)]
    assert _cli(*args) == 0
    assert "3 steps of batch 8" in capsys.readouterr().out
    saved = json.loads((tmp_path / "cmp" / "strategies.json").read_text())["settings"]
    assert saved["budget_steps"] == 3 and saved["batch_size"] == 8
    ladder.write_text(json.dumps({"kind": "budget ladder", "budget_steps": None, "verdict": "no budget found"}))
    assert _cli(*args) == 2
    assert "found no budget" in capsys.readouterr().err
