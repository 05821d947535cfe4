"""fit: the run dir, exact resume, fine-tuning with frozen stages; quick_train; evaluate."""
import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from effnet.arch import Network, cost
from effnet.train import TrainConfig, evaluate, fit, quick_train
from effnet.train.trainer import Trainer
from train_helpers import TINY_JSON, tensor_splits, one_torch_thread

TIME_KEYS = {"train_time_s", "images_per_s", "wall_time_s"}


one_thread = pytest.fixture(autouse=True)(one_torch_thread)


@pytest.fixture()
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_JSON))
    return path


def config(tiny: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data="tensors", epochs=3, batch_size=8, warmup_epochs=1, threads=1, deterministic=True,
                out=str(out), checkpoint_every_steps=2, lr=0.02)
    base.update(kw)
    return TrainConfig.for_model(str(tiny), **base)


def without_times(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIME_KEYS}


def test_fit_writes_a_complete_run_dir(tiny, tmp_path):
    from effnet.factory import load_model
    from effnet.weights import read_metadata

    result = fit(config(tiny, tmp_path / "run", epochs=2), progress=False, splits=tensor_splits())
    run = result.run_dir
    for name in ("config.yaml", "config.json", "metrics.csv", "metrics.json", "best.safetensors",
                 "last.safetensors", "last_ema.safetensors", "confusion.png", "checkpoints/LATEST"):
        assert (run / name).is_file(), name
    assert (run / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and rows[-1]["ema_val_top1"] != ""
    latest = run / "checkpoints" / (run / "checkpoints" / "LATEST").read_text().strip()
    state = torch.load(latest / "state.pt", weights_only=True)
    assert state["step"] == 6 and {"optimizer", "scheduler", "rng", "history"} <= set(state)
    assert TrainConfig.from_file(run / "config.yaml").epochs == 2
    # the best weights carry preprocessing and class names, and reload as a model
    meta = read_metadata(run / "best.safetensors")
    assert list(meta["preprocessing"]["class_names"]) == ["c0", "c1", "c2"]
    assert meta["weights"] in ("raw", "ema")
    model = load_model(run / "best.safetensors")
    again = evaluate(model, tensor_splits().test)
    assert again["top1"] == pytest.approx(result.metrics["test"]["best"]["top1"])
    assert result.metrics["test_weights"] == meta["weights"]
    assert result.metrics["params"] == cost(Network.load(tiny).replace(num_classes=3), 32).params


def test_resume_after_an_interruption_finishes_exactly_like_an_uninterrupted_run(tiny, tmp_path, monkeypatch):
    splits = tensor_splits()
    ref = fit(config(tiny, tmp_path / "ref"), progress=False, splits=splits)

    run_interrupted(config(tiny, tmp_path / "cut"), splits, monkeypatch, at_step=5)  # after the checkpoint at step 4
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = fit(config(tiny, tmp_path / "cut"), progress=False, resume=True, splits=splits)

    for name in ("last.safetensors", "last_ema.safetensors", "best.safetensors"):
        a, b = load_file(ref.run_dir / name), load_file(resumed.run_dir / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert without_times(resumed.metrics) == without_times(ref.metrics)
    assert (tmp_path / "cut" / "metrics.csv").read_text() == (tmp_path / "ref" / "metrics.csv").read_text()


def run_interrupted(cfg: TrainConfig, splits, monkeypatch, at_step: int) -> None:
    """``fit`` stopped by a KeyboardInterrupt as it starts optimizer step ``at_step + 1``."""
    original = Trainer._step

    def interrupted(self, x, y):
        if self.step == at_step:
            raise KeyboardInterrupt
        return original(self, x, y)

    monkeypatch.setattr(Trainer, "_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, progress=False, splits=splits)
    monkeypatch.setattr(Trainer, "_step", original)


def test_fit_refuses_to_overwrite_a_run_or_resume_nothing(tiny, tmp_path):
    splits = tensor_splits()
    fit(config(tiny, tmp_path / "run", epochs=1), progress=False, splits=splits)
    with pytest.raises(ValueError, match="already holds a run"):
        fit(config(tiny, tmp_path / "run", epochs=1), progress=False, splits=splits)
    with pytest.raises(ValueError, match="no checkpoint to resume"):
        fit(config(tiny, tmp_path / "empty", epochs=1), progress=False, resume=True, splits=splits)


def test_frozen_stages_keep_weights_and_statistics(tiny, tmp_path):
    from effnet.train.setup import build_model

    cfg = config(tiny, tmp_path / "ft", epochs=1, freeze_stages=1, checkpoint_every_steps=0)
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(cfg, model, tensor_splits().train, device=torch.device("cpu"))
    for _ in trainer.train_epoch():
        pass
    after = model.state_dict()
    frozen = [k for k in before if k.startswith(("stem.", "stages.0."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert not torch.equal(before["stages.1.0.dw.bn.running_mean"], after["stages.1.0.dw.bn.running_mean"])


def test_channels_last_with_checkpointing_trains_and_saves(tiny, tmp_path):
    cfg = config(tiny, tmp_path / "cl", epochs=1, channels_last=True, grad_checkpointing=True,
                 checkpoint_every_steps=0, tensorboard=False)
    result = fit(cfg, progress=False, splits=tensor_splits())
    assert torch.isfinite(torch.tensor(result.metrics["history"][-1]["train_loss"]))
    assert (result.run_dir / "last.safetensors").is_file()


def test_quick_train_returns_metrics_and_writes_nothing(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    desc = Network.load(tiny)
    m = quick_train(desc, tensor_splits(), img_size=32, epochs=2, batch_size=8, lr=0.02, seed=0)
    assert {"val_acc", "train_time_s", "steps", "params", "macs"} <= set(m)
    assert m["steps"] == 6 and 0.0 <= m["val_acc"] <= 1.0 and m["train_time_s"] > 0
    c = cost(desc.replace(num_classes=3), 32)  # the trained model has the data set's 3 classes
    assert (m["params"], m["macs"]) == (c.params, c.macs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json"]
    assert quick_train(desc, tensor_splits(), img_size=32, epochs=2, batch_size=8, max_steps=4)["steps"] == 4


def test_quick_train_reports_every_epoch_and_returns_per_image_predictions(tiny):
    seen = []
    m = quick_train(Network.load(tiny), tensor_splits(), img_size=32, epochs=3, batch_size=8, lr=0.02, seed=0,
                    on_epoch=lambda epoch, acc: seen.append((epoch, acc)), predictions=True)
    splits = tensor_splits()
    assert [e for e, _ in seen] == [1, 2, 3]
    assert seen[-1][1] == m["val_acc"]
    assert len(m["val_pred"]) == len(splits.val) and len(m["test_pred"]) == len(splits.test)
    val_hits = sum(p == t for p, t in zip(m["val_pred"], m["val_target"]))
    assert val_hits / len(splits.val) == m["val_acc"]
    assert m["val_target"] == [int(y) for _, y in splits.val]


def test_quick_train_stops_when_the_epoch_callback_raises(tiny):
    class Stop(Exception):
        pass

    def stop_after_first(epoch, acc):
        raise Stop(epoch)

    with pytest.raises(Stop):
        quick_train(Network.load(tiny), tensor_splits(), img_size=32, epochs=3, batch_size=8, seed=0,
                    on_epoch=stop_after_first)


def test_quick_train_builds_the_model_with_the_overridden_settings(tiny, monkeypatch):
    built = {}
    import effnet.factory

    real = effnet.factory.create_model

    def spy(*args, **kwargs):
        built.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(effnet.factory, "create_model", spy)
    quick_train(Network.load(tiny), tensor_splits(), img_size=32, epochs=1, batch_size=8, max_steps=1,
                bn_momentum=0.1, drop_path_rate=0.05)
    assert built["bn_momentum"] == 0.1 and built["drop_path_rate"] == 0.05


class FixedLogits(nn.Module):
    """Returns its input as the logits."""

    def forward(self, x):
        return x


def test_evaluate_reports_top1_top5_per_class_confusion_and_loss():
    logits = torch.tensor([
        [5.0, 4, 3, 2, 1, 0],  # true 0: top-1 right
        [5.0, 4, 3, 2, 1, 0],  # true 1: top-1 wrong (0), top-5 right
        [5.0, 4, 3, 2, 1, 0],  # true 5: wrong, outside top-5
        [0.0, 0, 9, 0, 0, 0],  # true 2: right
    ])
    labels = [0, 1, 5, 2]
    data = list(zip(logits, labels))
    m = evaluate(FixedLogits(), data, batch_size=3)
    assert m["top1"] == 0.5 and m["top5"] == 0.75 and m["n"] == 4
    assert m["per_class"] == [1.0, 0.0, 1.0, None, None, 0.0]
    assert m["confusion"][1][0] == 1 and m["confusion"][5][0] == 1 and m["confusion"][2][2] == 1
    assert m["loss"] == pytest.approx(F.cross_entropy(logits, torch.tensor(labels)).item(), rel=1e-6)
    three = evaluate(FixedLogits(), [(torch.tensor([1.0, 2, 0]), 1)])
    assert "top5" not in three and three["top1"] == 1.0


def test_resume_with_more_epochs_anneals_over_the_new_length(tiny):
    from effnet.train.optim import WarmupCosine

    splits = tensor_splits()
    cfg = config(tiny, "unused", epochs=2, schedule="cosine", warmup_epochs=0, checkpoint_every_steps=0)
    first = Trainer(cfg, build_tiny(tiny), splits.train, device=torch.device("cpu"))
    for _ in first.train_epoch():
        pass
    state = first.state()
    longer = Trainer(replace(cfg, epochs=4), build_tiny(tiny), splits.train, device=torch.device("cpu"))
    longer.load_state(state)
    schedule = longer.scheduler.lr_lambdas[0]
    assert isinstance(schedule, WarmupCosine) and schedule.total_steps == 4 * longer.steps_per_epoch
    want = longer.cfg.peak_lr() * schedule(longer.step)
    assert longer.optimizer.param_groups[0]["lr"] == pytest.approx(want)
    assert longer.optimizer.param_groups[0]["lr"] > first.optimizer.param_groups[0]["lr"]  # 3 of 12 steps, not 3 of 6


def build_tiny(tiny):
    from effnet.train.setup import build_model

    torch.manual_seed(0)
    return build_model(config(tiny, "unused"), num_classes=3)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tiny, tmp_path, monkeypatch):
    splits = tensor_splits()
    ref = fit(config(tiny, tmp_path / "ref"), progress=False, splits=splits)

    # checkpoints at steps 4 (mid-epoch) and 6 (end of epoch 2) are on disk
    run_interrupted(config(tiny, tmp_path / "cut"), splits, monkeypatch, at_step=7)
    root = tmp_path / "cut" / "checkpoints"
    assert (root / "LATEST").read_text().strip() == "step-00000006"
    data = (root / "step-00000006" / "model.safetensors").read_bytes()
    (root / "step-00000006" / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated

    lines = []
    resumed = fit(config(tiny, tmp_path / "cut"), progress=False, resume=True, splits=splits, log=lines.append)
    notes = [line for line in lines if "unreadable" in line]
    assert len(notes) == 1 and "step-00000006" in notes[0] and "resuming from step-00000004" in notes[0], lines
    assert (root / "unreadable-step-00000006" / "state.pt").is_file()  # kept for inspection, not deleted
    for name in ("last.safetensors", "last_ema.safetensors", "best.safetensors"):
        a, b = load_file(ref.run_dir / name), load_file(resumed.run_dir / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert without_times(resumed.metrics) == without_times(ref.metrics)
