"""benchmarks/bench_gpu.py runs end to end (on the CPU, tiny) and writes every part it was asked for."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_smoke_run_on_cpu_writes_each_part_without_errors(tmp_path):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--device", "cpu", "--size", "32",
           "--infer-batch", "2", "--train-batch", "4", "--rounds", "2", "--iters", "1", "--warmup", "1",
           "--trainer-steps", "2", "--parts", "correctness,inference,training,trainer,scan", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "gpu-bench.json").read_text())
    for part in ("correctness", "inference", "training", "trainer", "scan"):
        assert "error" not in report[part], report[part]
    # the same weights through effnet's checkpoint conversion give torchvision's outputs
    assert report["correctness"]["fp32 ours vs torchvision (same weights, same device)"] < 1e-5
    assert report["inference"]["batch 2"]["effnet, fp32"]["images_per_s"] > 0
    assert "timm, fp32 channels_last" in report["training"]
    assert report["trainer"]["trainer_images_per_s"] > 0


def test_gpu_benchmark_without_cuda_says_so_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin"})
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "no CUDA device" in done.stderr
