"""EfficientNetV2-S/M/L, built from the Fused-MBConv block kind: torchvision's parameters, outputs
with torchvision's weights, its published multiply-adds, the verified download, compound scaling."""
from __future__ import annotations

import hashlib
import io

import pytest
import torch
import torchvision

import effnet
from effnet.arch import cost, get_network, scale
from effnet.arch.kinds import KINDS
from effnet.nn import BLOCKS
from effnet.weights.hub import URL_ENV, DownloadError, hub_weights
from test_pretrained_download import Server
from train_helpers import one_torch_thread

one_thread = pytest.fixture(autouse=True)(one_torch_thread)
V2 = ("efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l")


def torchvision_v2(name: str, seed: int = 0) -> torch.nn.Module:
    """torchvision's model with random weights and random BatchNorm statistics (so a wrong eps or a
    swapped layer shows in the outputs)."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(name).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    return model


def test_fused_mbconv_is_a_registered_kind_with_its_module():
    assert "fused_mbconv" in KINDS and BLOCKS["fused_mbconv"].kind == "fused_mbconv"
    assert list(KINDS) == list(BLOCKS)


@pytest.mark.parametrize("name", V2)
def test_parameters_and_multiply_adds_match_torchvision(name):
    ours = effnet.create_model(name)
    theirs = torchvision.models.get_model(name)
    n_ours = sum(p.numel() for p in ours.parameters())
    assert n_ours == sum(p.numel() for p in theirs.parameters()) == cost(get_network(name)).params
    published = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]  # GFLOPS at its resolution
    assert cost(get_network(name)).macs / 1e9 == pytest.approx(published, abs=1e-3)


@pytest.mark.parametrize("name", V2[:2])
def test_outputs_equal_torchvisions_with_its_weights(name, tmp_path):
    theirs = torchvision_v2(name)
    path = tmp_path / f"{name}.pth"
    torch.save(theirs.state_dict(), path)
    ours = effnet.create_model(name, pretrained=str(path)).eval()
    assert ours.stem.bn.eps == 1e-3  # torchvision builds V2 with BatchNorm eps 1e-3
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max().item() <= 1e-4


def test_published_v2_weights_go_through_the_verified_download(tmp_path, monkeypatch):
    entry = hub_weights("efficientnet_v2_s")
    assert entry.filename.startswith("efficientnet_v2_s-") and entry.sha256 and entry.preprocessing.resolution == 384
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    server = Server()
    try:
        server.files[f"/mirror/{entry.filename}"] = b"not the published weights" * 100
        monkeypatch.setenv(URL_ENV, f"{server.base}/mirror/")
        with pytest.raises(DownloadError, match="SHA-256"):
            effnet.create_model("efficientnet_v2_s", pretrained=True)
        assert server.requests == [f"/mirror/{entry.filename}"]
        # a file whose name carries its own checksum: fetched, checked, converted and cached
        monkeypatch.delenv(URL_ENV)
        theirs = torchvision_v2("efficientnet_v2_s", seed=1)
        buf = io.BytesIO()
        torch.save(theirs.state_dict(), buf)
        data = buf.getvalue()
        name = f"v2s-{hashlib.sha256(data).hexdigest()[:8]}.pth"
        server.files[f"/models/{name}"] = data
        ours = effnet.create_model("efficientnet_v2_s", pretrained=f"{server.base}/models/{name}").eval()
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert (ours(x) - theirs(x)).abs().max().item() <= 1e-4
        assert len(ours.preprocessing.class_names) == 1000
    finally:
        server.close()


def test_v2_scales_by_compound_coefficients_like_any_description():
    base = get_network("efficientnet_v2_s")
    bigger = scale(base, phi=1.0, alpha=1.2, beta=1.1, gamma=1.15)
    assert [s.op for s in bigger.stages] == [s.op for s in base.stages]
    assert bigger.num_blocks > base.num_blocks and bigger.resolution > base.resolution
    ratio = cost(bigger).macs / cost(base).macs
    assert 1.6 < ratio < 2.6  # about alpha * beta^2 * gamma^2 = 1.92, up to rounding
    model = effnet.create_model(bigger.replace(resolution=32, num_classes=5)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


def test_a_v2_description_round_trips_through_json():
    desc = get_network("efficientnet_v2_m")
    assert type(desc).from_dict(desc.to_dict()) == desc
