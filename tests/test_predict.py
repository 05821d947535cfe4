"""effnet predict: top-k labels from image files, class names from the model, clear failures."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import effnet
import effnet.cli as cli
from effnet.arch import get_network, scale
from effnet.deploy.predict import predict_files
from effnet.weights import save_model
from effnet.weights.meta import Preprocessing


@pytest.fixture(autouse=True)
def only_predict(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ["predict"])


def tiny(num_classes: int = 3, class_names=()):
    desc = scale(get_network("efficientnet_b0"), width=0.25, depth=0.3, image_size=32, name="tiny_b0")
    torch.manual_seed(0)
    model = effnet.create_model(desc, num_classes=num_classes).eval()
    torch.nn.init.normal_(model.classifier.weight, 0.0, 0.5)  # a new head starts at zero
    model.preprocessing = Preprocessing(resolution=32, class_names=tuple(class_names))
    return model


def write_images(tmp_path, n=3):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = tmp_path / f"img{i}.png"
        Image.fromarray((rng.random((40 + i, 50, 3)) * 255).astype("uint8")).save(p)
        paths.append(str(p))
    return paths


def test_predictions_are_sorted_probabilities_with_fallback_names(tmp_path):
    run = predict_files(tiny(4), write_images(tmp_path), top_k=3, batch_size=2)
    assert len(run.predictions) == 3 and not run.failed
    for p in run.predictions:
        assert len(p.labels) == 3 and all(label.startswith("class_") for label in p.labels)
        assert list(p.probabilities) == sorted(p.probabilities, reverse=True)
        assert 0 < sum(p.probabilities) <= 1 + 1e-6
        assert [f"class_{i}" for i in p.indices] == list(p.labels)


def test_batching_does_not_change_predictions(tmp_path):
    paths = write_images(tmp_path, 3)
    model = tiny(4)
    one = predict_files(model, paths, top_k=2, batch_size=1).predictions
    many = predict_files(model, paths, top_k=2, batch_size=3).predictions
    for a, b in zip(one, many):
        assert a.indices == b.indices and np.allclose(a.probabilities, b.probabilities, atol=1e-5)


def test_checkpoint_class_names_label_the_predictions(tmp_path, capsys):
    ckpt = tmp_path / "cells.safetensors"
    save_model(tiny(2, ("functional", "defective")), ckpt)
    paths = write_images(tmp_path, 1)
    assert cli.main(["predict", *paths, "--model", str(ckpt), "--top-k", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    labels = [t["label"] for t in out["predictions"][0]["top_k"]]
    assert sorted(labels) == ["defective", "functional"]  # top-k capped at the 2 classes


def test_unreadable_files_are_named_and_the_rest_still_run(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    save_model(tiny(3), ckpt)
    good = write_images(tmp_path, 2)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    missing = tmp_path / "missing.png"
    code = cli.main(["predict", good[0], str(bad), str(missing), good[1], "--model", str(ckpt)])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.jpg" in captured.err and "missing.png" in captured.err
    assert good[0] in captured.out and good[1] in captured.out and "broken.jpg" not in captured.out


def test_all_files_failing_exits_2(tmp_path, capsys):
    bad = tmp_path / "a.png"
    bad.write_text("nope")
    ckpt = tmp_path / "m.safetensors"
    save_model(tiny(3), ckpt)
    assert cli.main(["predict", str(bad), "--model", str(ckpt)]) == 2
    assert "a.png" in capsys.readouterr().err


def test_a_different_img_size_warns_on_stderr(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    save_model(tiny(3), ckpt)
    paths = write_images(tmp_path, 1)
    assert cli.main(["predict", *paths, "--model", str(ckpt), "--img-size", "48", "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "48" in captured.err and "32" in captured.err
    assert json.loads(captured.out)["img_size"] == 48


def test_bad_options_give_one_line_errors(tmp_path, capsys):
    paths = write_images(tmp_path, 1)
    assert cli.main(["predict", *paths, "--model", "efficientnet_b0", "--top-k", "0"]) == 2
    assert capsys.readouterr().err.startswith("effnet predict: error: top_k")
    assert cli.main(["predict", *paths, "--model", str(tmp_path / "nothing.json")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_imagenet_lite0_names_a_real_photo(tmp_path, capsys):
    from skimage import data

    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(photo)
    assert cli.main(["predict", str(photo), "--model", "efficientnet_lite0", "--pretrained", "--top-k", "3",
                     "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["predictions"][0]["top_k"]
    assert top[0]["label"] in {"espresso", "cup", "coffee mug"}, top
