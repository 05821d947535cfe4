"""A bad flag is answered in one line with exit status 2; the usage is for --help."""
from __future__ import annotations

import pytest

from effnet import __version__
from effnet.cli import main


@pytest.mark.parametrize("argv, needle", [
    (["train", "--amp", "fp8"], "argument --amp: invalid choice: 'fp8'"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["study", "scaling", "--seeds", "three", "--data", "synthetic"], "--seeds: invalid"),
    (["info", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_a_bad_flag_is_one_line_naming_the_flag_and_where_help_is(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exc.value.code == 2 and len(lines) == 1, err
    assert lines[0].startswith("effnet") and needle in lines[0] and "--help" in lines[0] and "usage:" not in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"effnet {__version__}"


def _images(root, bad: bool):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray((rng.random((20, 20, 3)) * 255).astype("uint8")).save(root / cls / f"{i}.png")
    if bad:
        (root / "a" / "text.png").write_text("not an image")


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_run_folder(tmp_path, capsys):
    _images(tmp_path / "data", bad=True)
    out = tmp_path / "run"
    code = main(["train", "--data", str(tmp_path / "data"), "--epochs", "1", "--img-size", "32", "--batch-size", "4",
                 "--out", str(out), "--no-progress"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and "text.png" in err[0] and "--skip-bad-images" in err[0]
    assert not out.exists()


def test_a_bad_value_names_the_flag_not_the_config_key(tmp_path, capsys):
    _images(tmp_path / "data", bad=False)
    assert main(["train", "--data", str(tmp_path / "data"), "--img-size", "-5", "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == "effnet train: error: --img-size must be a positive integer, got -5"


def test_finetune_takes_the_pretrained_path_its_offline_error_asks_for(tmp_path, capsys):
    _images(tmp_path / "data", bad=False)
    missing = tmp_path / "weights.pth"
    code = main(["finetune", "efficientnet_b0", "--data", str(tmp_path / "data"), "--pretrained", str(missing),
                 "--epochs", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(missing) in err[0] and "unrecognized" not in err[0]


def test_a_missing_data_folder_lists_every_source(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope"), "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert all(s in err for s in ("'elpv'", "'fashion-mnist'", "'synthetic'", "image folder", ".csv"))
