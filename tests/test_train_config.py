"""The typed training config: per-variant defaults, overrides from strings and files."""
import json

import pytest
import yaml

from effnet.train import TrainConfig


def test_recipe_keys_are_left_to_the_run_and_the_rest_are_the_papers():
    cfg = TrainConfig()
    assert cfg.recipe == "auto" and all(getattr(cfg, k) is None for k in cfg.undecided())
    assert set(cfg.undecided()) == {"batch_size", "optimizer", "lr_per_256", "head_lr_scale", "schedule", "warmup_epochs",
                                    "label_smoothing", "drop_path_rate", "bn_momentum", "bn_mode", "head_init",
                                    "ema_decay", "augment", "crop_scale"}
    assert (cfg.rmsprop_decay, cfg.momentum, cfg.rmsprop_eps) == (0.9, 0.9, 1e-3)
    assert (cfg.decay_rate, cfg.decay_epochs, cfg.weight_decay) == (0.97, 2.4, 1e-5)


def test_pretrained_flag_values_are_normalised():
    assert TrainConfig(pretrained="yes").pretrained == "true"
    assert TrainConfig(pretrained="false").pretrained is None
    assert TrainConfig(pretrained="ckpt.safetensors").pretrained == "ckpt.safetensors"


@pytest.mark.parametrize("name, resolution, dropout", [("efficientnet_b0", 224, 0.2), ("efficientnet_b3", 300, 0.3),
                                                        ("efficientnet_b7", 600, 0.5)])
def test_for_model_takes_the_variant_resolution_and_dropout(name, resolution, dropout):
    cfg = TrainConfig.for_model(name)
    assert (cfg.model, cfg.img_size, cfg.dropout) == (name, resolution, dropout)
    assert TrainConfig.for_model(name, img_size=64).img_size == 64


def test_override_parses_strings_by_field_type():
    cfg = TrainConfig().override(["epochs=3", "lr=0.01", "ema=false", "max_steps=none", "pretrained=true",
                                  "grad-checkpointing=yes", "dropout=0.25"])
    assert cfg.epochs == 3 and cfg.lr == 0.01 and cfg.ema is False and cfg.max_steps is None
    assert cfg.pretrained == "true" and cfg.grad_checkpointing is True and cfg.dropout == 0.25


@pytest.mark.parametrize("item, message", [
    ("nope=1", "unknown config key"), ("epochs=three", "epochs must be an integer"),
    ("lr=-1", "lr must be a positive number"), ("optimizer=adam", "optimizer must be one of"),
    ("ema=maybe", "ema must be true or false"), ("epochs", "expected key=value"),
    ("label_smoothing=2", "label_smoothing must be in [0, 1]"), ("amp=fp8", "amp must be one of"),
])
def test_bad_overrides_raise_one_line_value_errors(item, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TrainConfig().override([item])


def test_config_round_trips_through_yaml_and_json(tmp_path):
    cfg = TrainConfig.for_model("efficientnet_b1", epochs=7, data="synthetic", lr=0.02)
    cfg.save(tmp_path, decisions={"warmup_epochs": {"value": 0.35, "why": "a reason"}})
    assert TrainConfig.from_file(tmp_path / "config.yaml") == cfg
    assert TrainConfig.from_file(tmp_path / "config.json") == cfg
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["epochs"] == 7 and saved["decisions"]["warmup_epochs"]["why"] == "a reason"


def test_config_file_applies_over_a_base_and_rejects_unknown_keys(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"epochs": 2, "schedule": "cosine"}))
    base = TrainConfig.for_model("efficientnet_b2")
    cfg = TrainConfig.from_file(f, base=base)
    assert (cfg.epochs, cfg.schedule, cfg.img_size) == (2, "cosine", 260)
    f.write_text("epochs: 2\nbatchsize: 3\n")
    with pytest.raises(ValueError, match="unknown config key.*batchsize"):
        TrainConfig.from_file(f)
    f.write_text("epochs: [1\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        TrainConfig.from_file(f)
