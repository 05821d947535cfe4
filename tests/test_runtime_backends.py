"""The runtime layer: one backend per engine, each saying whether it runs here and giving the same
logits as the PyTorch model it was built from."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import effnet
import effnet.machine as machine
from effnet.arch import get_network, scale
from effnet.deploy.export import export_onnx
from effnet.deploy.names import CHOOSE_ONLY_PATHS, PATHS
from effnet.deploy.runtime import BACKENDS, Backend
from effnet.errors import EffnetError, MissingExtraError


@pytest.fixture(scope="module")
def tiny():
    desc = scale(get_network("efficientnet_b0"), width=0.25, depth=0.3, image_size=32, name="tiny_b0")
    torch.manual_seed(0)
    return effnet.create_model(desc, num_classes=3).eval()


def test_every_engine_path_has_one_backend_and_int8_is_built_on_them():
    engines = {p for p in (*PATHS, *CHOOSE_ONLY_PATHS) if "int8" not in p}
    assert set(BACKENDS) == engines
    for name, backend in BACKENDS.items():
        assert isinstance(backend, Backend) and backend.name == name and backend.source in ("module", "onnx")


@pytest.mark.parametrize("name", ["eager", "channels_last", "onnxruntime"])
def test_a_backend_runs_the_model_as_pytorch_does(tiny, tmp_path, name):
    backend = BACKENDS[name]
    assert backend.unavailable() is None
    onnx = tmp_path / "m.onnx"
    if backend.source == "onnx":
        export_onnx(tiny, onnx, example_size=32)
    run = backend.build(tiny if backend.source == "module" else onnx)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    with torch.no_grad():
        want = tiny(torch.from_numpy(x)).numpy()
    assert np.abs(run(x) - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_bf16_backends_say_why_they_cannot_run_on_a_cpu_without_native_bf16(monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    err = BACKENDS["bf16"].unavailable()
    assert isinstance(err, EffnetError) and "no AVX512-BF16 or AMX" in str(err)
    assert BACKENDS["eager"].unavailable() is None


def test_a_missing_engine_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    for name, extra in (("openvino", "openvino"), ("onnxruntime", "deploy")):
        err = BACKENDS[name].unavailable()
        assert isinstance(err, MissingExtraError) and f"pip install 'effnet[{extra}]'" in str(err)
