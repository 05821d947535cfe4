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
