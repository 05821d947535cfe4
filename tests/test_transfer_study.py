"""Transfer study: ImageNet initialisation against scratch, per model, as a resumable study."""
from __future__ import annotations

import contextlib
import io
import json
import random

import numpy as np
import pytest

from effnet.search.runner import StudyOptions
from effnet.search.study import candidate_specs
from effnet.search.kinds.transfer import INITS, TransferStudyConfig, compare_inits, run_transfer_study, verdict_line

MODELS = ("efficientnet_lite0", "efficientnet_lite1")


class Fake:
    """Per-image predictions without training: right with probability ``p[init]`` on fixed targets."""

    num_classes = 3

    def __init__(self, imagenet=0.9, scratch=0.5, images=300):
        self.p = {"imagenet": imagenet, "scratch": scratch}
        self.images = images
        self.calls = []

    def __call__(self, desc, img_size, seed, reporter, pretrained=False):
        init = "imagenet" if pretrained else "scratch"
        self.calls.append((desc.name, init, seed))
        out = {"train_time_s": 0.0, "steps": 1, "recipe": {"regime": {"value": "fine-tune" if pretrained else "short",
                                                                      "why": "test"}}}
        for split in ("val", "test"):
            targets = [random.Random(f"{split}{seed}").randrange(3) for _ in range(self.images)]
            rng = random.Random(f"{desc.name}{init}{seed}{split}")
            pred = [t if rng.random() < self.p[init] else (t + 1) % 3 for t in targets]
            out[f"{split}_pred"], out[f"{split}_target"] = pred, targets
        out["val_acc"] = float(np.mean(np.equal(out["val_pred"], out["val_target"])))
        return out


def test_planner_yields_every_model_init_and_seed_once():
    cfg = TransferStudyConfig(models=MODELS, data="synthetic", seeds=3)
    specs = candidate_specs(cfg.candidates(3), cfg.seeds)
    keys = [s.key for s in specs]
    assert sorted(keys) == sorted(f"{m}-{i}-s{k}" for m in MODELS for i in INITS for k in range(3))
    assert all(bool(s.info.get("pretrained")) == (s.params["candidate"].endswith("imagenet")) for s in specs)


def test_planted_imagenet_advantage_is_reported_with_interval_above_zero_and_resume_reruns_nothing(tmp_path):
    cfg = TransferStudyConfig(models=MODELS, data="synthetic", seeds=2, img_size=32, bootstrap_draws=500)
    fake = Fake()
    summary = run_transfer_study(cfg, StudyOptions(tmp_path), trainer=fake)
    assert len(fake.calls) == len(set(fake.calls)) == 2 * 2 * 2
    assert summary["verdict"].startswith("ImageNet initialisation beats training from scratch for every model")
    diffs = summary["imagenet_minus_scratch"]
    assert all(d["ci_low"] > 0 for d in diffs.values()) and 0.3 < diffs["pooled"]["diff"] < 0.5
    assert [(d["smaller"], d["bigger"]) for d in summary["bigger_minus_smaller"]] == [MODELS, MODELS]
    rows = {r["key"]: r for r in summary["per_candidate"]}
    assert rows["efficientnet_lite1-scratch"]["macs"] > rows["efficientnet_lite0-scratch"]["macs"]
    assert rows["efficientnet_lite0-imagenet"]["regime"] == "fine-tune"
    assert (tmp_path / "transfer.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "transfer.md").read_text().splitlines()[0] == summary["verdict"]
    assert json.loads((tmp_path / "transfer.json").read_text())["verdict"] == summary["verdict"]
    again = Fake()
    run_transfer_study(cfg, StudyOptions(tmp_path), trainer=again)
    assert again.calls == []


def test_identical_predictions_cannot_be_told_apart():
    rng = np.random.default_rng(0)
    seeds = [rng.random(200) < 0.7 for _ in range(3)]
    scores = {f"{m}-{i}": [s.astype(float) for s in seeds] for m in MODELS for i in INITS}
    rows = {f"{m}-{i}": {"macs": n} for n, m in enumerate(MODELS) for i in INITS}
    cmp = compare_inits(scores, rows, MODELS, draws=500)
    assert verdict_line(cmp, MODELS).startswith("ImageNet initialisation and training from scratch cannot be told apart")
    assert cmp["pooled"]["ci_low"] <= 0 <= cmp["pooled"]["ci_high"]


def _run(*args):
    from effnet.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("args, needle", [(["--models", "efficientnet_lite9"], "unknown model"),
                                          (["--models", "efficientnet_b0"], "no ImageNet weights available offline"),
                                          (["--seeds", "0"], "seeds")])
def test_bad_transfer_input_is_one_line(tmp_path, args, needle):
    code, out, err = _run("study", "transfer", "--data", "synthetic", "--out", str(tmp_path), *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("effnet study: error:") and needle in lines[0], err
    assert not (tmp_path / "study.db").exists()


def test_tiny_pretrained_run_writes_report_json_and_plot(tmp_path):
    out = tmp_path / "summary.json"
    code, stdout, err = _run("study", "transfer", "--models", "efficientnet_lite0", "--data", "synthetic",
                             "--limit-per-class", "4", "--img-size", "32", "--max-steps", "1", "--budget-epochs", "1",
                             "--seeds", "1", "--batch-size", "8", "--out", str(tmp_path / "run"), "--json", str(out))
    assert code == 0, err
    assert sum(line.startswith("trial ") for line in stdout.splitlines()) == 2
    data = json.loads(out.read_text())
    assert data["finished"] and data["verdict"] in stdout
    assert {r["regime"] for r in data["per_candidate"]} == {"fine-tune", "short"}
    assert all(0 <= r["test_mean"] <= 1 for r in data["per_candidate"])
    for f in ("transfer.md", "transfer.json", "transfer.png"):
        assert (tmp_path / "run" / f).stat().st_size > 0
