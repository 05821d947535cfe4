"""effnet report: one static HTML page that leads with each run's result and each study's verdict,
checked as text and, in headless Chromium, as a reader sees it."""
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
from effnet.analysis.report import build_report, wilson_interval, write_report

CHROMIUM = Path("/usr/bin/chromium")
CONFIG_MARK = "label_smoothing: 0.1"


def png(path: Path, size=(40, 30), colour=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), colour, dtype="uint8")).save(path)


def make_run(folder: Path, model: str, top1: float, n: int, epochs: int = 2) -> Path:
    """A training run folder as ``effnet train`` writes it (tiny numbers)."""
    folder.mkdir(parents=True)
    history = [{"epoch": e, "step": 10 * e, "lr": 0.01, "train_loss": 1.2 / e, "train_acc": 0.3 + 0.1 * e,
                "val_loss": 1.1 / e, "val_top1": 0.4 + 0.1 * e, "ema_val_loss": 1.0 / e, "ema_val_top1": 0.45}
               for e in range(1, epochs + 1)]
    header = list(history[0])
    (folder / "metrics.csv").write_text(",".join(header) + "\n" + "".join(
        ",".join(str(h[k]) for k in header) + "\n" for h in history))
    (folder / "metrics.json").write_text(json.dumps({
        "model": model, "data": "elpv (task defect4)", "class_names": ["ok", "crack"], "img_size": 64,
        "params": 4007548, "macs": 31_000_000, "epochs": epochs, "train_time_s": 65.2, "wall_time_s": 80.0,
        "best": {"weights": "ema", "epoch": epochs, "val_top1": 0.6}, "test_top1": top1, "test_weights": "ema",
        "test": {"best": {"top1": top1, "n": n, "per_class": [0.9, 0.2]}, "last": {"top1": top1 - 0.01, "n": n}},
        "history": history}))
    (folder / "config.yaml").write_text(f"model: {model}\nimg_size: 64\n{CONFIG_MARK}\n")
    (folder / "config.json").write_text(json.dumps({"model": model, "img_size": 64, "label_smoothing": 0.1}))
    png(folder / "confusion.png", (50, 50))
    (folder / "best.safetensors").write_bytes(b"ignored")
    return folder


@pytest.fixture
def results(tmp_path):
    run = make_run(tmp_path / "run-b0", "efficientnet_b0", 0.71, 394)
    # a grid search as written before paired statistics: means and SDs only
    study = tmp_path / "study"
    (study / "plots").mkdir(parents=True)
    (study / "trials.csv").write_text("trial,alpha,beta,gamma,accuracy\n0,1.2,1.1,1.15,0.8\n1,1.0,1.2,1.1,<b>x</b>\n")
    (study / "points.csv").write_text("alpha,beta,gamma,macs,acc,std,seeds_done\n1.2,1.1,1.15,9000000,0.8,0.02,2/2\n"
                                      "1.0,1.2,1.1,8800000,0.78,0.03,2/2\n")
    (study / "best.json").write_text(json.dumps({"study": "grid", "best": {"alpha": 1.2, "beta": 1.1, "gamma": 1.15,
                                                                          "val_acc": 0.8, "seeds_done": "2/2"},
                                                 "settings": {"seeds": 2}}))
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


@pytest.fixture
def paired_study(tmp_path):
    """A scaling study with paired statistics (verdict, positive control, intervals per candidate)."""
    folder = tmp_path / "scaling-b0"
    folder.mkdir()
    rows = [
        {"key": "baseline", "method": "baseline", "role": "baseline", "target_ratio": 1.0, "achieved_ratio": 1.0,
         "macs": 9e6, "seeds_done": "3/3", "mean": 0.70, "ci_low": 0.68, "ci_high": 0.72, "diff_to_best": -0.05,
         "diff_to_best_ci_low": -0.08, "diff_to_best_ci_high": -0.02, "indistinguishable_from_best": False},
        {"key": "compound 4x", "method": "compound", "role": "candidate", "target_ratio": 4.0, "achieved_ratio": 3.9,
         "macs": 35e6, "seeds_done": "3/3", "mean": 0.75, "ci_low": 0.73, "ci_high": 0.77, "diff_to_best": 0.0,
         "diff_to_best_ci_low": 0.0, "diff_to_best_ci_high": 0.0, "indistinguishable_from_best": True, "is_best": True,
         "test_mean": 0.74, "test_ci_low": 0.72, "test_ci_high": 0.76},
    ]
    (folder / "scaling.json").write_text(json.dumps({
        "verdict": "Compound 4x is best; depth 4x and width 4x are indistinguishable from it.", "decided": True,
        "study": "scaling-b0", "measured": "efficientnet_b0 on fashion-mnist, 3 seeds",
        "control": {"ratio": 3.9, "diff": 0.05, "ci_low": 0.02, "ci_high": 0.08, "separated": True},
        "rows": rows, "per_candidate": rows, "settings": {"seeds": 3}, "progress": {"complete": 6}}))
    png(folder / "scaling.png", (60, 40), (10, 200, 10))
    return folder


def test_wilson_interval_has_the_textbook_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    lo, hi = wilson_interval(280, 394)
    assert lo < 280 / 394 < hi and hi - lo == pytest.approx(0.0893, abs=2e-3)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_a_run_leads_with_its_test_accuracy_interval_and_folds_its_config_once(results):
    run, study, bench = results
    text = build_report([run, study, bench])
    assert text.startswith("<!DOCTYPE html>")
    lo, hi = wilson_interval(round(0.71 * 394), 394)
    headline = (f"test top-1 71.0% (95% CI {100 * lo:.1f}% to {100 * hi:.1f}%, Wilson, n=394 test images); "
                "efficientnet_b0 on elpv (task defect4) at 64 px")
    assert headline in text
    first_section = text.index("<section")
    assert text.index(headline) < text.index("loss and top-1 accuracy by epoch") < text.index(CONFIG_MARK)
    assert text.index(headline) - first_section < 300  # the run's section opens with it
    assert text.count(CONFIG_MARK) == 1  # config.yaml once; config.json is not shown again
    config_at = text.index(CONFIG_MARK)
    assert text.rfind("<details>", 0, config_at) > text.rfind("</details>", 0, config_at)  # inside a fold
    images = re.findall(r'<img src="([^"]+)"', text)
    assert len(images) == 3  # curves, confusion matrix, study heat map
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert "training run" in text and "search / study" in text and "inference benchmark" in text
    assert "test cpu" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text  # cell text is escaped
    assert "best.safetensors" not in text


def test_several_runs_are_shown_side_by_side_with_their_intervals(tmp_path):
    a = make_run(tmp_path / "b0-scratch", "efficientnet_b0", 0.64, 394, epochs=3)
    b = make_run(tmp_path / "lite0-finetuned", "efficientnet_lite0", 0.77, 394, epochs=3)
    text = build_report([a, b])
    top = text[: text.index("<section")]
    assert "Training runs side by side (2)" in top
    assert "b0-scratch" in top and "lite0-finetuned" in top
    for acc in (0.64, 0.77):
        lo, hi = wilson_interval(round(acc * 394), 394)
        assert f"{100 * lo:.1f}% to {100 * hi:.1f}%" in top
    assert "validation top-1 by epoch, every run" in top


def test_a_study_with_paired_statistics_shows_verdict_control_and_intervals(paired_study, tmp_path):
    text = build_report([paired_study])
    verdict = "Compound 4x is best; depth 4x and width 4x are indistinguishable from it."
    top = text[: text.index("<section")]
    assert verdict in top  # the verdict is listed before any section
    section = text[text.index("<section"):]
    assert section.index(verdict) < section.index("<table")
    assert ("Positive control: the base at 3.90x multiply-adds minus the base = +0.0500 (95% CI +0.0200 to "
            "+0.0800): separated.") in section
    assert "0.7500 [0.7300, 0.7700]" in section and "-0.0500 [-0.0800, -0.0200]" in section
    assert "0.7400 [0.7200, 0.7600]" in section  # held-out test accuracy of the winner
    assert ">best<" in section and ">no<" in section
    assert section.count("<img") == 1


def test_study_files_without_intervals_say_so(results):
    _, study, _ = results
    text = build_report([study])
    assert ("Highest mean: alpha 1.2, beta 1.1, gamma 1.15, validation accuracy 0.8000 over 2/2 seed(s). "
            "No confidence intervals were recorded") in text
    assert "0.8000 ± 0.0200 (SD)" in text


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


def _chromium(page: Path, probe: str, tmp_path: Path) -> str:
    """The DOM after ``probe`` (a script run on load) in headless Chromium with a 1280x900 window."""
    probed = tmp_path / f"probed-{page.stem}.html"
    probed.write_text(page.read_text().replace("</body>", f"<script>window.addEventListener('load',()=>{{{probe}}});"
                                                           "</script></body>"))
    profile = tmp_path / "chromium-profile"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--window-size=1280,900", f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
           probed.as_uri()]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, "the probe script did not run"
    return json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


_SHOW = "const p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify(%s);document.body.appendChild(p);"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (scripts/ensure_chromium.sh installs it)")
def test_every_image_loads_in_headless_chromium(results, tmp_path):
    run, study, bench = results
    page = write_report([run, study, bench], tmp_path / "report.html")
    widths = _chromium(page, _SHOW % "[...document.images].map(i=>[i.complete,i.naturalWidth])", tmp_path)
    assert len(widths) == 3
    assert all(complete and width > 0 for complete, width in widths), widths
    assert sorted(w for _, w in widths)[0] >= 50  # real images, not broken-image placeholders


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (scripts/ensure_chromium.sh installs it)")
def test_the_first_screen_shows_each_runs_result_and_each_studys_verdict(results, paired_study, tmp_path):
    run, study, bench = results
    other = make_run(tmp_path / "run-lite0", "efficientnet_lite0", 0.77, 394)
    page = write_report([run, other, paired_study, study, bench], tmp_path / "report.html")
    # the text a reader sees without scrolling: rendered text nodes whose box starts in the 900 px window
    first_screen = ("(()=>{const w=document.createTreeWalker(document.body,NodeFilter.SHOW_TEXT);const out=[];"
                    "let n;while((n=w.nextNode())){const r=document.createRange();r.selectNodeContents(n);"
                    "const b=r.getBoundingClientRect();if(b.height>0&&b.top<window.innerHeight)out.push(n.textContent);}"
                    "return {first:out.join(' '),all:document.body.innerText,height:window.innerHeight};})()")
    seen = _chromium(page, _SHOW % first_screen, tmp_path)
    assert seen["height"] >= 700  # a 1280x900 window less its frame
    first = seen["first"]
    for acc in (0.71, 0.77):
        lo, hi = wilson_interval(round(acc * 394), 394)
        assert f"{100 * acc:.1f}%" in first and f"{100 * lo:.1f}% to {100 * hi:.1f}%" in first
    assert "efficientnet_b0" in first and "efficientnet_lite0" in first and "65 s" in first
    assert "Compound 4x is best" in first and "Highest mean: alpha 1.2" in first
    assert CONFIG_MARK not in first
    assert CONFIG_MARK not in seen["all"]  # folded: not rendered until opened


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (scripts/ensure_chromium.sh installs it)")
def test_the_first_screen_shows_a_transfer_studys_verdict_and_its_plot_loads(tmp_path):
    docs = Path(__file__).resolve().parent.parent / "docs"
    study = tmp_path / "transfer-elpv"
    study.mkdir()
    shutil.copyfile(docs / "transfer-elpv.json", study / "transfer.json")  # a real study's result
    shutil.copyfile(docs / "transfer-elpv.png", study / "transfer.png")
    verdict = json.loads((study / "transfer.json").read_text())["verdict"]
    page = write_report([study], tmp_path / "report.html")
    first_screen = ("(()=>{const w=document.createTreeWalker(document.body,NodeFilter.SHOW_TEXT);const out=[];"
                    "let n;while((n=w.nextNode())){const r=document.createRange();r.selectNodeContents(n);"
                    "const b=r.getBoundingClientRect();if(b.height>0&&b.top<window.innerHeight)out.push(n.textContent);}"
                    "return {first:out.join(' '),images:[...document.images].map(i=>[i.complete,i.naturalWidth])};})()")
    seen = _chromium(page, _SHOW % first_screen, tmp_path)
    first = " ".join(seen["first"].split())
    opening = " ".join(verdict.split()[:30])
    assert "95% CI" in opening and opening in first  # the verdict's opening, with its interval, without scrolling
    assert seen["images"] and all(done and width > 0 for done, width in seen["images"])
