"""effnet report: one static HTML page from run, study and benchmark outputs, checked in Chromium."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import effnet.cli as cli
from effnet.analysis.report import build_report, write_report

CHROMIUM = Path("/usr/bin/chromium")


def png(path: Path, size=(40, 30), colour=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), colour, dtype="uint8")).save(path)


@pytest.fixture
def results(tmp_path):
    run = tmp_path / "run-b0"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,step,lr,train_loss,train_acc,val_loss,val_top1\n"
                                     "1,10,0.01,1.2,0.4,1.1,0.5\n2,20,0.005,0.9,0.6,0.8,0.7\n")
    (run / "metrics.json").write_text(json.dumps({"test_top1": 0.71, "params": 4007548, "model": "efficientnet_b0"}))
    (run / "config.yaml").write_text("model: efficientnet_b0\nimg_size: 64\n")
    png(run / "confusion.png", (50, 50))
    (run / "best.safetensors").write_bytes(b"ignored")
    study = tmp_path / "study"
    (study / "plots").mkdir(parents=True)
    (study / "trials.csv").write_text("trial,alpha,beta,gamma,accuracy\n0,1.2,1.1,1.15,0.8\n1,1.0,1.2,1.1,<b>x</b>\n")
    (study / "best.json").write_text(json.dumps({"alpha": 1.2, "beta": 1.1, "gamma": 1.15}))
    png(study / "plots" / "heatmap.png", (64, 48), (20, 120, 200))
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"kind": "effnet.bench", "environment": {"date": "2026-01-01", "cpu": "test cpu",
                                                                         "cores": 2, "versions": {"torch": "x"}},
                                 "settings": {"repeats": 3},
                                 "results": [{"model": "efficientnet_b0", "impl": "effnet", "path": "eager",
                                              "batch_size": 1, "img_size": 224, "throughput": 50.0,
                                              "p50_ms": 20.0, "p95_ms": 25.0, "peak_mem_mib": 10.0,
                                              "vs_best_peer": 1.1, "note": ""}]}))
    return run, study, bench


def test_report_has_tables_curves_and_embedded_images(results):
    run, study, bench = results
    text = build_report([run, study, bench])
    assert text.startswith("<!DOCTYPE html>")
    images = re.findall(r'<img src="([^"]+)"', text)
    assert len(images) == 3  # confusion matrix, metrics curves, study heat map
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert "training run" in text and "search / study" in text and "inference benchmark" in text
    assert "test cpu" in text and "0.71" in text and "img_size: 64" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text  # cell text is escaped
    assert "best.safetensors" not in text


def test_empty_or_unknown_inputs_give_clear_errors(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.bin").write_bytes(b"\0")
    with pytest.raises(ValueError, match="no run, study or benchmark files found"):
        build_report([empty])
    monkeypatch.setattr(cli, "COMMANDS", ["report"])
    assert cli.main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err.startswith("effnet report: error: not found:")
    assert cli.main(["report", str(empty), "--out", str(tmp_path / "r.html")]) == 2
    assert not (tmp_path / "r.html").exists()


def test_report_command_writes_the_page(results, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ["report"])
    run, study, bench = results
    out = tmp_path / "out" / "report.html"
    assert cli.main(["report", str(run), str(study), str(bench), "--out", str(out), "--title", "B0 on cells"]) == 0
    assert "<title>B0 on cells</title>" in out.read_text()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (scripts/ensure_chromium.sh installs it)")
def test_every_image_loads_in_headless_chromium(results, tmp_path):
    run, study, bench = results
    page = write_report([run, study, bench], tmp_path / "report.html")
    # a probe script, added to a copy of the page, writes each image's decoded width into the DOM
    probe = ("<script>window.addEventListener('load',()=>{const p=document.createElement('pre');p.id='probe';"
             "p.textContent=JSON.stringify([...document.images].map(i=>[i.complete,i.naturalWidth]));"
             "document.body.appendChild(p);});</script>")
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", probe + "</body>"))
    profile = tmp_path / "chromium-profile"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, "the probe script did not run"
    widths = json.loads(found.group(1))
    assert len(widths) == 3
    assert all(complete and width > 0 for complete, width in widths), widths
    assert sorted(w for _, w in widths)[0] >= 50  # real images, not broken-image placeholders
    shutil.rmtree(profile, ignore_errors=True)
