"""The command line answers at once: building the parser, every ``--help`` and the commands that need
no torch (``info``, ``scale``, ``search scale --list``) import neither torch nor the extras.

Checked through ``sys.modules`` in a fresh interpreter (timing belongs to
``benchmarks/bench_cli_startup.py``, not to tests).
"""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "torchvision", "numpy", "optuna", "onnx", "onnxruntime", "matplotlib", "PIL", "safetensors",
         "sqlalchemy", "skimage", "tensorboard")

_SCRIPT = r"""
import contextlib, io, json, sys
heavy = HEAVY
from effnet.cli import COMMANDS, main
from effnet.cli.search import SEARCH_COMMANDS
commands = [["--help"]] + [[c, "--help"] for c in COMMANDS] + [["search", s, "--help"] for s in SEARCH_COMMANDS]
commands += [["info", "efficientnet_b0"], ["info", "--all", "--json"], ["info", "--compare-formula"],
             ["scale", "--base", "efficientnet_b0", "--phi", "0,1,2", "--out", OUT],
             ["search", "scale", "--list", "--data", "synthetic"]]
report = []
for argv in commands:
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    loaded = sorted(m for m in heavy if m in sys.modules)
    report.append({"argv": argv, "code": code, "stdout": len(out.getvalue()), "loaded": loaded,
                   "err": err.getvalue()[-300:]})
    if loaded:
        break
print(json.dumps(report))
"""


def test_help_info_scale_and_grid_listing_import_no_torch(tmp_path):
    script = _SCRIPT.replace("HEAVY", repr(HEAVY)).replace("OUT", repr(str(tmp_path / "family")))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for r in report:
        assert r["loaded"] == [], f"effnet {' '.join(r['argv'])} imported {r['loaded']}"
        assert r["code"] in (0, None), r
        assert r["stdout"] > 0, r
    assert len(report) >= 20  # every command's --help, and the torch-free commands, ran
    assert sorted(p.name for p in (tmp_path / "family").iterdir())[:1]  # scale wrote its descriptions
