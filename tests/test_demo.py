"""effnet demo: every planned command parses, and the quick demo runs end to end on the real data."""
import html
import json
from pathlib import Path

import pytest

from effnet.cli import build_parser, main
from effnet.cli.demo import family_argv, plan, sample_photos, search_decided


@pytest.mark.parametrize("quick", [False, True])
def test_every_demo_command_is_a_valid_effnet_command(quick, tmp_path):
    parser = build_parser()
    for step, commands in plan(tmp_path, quick).items():
        for argv in commands:
            args = parser.parse_args(argv)  # exits (SystemExit) on an unknown flag
            assert callable(args.func), step


def test_the_family_uses_the_searchs_coefficients_only_when_it_named_a_winner(tmp_path):
    best = tmp_path / "scale-search" / "best.json"
    best.parent.mkdir()
    assert not search_decided(tmp_path)  # no search yet
    best.write_text(json.dumps({"decided": False, "best": {"alpha": 1.3, "role": "leader on validation, not separated"}}))
    assert not search_decided(tmp_path)
    assert family_argv(tmp_path, False)[3:9] == ["--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15"]
    best.write_text(json.dumps({"decided": True, "best": {"alpha": 1.3, "role": "winner"}}))
    assert search_decided(tmp_path)
    assert family_argv(tmp_path, True)[3:5] == ["--coefficients", str(best)]


def test_sample_photos_ship_with_scikit_image():
    photos = sample_photos()
    assert len(photos) == 4 and all(Path(p).is_file() for p in photos)


@pytest.mark.slow
def test_quick_demo_runs_every_step_and_leaves_its_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "espresso" in printed  # the pretrained Lite0 step classified coffee.png
    assert "imagenet" in printed and "scratch" in printed  # the transfer step's verdict and table
    assert (out / "transfer" / "transfer.json").is_file() and (out / "transfer" / "transfer.png").is_file()
    assert (out / "scale-search" / "best.json").is_file()
    assert sorted(p.name for p in (out / "family").glob("phi*.json")) == [f"phi{i}.json" for i in range(4)]
    report = (out / "report.html").read_text()
    verdict = json.loads((out / "transfer" / "transfer.json").read_text())["verdict"]
    first_screen = report[: report.index("<section")]
    assert html.escape(verdict, quote=False)[:60] in first_screen  # the transfer study's verdict, first
    assert f"open {out / 'report.html'}" in printed
    assert "the family uses" in printed  # one line says whose coefficients built the family


def test_unknown_demo_step_is_a_one_line_error(capsys):
    assert main(["demo", "--steps", "family,nonsense"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nonsense" in err and "\n" not in err
