"""Exported files carry what a deployment needs: effnet predict and eval run them alone."""
from __future__ import annotations

import json

import numpy as np
import pytest

import effnet.cli as cli
from effnet.deploy.exported import load_exported
from effnet.weights import save_model

from test_predict import tiny, write_images

NAMES = ("functional", "cracked", "dark")


def _predict(capsys, *argv):
    assert cli.main(["predict", *argv, "--top-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["predictions"]
    return [[(t["label"], t["probability"]) for t in p["top_k"]] for p in out]


@pytest.mark.parametrize("fmt, suffix", [("onnx", ".onnx"), ("openvino", ".xml")])
def test_an_exported_file_alone_predicts_like_its_checkpoint(tmp_path, capsys, fmt, suffix):
    pytest.importorskip("onnxruntime")
    if fmt == "openvino":
        pytest.importorskip("openvino")
    ckpt = tmp_path / "cells.safetensors"
    save_model(tiny(3, NAMES), ckpt)
    out = tmp_path / "deploy" / f"cells{suffix}"
    assert cli.main(["export", str(ckpt), "--format", fmt, "--out", str(out)]) == 0
    assert "predict IMAGE --model FILE" in capsys.readouterr().out
    ckpt.unlink()  # nothing beside the exported file
    paths = write_images(tmp_path, 3)
    exported = _predict(capsys, *paths, "--model", str(out))
    save_model(tiny(3, NAMES), ckpt)
    reference = _predict(capsys, *paths, "--model", str(ckpt))
    for a, b in zip(exported, reference):
        assert [label for label, _ in a] == [label for label, _ in b]
        assert np.allclose([p for _, p in a], [p for _, p in b], atol=1e-4)
    model = load_exported(out)
    assert model.preprocessing.class_names == NAMES and model.preprocessing.resolution == 32
    assert model.name == "tiny_b0" and model.num_classes == 3


def _onnx_of_tiny(tmp_path):
    """A tiny model with class names, saved and exported to ONNX; the ONNX file's path."""
    ckpt = tmp_path / "cells.safetensors"
    save_model(tiny(3, NAMES), ckpt)
    out = tmp_path / "cells.onnx"
    assert cli.main(["export", str(ckpt), "--format", "onnx", "--out", str(out), "--no-verify"]) == 0
    return out


def test_plain_onnx_runtime_reads_the_metadata_in_five_lines(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = _onnx_of_tiny(tmp_path)
    session = ort.InferenceSession(str(out))
    meta = session.get_modelmeta().custom_metadata_map
    prep = json.loads(meta["effnet.preprocessing"])
    logits = session.run(None, {"input": np.zeros((1, 3, prep["resolution"], prep["resolution"]), np.float32)})[0]
    assert prep["class_names"] == list(NAMES) and logits.shape == (1, 3) and meta["effnet.model"] == "tiny_b0"


def test_a_file_without_effnet_metadata_is_one_line_naming_the_fix(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    out = _onnx_of_tiny(tmp_path)
    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    onnx.save(proto, str(out))
    capsys.readouterr()
    assert cli.main(["predict", *write_images(tmp_path, 1), "--model", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "carries no effnet metadata" in err[0] and "effnet export" in err[0]


def test_eval_runs_an_exported_file_like_its_checkpoint(tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnxruntime")
    from PIL import Image

    monkeypatch.setattr(cli, "COMMANDS", ["eval", "export"])
    rng = np.random.default_rng(1)
    for name in sorted(NAMES):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(20):
            Image.fromarray((rng.random((36, 36, 3)) * 255).astype("uint8")).save(tmp_path / "data" / name / f"{i}.png")
    ckpt = tmp_path / "m.safetensors"
    model = tiny(3, tuple(sorted(NAMES)))
    model.classifier.weight.data *= 1e4  # an untrained tiny network's logits are ~1e-5 apart: near ties
    save_model(model, ckpt)
    out = tmp_path / "m.onnx"
    assert cli.main(["export", str(ckpt), "--format", "onnx", "--out", str(out), "--no-verify"]) == 0
    results = []
    for model, split in ((ckpt, "test"), (out, "test"), (ckpt, "train"), (out, "train"), (ckpt, "train")):
        capsys.readouterr()
        assert cli.main(["eval", str(model), "--data", str(tmp_path / "data"), "--split", split, "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["top1"] == results[1]["top1"] and results[0]["confusion"] == results[1]["confusion"]
    # the training split is scored without its random crops and flips: the same every time
    assert results[2]["confusion"] == results[3]["confusion"] == results[4]["confusion"]


def test_a_run_folder_is_a_model_argument(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    save_model(tiny(3, NAMES), run / "best.safetensors")
    paths = write_images(tmp_path, 2)
    assert _predict(capsys, *paths, "--model", str(run)) == _predict(capsys, *paths, "--model", str(run / "best.safetensors"))
