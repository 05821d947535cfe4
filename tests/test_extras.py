"""The core install builds, trains and evaluates a model; every other command names the extra it needs.

A fresh interpreter marks every module the extras install as not importable (``sys.modules[name] =
None``, as a core-only ``pip install effnet`` would lack them), then runs the commands through
``effnet.cli.main``.
"""
from __future__ import annotations

import json
import subprocess
import sys

from effnet.errors import EXTRA_OF_MODULE, MissingExtraError, missing_extra

_SCRIPT = r"""
import contextlib, io, json, sys
BLOCKED = set(BLOCKED_NAMES)
for name in BLOCKED:  # Python's own marker for "not importable": import raises ModuleNotFoundError, find_spec gives None
    sys.modules[name] = None
import torch
torch.set_num_threads(1)
from effnet.cli import main

def run(*argv):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return {"argv": list(argv), "code": code, "err": err.getvalue()}

import effnet
model = effnet.create_model("efficientnet_b0", num_classes=3)
tmp = TMP
results = [
    run("train", "--model", "efficientnet_b0", "--data", "synthetic", "--limit-per-class", "4", "--img-size", "32",
        "--epochs", "1", "--batch-size", "6", "--optimizer", "adamw", "--augment", "none", "--no-progress",
        "--out", tmp + "/run"),
    run("eval", tmp + "/run", "--json"),
    run("search", "scale", "--data", "synthetic", "--out", tmp + "/search", "--n-trials", "1"),
    run("export", "efficientnet_b0", "--format", "onnx", "--out", tmp + "/m.onnx"),
    run("predict", tmp + "/x.png", "--model", "efficientnet_lite1", "--pretrained"),
    run("train", "--data", "elpv", "--epochs", "1", "--out", tmp + "/elpv"),
    run("demo", "--steps", "photos", "--out", tmp + "/demo"),
]
print(json.dumps({"results": results, "leaked": sorted(m for m in BLOCKED if sys.modules.get(m) is not None)}))
"""


def test_core_install_trains_and_evaluates_and_other_commands_name_their_extra(tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 32), (90, 120, 30)).save(tmp_path / "x.png")
    script = _SCRIPT.replace("BLOCKED_NAMES", repr(sorted(EXTRA_OF_MODULE))).replace("TMP", repr(str(tmp_path)))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    train, evaluate, search, export, predict, elpv, demo = out["results"]
    assert train["code"] == 0, train["err"][-1500:]
    assert evaluate["code"] == 0, evaluate["err"][-1500:]
    assert (tmp_path / "run" / "best.safetensors").is_file()
    for result, extra in ((search, "search"), (export, "deploy"), (predict, "lite"), (demo, "demo")):
        assert result["code"] == 2, result
        assert result["err"].count("\n") == 1, result["err"]  # one line, no traceback
        assert f"pip install 'effnet[{extra}]'" in result["err"], result["err"]
    assert search["err"].startswith("effnet search: error: effnet search needs optuna")
    assert elpv["code"] == 2 and "elpv-dataset" in elpv["err"] and elpv["err"].count("\n") == 1
    assert out["leaked"] == []


def test_missing_extra_maps_modules_to_their_extra_and_leaves_others_alone():
    err = missing_extra(ModuleNotFoundError("No module named 'onnxruntime.quantization'", name="onnxruntime.quantization"),
                        "effnet quantize")
    assert isinstance(err, MissingExtraError) and err.extra == "deploy"
    assert str(err) == ("effnet quantize needs onnxruntime, which comes with the 'deploy' extra: "
                        "pip install 'effnet[deploy]'")
    assert missing_extra(ModuleNotFoundError("No module named 'yaml'", name="yaml")) is None
    assert missing_extra(ValueError("x")) is None
