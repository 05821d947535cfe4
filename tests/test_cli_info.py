"""``effnet info``: costs beside the paper's Table 2, JSON output, errors as one line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from effnet.arch import EFFICIENTNET_B0, cost, list_networks, scale
from effnet.cli import main


def run_info(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["info", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_table_shows_costs_beside_the_paper(capsys):
    rc, out, _ = run_info(capsys, "efficientnet_b0", "efficientnet_b7", "resnet50")
    assert rc == 0
    assert "FLOPs = multiply-adds" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("efficientnet", "resnet"))}
    assert lines["efficientnet_b0"] == ["efficientnet_b0", "224", "5.29", "0.386", "5.3", "0.39", "77.1"]
    assert lines["efficientnet_b7"] == ["efficientnet_b7", "600", "66.35", "37.746", "66", "37", "84.3"]
    assert lines["resnet50"] == ["resnet50", "224", "25.56", "4.089", "-", "-", "-"]


def test_json_lists_name_resolution_params_and_macs(capsys):
    rc, out, _ = run_info(capsys, "efficientnet_b2", "efficientnet_lite0", "--json")
    assert rc == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["efficientnet_b2", "efficientnet_lite0"]
    b2, lite0 = rows
    assert (b2["resolution"], b2["params"], b2["macs"]) == (260, 9109994, cost(scale(
        EFFICIENTNET_B0, width=1.1, depth=1.2, image_size=260)).macs)
    assert (b2["paper_top1"], b2["paper_params_m"], b2["paper_flops_b"]) == (80.1, 9.2, 1.0)
    assert lite0["params"] == 4652008 and "paper_top1" not in lite0


def test_all_lists_every_registered_network(capsys):
    rc, out, _ = run_info(capsys, "--all", "--json")
    assert rc == 0
    assert [r["name"] for r in json.loads(out)] == list_networks()
    rc, out, _ = run_info(capsys)  # no NAME: the same list, as a table
    assert rc == 0
    assert all(name in out for name in list_networks())


def test_resolution_option_recounts_multiply_adds(capsys):
    rc, out, _ = run_info(capsys, "efficientnet_b0", "--resolution", "300", "--json")
    assert rc == 0
    (row,) = json.loads(out)
    assert row["resolution"] == 300 and row["macs"] == cost(EFFICIENTNET_B0, 300).macs


def test_a_description_file_is_accepted(capsys, tmp_path):
    path = tmp_path / "mine.json"
    scale(EFFICIENTNET_B0, phi=0.5, name="mine").save(path)
    rc, out, _ = run_info(capsys, str(path), "--json", "--table")
    assert rc == 0
    assert '"name": "mine"' in out
    rc, out, _ = run_info(capsys, str(path), "--table")
    assert rc == 0 and "MBConv6, k5x5, SE0.25" in out and "mine" in out


def test_compare_formula_prints_implied_phi(capsys):
    rc, out, _ = run_info(capsys, "--compare-formula")
    assert rc == 0
    b1 = next(line.split() for line in out.splitlines() if line.startswith("efficientnet_b1 "))
    assert b1[-3:] == ["0.52", "0.00", "0.49"]
    rc, out, _ = run_info(capsys, "--compare-formula", "--json")
    rows = json.loads(out)
    assert rows[2]["name"] == "efficientnet_b2" and rows[2]["phi_depth"] == pytest.approx(1.0)
    rc, out, _ = run_info(capsys, "efficientnet_b0", "--compare-formula", "--json")
    both = json.loads(out)
    assert set(both) == {"models", "formula"}


@pytest.mark.parametrize("argv, needle", [
    (["efficientnet_b99"], "unknown model 'efficientnet_b99'"),
    (["missing.json"], "missing.json"),
    (["efficientnet_b0", "--resolution", "0"], "--resolution"),
    (["--compare-formula", "--alpha", "0.5"], "alpha"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    rc, out, err = run_info(capsys, *argv)
    assert rc == 2
    assert err.startswith("effnet info: error:") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_description_file_is_one_line(capsys, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "effnet.arch", "name": "x", "stem": {"out_channels": 32}, "stages": [], '
                    '"head_channels": null, "resolution": 224, "dropout": 0.2}')
    rc, _, err = run_info(capsys, str(path))
    assert rc == 2 and "stages" in err and err.count("\n") == 1


def test_installed_command_prints_json():
    exe = Path(sys.executable).with_name("effnet")
    out = subprocess.run([str(exe), "info", "efficientnet_b0", "--json"], capture_output=True, text=True,
                         check=True, timeout=120)
    (row,) = json.loads(out.stdout)
    assert (row["name"], row["resolution"], row["params"], row["macs"]) == ("efficientnet_b0", 224, 5288548, 385814752)
