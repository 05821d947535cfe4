"""One Budget and one DataSpec: what every study, search and run holds instead of restating fields."""
from __future__ import annotations

import sys
import subprocess

import pytest

from effnet.arch import get_network
from effnet.data import DataSpec
from effnet.errors import EffnetError
from effnet.search.budget import Budget
from effnet.search.study import StudyConfig
from effnet.train.config import TrainConfig


def test_a_budget_checks_itself_and_round_trips():
    b = Budget(epochs=3, batch_size=16, max_steps=50, recipe="paper", lr=0.01, augment="randaugment").check()
    assert Budget.from_dict(b.to_dict()) == b and Budget.from_settings(b.settings()) == b
    assert b.settings()["budget_epochs"] == 3 and "(at most 50 steps)" in b.label()
    for bad, words in [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch size"), ({"recipe": "long"}, "recipe"),
                       ({"lr": -1.0}, "learning rate"), ({"augment": "mix"}, "augment")]:
        with pytest.raises(EffnetError, match=words):
            Budget(**bad).check()
    with pytest.raises(EffnetError, match="unknown budget setting"):
        Budget.from_dict({"epoch": 2})


def test_a_data_spec_checks_itself_and_names_what_was_measured():
    spec = DataSpec("elpv", task="binary", limit_per_class=200).check()
    assert spec.label() == "elpv (task binary, at most 200 images per class)"
    assert DataSpec.from_dict(spec.to_dict()) == spec and spec.with_seed(3).seed == 3
    with pytest.raises(EffnetError, match=r"val_fraction \+ test_fraction must be below 1"):
        DataSpec("elpv", val_fraction=0.5, test_fraction=0.5).check()
    with pytest.raises(EffnetError, match="limit_per_class must be a positive integer"):
        DataSpec("elpv", limit_per_class=0).check()


def test_a_study_stores_the_same_flat_settings_as_before_the_budget_was_one_value():
    cfg = StudyConfig(get_network("efficientnet_b0"), data=DataSpec("synthetic", limit_per_class=4),
                      budget=Budget(epochs=1, batch_size=8))
    s = cfg.settings()
    assert {k: s[k] for k in ("data", "task", "limit_per_class", "budget_epochs", "batch_size", "recipe", "lr",
                              "augment", "max_steps", "img_size", "seeds", "split_seeds")} == {
        "data": "synthetic", "task": "default", "limit_per_class": 4, "budget_epochs": 1, "batch_size": 8,
        "recipe": "short", "lr": None, "augment": "none", "max_steps": None, "img_size": 64, "seeds": 1,
        "split_seeds": False}
    assert "data_val_fraction" not in s  # recorded only when not the default
    assert StudyConfig(get_network("efficientnet_b0"), data="synthetic").data == DataSpec("synthetic")


def test_a_training_run_reads_its_data_through_the_same_spec():
    cfg = TrainConfig(data="synthetic", task="default", seed=2, limit_per_class=5, val_fraction=0.2)
    assert cfg.data_spec() == DataSpec("synthetic", seed=2, val_fraction=0.2, limit_per_class=5)
    with pytest.raises(ValueError, match=r"val_fraction \+ test_fraction"):
        TrainConfig(val_fraction=0.6, test_fraction=0.5)


def test_holding_a_data_spec_imports_no_torch():
    code = "import sys; from effnet.data import DataSpec; from effnet.search.study import StudyConfig; " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
