"""Scaling studies: FLOPs-matched single-dimension and compound scaling, as a resumable study."""
from __future__ import annotations

import contextlib
import csv
import io
import math

import pytest

from effnet.search.budget import Budget
from effnet.arch import cost, get_network, scale
from effnet.search.runner import StudyOptions
from effnet.search.kinds.scaling import METHODS, ScalingStudyConfig, match_flops, run_scaling_study
from search_helpers import PredictingQuickTrain


@pytest.mark.parametrize("name", ["efficientnet_b0", "mobilenet_v2", "resnet50"])
@pytest.mark.parametrize("method", METHODS)
def test_matched_network_is_the_nearest_rounding_step_to_the_flops_target(name, method):
    base = get_network(name)
    base_macs = cost(base, 64).macs
    for ratio in (2.0, 4.0):
        net = match_flops(base, method, ratio, img_size=64)
        assert net.macs == cost(net.desc, net.img_size).macs
        assert net.ratio == pytest.approx(net.macs / base_macs)
        assert abs(math.log(net.ratio / ratio)) < math.log(1.35), (method, ratio, net.ratio)


def test_each_method_scales_only_its_dimension():
    base = get_network("efficientnet_b0")
    depth = match_flops(base, "depth", 2.0, img_size=64).desc
    width = match_flops(base, "width", 2.0, img_size=64).desc
    res = match_flops(base, "resolution", 2.0, img_size=64)
    assert [s.out_channels for s in depth.stages] == [s.out_channels for s in base.stages] and depth.resolution == 64
    assert sum(s.repeats for s in depth.stages) > base.num_blocks
    assert [s.repeats for s in width.stages] == [s.repeats for s in base.stages] and width.resolution == 64
    assert width.head_channels > base.head_channels
    assert res.desc.stages == base.stages and res.img_size > 64
    comp = match_flops(base, "compound", 4.0, img_size=64)
    phi = comp.multiplier
    assert comp.desc == scale(base, phi, 1.2, 1.1, 1.15, image_size=round(64 * 1.15**phi), name=comp.desc.name)


def test_bisection_picks_the_closer_of_the_two_steps():
    base = get_network("mobilenet_v2")
    net = match_flops(base, "resolution", 3.0, img_size=64)
    below = cost(base, net.img_size - 1).macs / cost(base, 64).macs
    above = cost(base, net.img_size + 1).macs / cost(base, 64).macs
    gap = abs(math.log(net.ratio / 3.0))
    assert gap <= abs(math.log(below / 3.0)) and gap <= abs(math.log(above / 3.0))


class Fake:
    num_classes = 3

    def __init__(self):
        self.calls = []

    def __call__(self, desc, img_size, seed, reporter, budget_fraction=1.0, seed_offset=0):
        self.calls.append((desc.name, img_size, seed))
        short = 0.2 if budget_fraction < 1 else 0.0  # the positive control's short run learns less
        return {"val_acc": min(0.99, 0.5 + 0.01 * math.log(cost(desc, img_size).macs)) - short, "train_time_s": 0.0}


def test_study_trains_every_method_and_ratio_once_and_plots_them(tmp_path):
    cfg = ScalingStudyConfig(get_network("mobilenet_v2"), data="synthetic", ratios=(2.0, 4.0), img_size=32,
                             budget=Budget(1))
    fake = Fake()
    summary = run_scaling_study(cfg, StudyOptions(tmp_path), trainer=fake)
    assert len(fake.calls) == len(set(fake.calls)) == 1 + 4 * 2 + 2  # the base, 4 methods x 2 ratios, 2 controls
    rows = list(csv.DictReader((tmp_path / "scaling.csv").open()))
    assert [(r["method"], float(r["target_ratio"])) for r in rows] == [("baseline", 1.0)] + [
        (m, r) for m in METHODS for r in (2.0, 4.0)] + [("base, quarter budget", 1.0), ("base, other seeds", 1.0)]
    assert all(float(r["acc"]) > 0 for r in rows) and summary["finished"]
    assert summary["verdict"].startswith("Not decided: one seed")  # one run each: no interval, no winner
    assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    again = Fake()
    run_scaling_study(cfg, StudyOptions(tmp_path), trainer=again)
    assert again.calls == []


def test_study_with_other_settings_is_refused_and_left_alone(tmp_path):
    cfg = ScalingStudyConfig(get_network("efficientnet_b0"), data="synthetic", ratios=(2.0,), img_size=32,
                             budget=Budget(1), methods=("width",))
    run_scaling_study(cfg, StudyOptions(tmp_path), trainer=Fake())
    before = (tmp_path / "study.db").stat().st_size
    other = ScalingStudyConfig(get_network("efficientnet_b0"), data="synthetic", ratios=(2.0, 4.0), img_size=32,
                               budget=Budget(1), methods=("width",))
    fake = Fake()
    with pytest.raises(ValueError, match="other settings"):
        run_scaling_study(other, StudyOptions(tmp_path), trainer=fake)
    assert fake.calls == []
    import optuna

    trials = optuna.load_study(study_name="scaling-study-efficientnet_b0",
                               storage=f"sqlite:///{tmp_path / 'study.db'}").trials
    assert len(trials) == len(cfg.candidates(3)) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert before > 0


def _run(*args):
    from effnet.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_plan_prints_matched_networks_without_training(tmp_path):
    code, out, err = _run("study", "scaling", "--base", "resnet50", "--data", "synthetic", "--plan", "--ratios", "2,4",
                          "--img-size", "64", "--out", str(tmp_path))
    assert code == 0, err
    lines = out.splitlines()
    assert sum(line.split()[0] in METHODS for line in lines[2:]) == 8 and "multiply-adds" in lines[0]
    assert not (tmp_path / "study.db").exists()


@pytest.mark.parametrize("args, needle", [(["--ratios", "0.5"], "FLOPs ratio"), (["--methods", "height"], "methods"),
                                          (["--budget-epochs", "0"], "budget")])
def test_bad_study_input_is_one_line(tmp_path, args, needle):
    code, out, err = _run("study", "scaling", "--data", "synthetic", "--out", str(tmp_path), *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("effnet study: error:") and needle in lines[0], err


def test_study_json_holds_per_candidate_intervals_differences_and_the_control(tmp_path, monkeypatch):
    import json

    import effnet.train

    monkeypatch.setattr(effnet.train, "quick_train", PredictingQuickTrain())
    out = tmp_path / "summary.json"
    code, stdout, err = _run("study", "scaling", "--base", "efficientnet_b0", "--data", "synthetic",
                             "--limit-per-class", "200", "--img-size", "32", "--ratios", "2", "--methods",
                             "width,resolution", "--seeds", "3", "--budget-epochs", "1", "--out",
                             str(tmp_path / "run"), "--json", str(out))
    assert code == 0, err
    data = json.loads(out.read_text())
    printed = [line for line in stdout.splitlines() if not line.startswith(("scaling study:", "trial "))]
    assert printed[:3] == [data["control"]["text"], data["negative_control"]["text"], data["verdict"]]  # controls first
    rows = {r["key"]: r for r in data["per_candidate"]}
    assert set(rows) == {"base", "width-x2", "resolution-x2", "base-quarter", "base-twin"}
    for r in rows.values():
        assert r["seeds_done"] == "3/3" and r["achieved_ratio"] > 0
        assert r["ci_low"] <= r["mean"] <= r["ci_high"] and r["control_separated"] == data["control"]["separated"]
    for key in ("width-x2", "resolution-x2"):
        r = rows[key]
        assert r["diff_to_best_ci_low"] <= r["diff_to_best"] <= r["diff_to_best_ci_high"]
        assert isinstance(r["indistinguishable_from_best"], bool) and r["test_ci_low"] <= r["test_mean"]
    # the full budget is planted to be clearly better than its quarter on 300 images x 3 seeds, and the
    # base's twin (other seeds) indistinguishable from it
    assert data["control"]["separated"] and data["control"]["ci_low"] > 0
    assert data["control"]["small"] == "base-quarter" and data["control"]["big"] == "base"
    assert data["negative_control"]["passed"] and data["negative_control"]["ci_low"] <= 0 <= data["negative_control"]["ci_high"]
    assert set(data["saturation"]["methods"]) == {"width", "resolution"}
    # every figure can be re-derived from the JSON alone: its per-image predictions and its design
    from effnet.search.study import scores_from_predictions
    from effnet.search.verdict import Design, decide

    scores = scores_from_predictions(data["predictions"])
    again = decide(list(scores), scores, Design(3, draws=2000), roles={k: r["role"] for k, r in rows.items()},
                   groups={"2x": ["width-x2", "resolution-x2"]}, control=("base-quarter", "base"),
                   negative=("base", "base-twin"))
    assert again["control"]["ci_low"] == data["control"]["ci_low"]
    assert again["negative_control"]["ci_high"] == data["negative_control"]["ci_high"]
    for key in ("width-x2", "resolution-x2"):
        assert again["per_key"][key]["ci_low"] == rows[key]["ci_low"]
        assert again["per_key"][key]["diff_to_best_ci_high"] == rows[key]["diff_to_best_ci_high"]


def _proxy_study(tmp_path, monkeypatch, quick_train) -> tuple[str, dict]:
    """``effnet study proxy`` of width-scaled networks at 2x and 4x, 2 seeds, 1 against 2 epochs,
    trained by the stand-in ``quick_train``: its stdout and proxy.json."""
    import json

    import effnet.train

    monkeypatch.setattr(effnet.train, "quick_train", quick_train)
    code, stdout, err = _run("study", "proxy", "--data", "synthetic", "--limit-per-class", "100", "--img-size", "32",
                             "--ratios", "2,4", "--methods", "width", "--seeds", "2", "--budget-epochs", "1",
                             "--factor", "2", "--out", str(tmp_path))
    assert code == 0, err
    return stdout, json.loads((tmp_path / "proxy.json").read_text())


def test_proxy_fidelity_reports_kendall_tau_with_an_interval(tmp_path, monkeypatch):
    stdout, data = _proxy_study(tmp_path, monkeypatch, PredictingQuickTrain())
    assert data["verdict"] in stdout and data["long_epochs"] == 2 * data["proxy_epochs"]
    assert data["tau_ci_low"] <= data["tau"] <= data["tau_ci_high"] and len(data["candidates"]) == 4
    # the stand-in's accuracy grows with multiply-adds at any budget: the rankings agree
    assert data["tau"] > 0.5


def test_a_proxy_that_leaves_most_candidates_at_chance_says_it_learned_nothing(tmp_path, monkeypatch):
    class ChanceAtOneEpoch(PredictingQuickTrain):
        def __call__(self, desc, splits, **kwargs):
            self.accuracy = (lambda d, px: 1.0 / splits.num_classes) if kwargs["epochs"] == 1 else None
            return super().__call__(desc, splits, **kwargs)

    stdout, data = _proxy_study(tmp_path, monkeypatch, ChanceAtOneEpoch())
    assert data["verdict"].startswith("The 1-epoch proxy learned nothing to rank") and data["verdict"] in stdout
    assert len(data["at_chance"]) > len(data["candidates"]) / 2 and not data["separated_from_zero"]
    assert (tmp_path / "proxy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class RecordingQuickTrain(PredictingQuickTrain):
    """PredictingQuickTrain that keeps the progress argument of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.progress = []

    def __call__(self, desc, splits, **kwargs):
        self.progress.append(kwargs.get("progress"))
        return super().__call__(desc, splits, **kwargs)


@pytest.mark.parametrize("quiet", [False, True])
def test_each_running_trial_shows_its_progress_unless_quiet(tmp_path, monkeypatch, quiet):
    import effnet.train

    rec = RecordingQuickTrain()
    monkeypatch.setattr(effnet.train, "quick_train", rec)
    code, _, err = _run("study", "scaling", "--base", "efficientnet_b0", "--data", "synthetic", "--img-size", "32",
                        "--ratios", "2", "--methods", "width", "--seeds", "2", "--budget-epochs", "1",
                        "--out", str(tmp_path), *(["--quiet"] if quiet else []))
    assert code == 0, err
    assert rec.progress and len(rec.progress) == 8  # base, width 2x and the two controls, two seeds each
    if quiet:
        assert not any(rec.progress)
    else:
        assert all(isinstance(p, str) and p.endswith(("seed 0: ", "seed 1: ")) for p in rec.progress)


def test_a_worker_knows_its_line(monkeypatch):
    from effnet.train.quick import worker_index

    monkeypatch.delenv("EFFNET_WORKER_INDEX", raising=False)
    assert worker_index() == 0
    monkeypatch.setenv("EFFNET_WORKER_INDEX", "2")
    assert worker_index() == 2
