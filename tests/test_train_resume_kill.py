"""A training process killed with SIGKILL resumes from its last checkpoint and ends bit-identical
to an uninterrupted run (CPU, deterministic mode)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from effnet.train import TrainConfig, fit
from train_helpers import TINY_JSON

RUNNER = "import sys; from effnet.train import TrainConfig, fit; " \
         "fit(TrainConfig.from_file(sys.argv[1]), progress=False, resume=sys.argv[2] == 'resume')"
TIME_KEYS = {"train_time_s", "images_per_s", "wall_time_s"}


def run_config(tmp_path: Path, out: Path) -> Path:
    desc = tmp_path / "tiny.json"
    desc.write_text(json.dumps(TINY_JSON))
    cfg = TrainConfig.for_model(str(desc), data="synthetic", limit_per_class=16, augment="none", img_size=32,
                                epochs=3, batch_size=8, lr=0.02, warmup_epochs=1, threads=1, deterministic=True,
                                checkpoint_every_steps=2, out=str(out))
    path = out.with_suffix(".yaml")
    path.write_text(json.dumps(cfg.to_dict()))
    return path


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_same_final_weights_and_metrics(tmp_path):
    killed_dir = tmp_path / "killed"
    cfg_path = run_config(tmp_path, killed_dir)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(cfg_path), "fresh"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = killed_dir / "checkpoints" / "LATEST"
    deadline = time.monotonic() + 240
    while not latest.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # land somewhere after the first checkpoint, not on it
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert alive and proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert latest.exists() and not (killed_dir / "metrics.json").exists()
    step_at_kill = int(latest.read_text().strip().split("-")[1])

    resume = subprocess.Popen([sys.executable, "-c", RUNNER, str(cfg_path), "resume"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # meanwhile, the uninterrupted reference run in this process
    ref = fit(TrainConfig.from_file(cfg_path).override({"out": str(tmp_path / "ref")}), progress=False)
    _, err = resume.communicate(timeout=300)
    assert resume.returncode == 0, err.decode()[-2000:]
    assert 0 < step_at_kill < ref.metrics["steps"]

    for name in ("last.safetensors", "last_ema.safetensors", "best.safetensors"):
        a, b = load_file(tmp_path / "ref" / name), load_file(killed_dir / name)
        assert a.keys() == b.keys()
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert not different, (name, different[:5])
    got = json.loads((killed_dir / "metrics.json").read_text())
    want = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    assert {k: v for k, v in got.items() if k not in TIME_KEYS} == {k: v for k, v in want.items() if k not in TIME_KEYS}
    assert (killed_dir / "metrics.csv").read_text() == (tmp_path / "ref" / "metrics.csv").read_text()
