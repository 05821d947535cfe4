"""``effnet scale``: step 2 of compound scaling writes one description per phi, with its cost."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

from effnet.arch import Network, cost, get_network, scale
from effnet.cli import main


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_scale_writes_one_description_per_phi_equal_to_the_library_scaling(tmp_path):
    code, out, err = _run("scale", "--base", "efficientnet_b0", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15",
                          "--phi", "0,1,2,3", "--out", str(tmp_path))
    assert code == 0, err
    base = get_network("efficientnet_b0")
    for phi in (0, 1, 2, 3):
        desc = Network.load(tmp_path / f"phi{phi}.json")
        res = round(224 * 1.15**phi)
        expect = scale(base, phi, 1.2, 1.1, 1.15, image_size=res, name=f"efficientnet_b0-phi{phi}")
        assert desc == expect
        c = cost(desc)
        assert f"{c.macs / 1e6:.1f}" in out and f"{c.params / 1e6:.2f}" in out
    assert Network.load(tmp_path / "phi0.json").stages == base.stages
    assert "multiply-adds" in out


def test_scaled_description_trains_through_create_model(tmp_path):
    import torch

    from effnet.factory import create_model

    assert _run("scale", "--base", "efficientnet_b0", "--phi", "1", "--img-size", "32", "--out", str(tmp_path))[0] == 0
    path = tmp_path / "phi1.json"
    model = create_model(str(path), num_classes=3)
    assert model.desc.replace(num_classes=1000) == Network.load(path)
    assert model.preprocessing.resolution == round(32 * 1.15)
    x = torch.randn(2, 3, model.desc.resolution, model.desc.resolution)
    assert model(x).shape == (2, 3)


def test_costs_grow_about_two_to_the_phi(tmp_path):
    assert _run("scale", "--phi", "0,1,2,3", "--out", str(tmp_path))[0] == 0
    macs = [cost(Network.load(tmp_path / f"phi{p}.json")).macs for p in range(4)]
    ratios = [b / a for a, b in zip(macs, macs[1:])]
    assert all(1.6 < r < 2.6 for r in ratios), ratios  # alpha*beta^2*gamma^2 = 1.92, plus rounding


def test_coefficients_come_from_a_search_result(tmp_path):
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"best": {"alpha": 1.3, "beta": 1.05, "gamma": 1.2}}))
    code, out, err = _run("scale", "--coefficients", str(best), "--phi", "1", "--out", str(tmp_path / "f"))
    assert code == 0, err
    desc = Network.load(tmp_path / "f" / "phi1.json")
    assert desc == scale(get_network("efficientnet_b0"), 1, 1.3, 1.05, 1.2, image_size=round(224 * 1.2),
                         name="efficientnet_b0-phi1")


@pytest.mark.parametrize("args, needle", [
    (["--phi", "1,x"], "--phi must be"),
    (["--alpha", "0.9"], "alpha must be >= 1"),
    (["--base", "no_such_net"], "no_such_net"),
    (["--coefficients", "/nonexistent/best.json"], "cannot read"),
])
def test_bad_input_is_one_line(tmp_path, args, needle):
    code, out, err = _run("scale", *args, "--out", str(tmp_path))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("effnet scale: error:") and needle in lines[0], err
    assert not list(tmp_path.glob("*.json"))


def test_negative_phi_writes_a_scaled_down_base_cheaper_than_the_original(tmp_path):
    code, out, err = _run("scale", "--base", "efficientnet_b0", "--phi=-2,0", "--img-size", "64", "--out", str(tmp_path))
    assert code == 0, err
    small, base = Network.load(tmp_path / "phi-2.json"), Network.load(tmp_path / "phi0.json")
    assert small.resolution == round(64 * 1.15**-2)
    assert small.num_blocks < base.num_blocks
    assert cost(small).macs < cost(base).macs


def test_phi_below_the_floor_is_refused_in_one_line():
    code, out, err = _run("scale", "--base", "efficientnet_b0", "--phi=-9")
    assert code != 0 and "phi must be between -8" in err and "Traceback" not in err
