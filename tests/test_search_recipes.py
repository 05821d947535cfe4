"""Proxy training recipes: one table for all searches, passed on to quick_train, part of a study's settings."""
from __future__ import annotations

import contextlib
import io

import pytest
import torch

import effnet.train
from effnet.arch import get_network
from effnet.errors import EffnetError
from effnet.search.recipes import PROXY_RECIPES, headless, quick_train_options
from effnet.search.runner import StudyOptions
from effnet.search.kinds.grid import ScaleSearchConfig, run_scale_search
from effnet.search.kinds.scaling import ScalingStudyConfig, run_scaling_study
from effnet.data import DataSpec
from effnet.search.budget import Budget
from effnet.search.training import QuickTrainer, SeedMean


class Spy:
    """Stands in for quick_train: records the description and keyword arguments of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, desc, splits, **kwargs):
        self.calls.append((desc, kwargs))
        return {"val_acc": 0.5, "train_time_s": 0.0, "steps": 1, "train_loss": 0.7}


@pytest.fixture
def spy(monkeypatch):
    s = Spy()
    monkeypatch.setattr(effnet.train, "quick_train", s)
    return s


def _scale_config(**kw):
    return ScaleSearchConfig(base=get_network("efficientnet_b0"), data=DataSpec("synthetic", limit_per_class=2),
                             img_size=32, budget=Budget(1, **kw), grid_step=0.1, tolerance=0.02, max_coefficient=1.3)


def _study_config(**kw):
    return ScalingStudyConfig(get_network("efficientnet_b0"), ratios=(2.0,), methods=("width",),
                              img_size=32, data=DataSpec("synthetic", limit_per_class=2), budget=Budget(1, **kw))


def test_short_recipe_reaches_quick_train_from_the_grid_search(tmp_path, spy):
    run_scale_search(_scale_config(), StudyOptions(tmp_path))
    assert len(spy.calls) == len(_scale_config().plan())
    for desc, kwargs in spy.calls:
        assert desc.num_classes == 0  # quick_train adds a new, zero-initialised head
        for key, value in PROXY_RECIPES["short"]["train"].items():
            assert kwargs[key] == value, key


def test_paper_recipe_and_explicit_lr_reach_quick_train_from_the_scaling_study(tmp_path, spy):
    run_scaling_study(_study_config(recipe="paper", lr=0.05), StudyOptions(tmp_path))
    assert len(spy.calls) == len(_study_config().candidates())
    for desc, kwargs in spy.calls:
        assert desc.num_classes > 0 and kwargs["lr"] == 0.05
        assert not {"bn_momentum", "optimizer", "ema", "schedule"} & set(kwargs)


def test_short_recipe_builds_the_model_it_describes(monkeypatch):
    """Through the real quick_train: BatchNorm momentum 0.1, no stochastic depth, a zero head."""
    from effnet.train import quick

    seen = []

    class Recording(quick.Trainer):
        def __init__(self, cfg, model, *args, **kwargs):
            seen.append((cfg, model, model.classifier.weight.detach().clone()))
            super().__init__(cfg, model, *args, **kwargs)

    monkeypatch.setattr(quick, "Trainer", Recording)
    trainer = QuickTrainer(DataSpec("synthetic", limit_per_class=2), Budget(1, batch_size=4, max_steps=1))
    out = trainer(get_network("efficientnet_b0"), 32, 0, None)
    assert 0.0 <= out["val_acc"] <= 1.0 and out["steps"] == 1
    (cfg, model, head), = seen
    assert cfg.optimizer == "adamw" and cfg.schedule == "cosine" and not cfg.ema and cfg.label_smoothing == 0.0
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.momentum == 0.1 for m in bns)
    assert torch.count_nonzero(head) == 0 and model.num_classes == trainer.num_classes


@pytest.mark.parametrize("make, run, name", [
    (_scale_config, run_scale_search, "scale-search-efficientnet_b0"),
    (_study_config, run_scaling_study, "scaling-study-efficientnet_b0"),
])
def test_a_study_created_with_another_recipe_is_refused(tmp_path, spy, make, run, name):
    run(make(recipe="paper"), StudyOptions(tmp_path))
    done = len(spy.calls)
    with pytest.raises(ValueError, match="other settings") as err:
        run(make(), StudyOptions(tmp_path))
    assert "recipe" in str(err.value) and len(spy.calls) == done
    import optuna

    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'study.db'}").trials
    assert len(trials) == done and all(t.state.name == "COMPLETE" for t in trials)


def test_unknown_recipe_is_one_line():
    with pytest.raises(EffnetError, match="unknown training recipe 'long'"):
        _scale_config(recipe="long").check()
    with pytest.raises(EffnetError, match="unknown training recipe"):
        quick_train_options("long")
    from effnet.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as exc:
        main(["study", "scaling", "--data", "synthetic", "--recipe", "long", "--plan"])
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    assert exc.value.code == 2 and len(lines) == 1, err.getvalue()
    assert "--recipe: invalid choice: 'long'" in lines[0] and "'auto', 'short', 'paper'" in lines[0], err.getvalue()


def test_headless_only_for_a_zero_head_recipe():
    b0 = get_network("efficientnet_b0")
    assert headless(b0, "short").num_classes == 0 and headless(b0, "paper") == b0


class FixedSplits(QuickTrainer):
    """A QuickTrainer whose data is a placeholder (quick_train is replaced by the spy)."""

    def splits(self, img_size, seed=0):
        return type("Splits", (), {"num_classes": 2, "train": [None] * 64})()


def test_architecture_search_evaluator_uses_the_same_recipes(spy):
    from effnet.archsearch.search import ArchSearchSettings

    evaluate = SeedMean(FixedSplits("synthetic", Budget(1, recipe="short"), ), img_size=32)
    evaluate.evaluator.show_progress = False
    evaluate(get_network("efficientnet_b0").replace(num_classes=2))
    (desc, kwargs), = spy.calls
    assert desc.num_classes == 0 and kwargs == {"img_size": 32, "epochs": 1, "batch_size": 32, "seed": 0,
                                                "max_steps": None, "progress": False, "predictions": True,
                                                "on_epoch": None, **PROXY_RECIPES["short"]["train"]}
    with pytest.raises(ValueError, match="unknown training recipe"):
        ArchSearchSettings(target_macs=8e6, budget=Budget(1, recipe="long"))


def test_architecture_search_evaluator_trains_every_seed_and_rewards_the_mean(spy):
    out = SeedMean(FixedSplits("synthetic", Budget(1)), img_size=32, seed=5, seeds=3)(get_network("efficientnet_b0"))
    assert [kwargs["seed"] for _, kwargs in spy.calls] == [5, 6, 7]
    assert out["accuracy"] == 0.5 and out["accuracy_per_seed"] == "0.5000 0.5000 0.5000"
    with pytest.raises(ValueError, match="seeds"):
        SeedMean(FixedSplits("synthetic", Budget(1)), img_size=32, seeds=0)