"""Training and fine-tuning learn with their defaults: a short run from scratch and a fine-tune on
grey images whose statistics differ from ImageNet's both beat the majority class on held-out images."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from effnet.cli import main
from effnet.train import TrainConfig, fit
from train_helpers import TINY_JSON, one_torch_thread

one_thread = pytest.fixture(autouse=True)(one_torch_thread)
CLASSES = ("horizontal", "diagonal", "vertical")


def grey_stripes(root, train_per_class: int, test_per_class: int, size: int = 40, seed: int = 0):
    """``root/train|test/CLASS/*.png``: grey stripes whose orientation is the class, on a bright,
    low-contrast background (far from ImageNet's statistics), with random phase, frequency and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for k, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            angle = math.pi * k / (2 * (len(CLASSES) - 1))
            for i in range(n):
                freq, phase = rng.uniform(2.5, 4.5), rng.uniform(0, 2 * math.pi)
                wave = np.sin(2 * math.pi * freq * (xx * math.sin(angle) + yy * math.cos(angle)) + phase)
                img = 0.75 + 0.12 * wave + 0.04 * rng.standard_normal((size, size))
                Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), mode="L").save(folder / f"{i}.png")
    return root


def test_a_short_run_from_scratch_learns_with_the_default_recipe(tmp_path):
    data = grey_stripes(tmp_path / "stripes", train_per_class=60, test_per_class=20)
    desc = tmp_path / "tiny.json"
    desc.write_text(json.dumps(TINY_JSON))
    cfg = TrainConfig.for_model(str(desc), data=str(data), img_size=32, epochs=6, batch_size=16, seed=0,
                                threads=1, tensorboard=False, out=str(tmp_path / "run"))
    result = fit(cfg, progress=False)
    recipe = result.recipe
    assert recipe["regime"]["value"] == "short" and recipe["optimizer"]["value"] == "adamw"
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["decisions"] == recipe and saved["warmup_epochs"] == recipe["warmup_epochs"]["value"]
    test = result.metrics["test"]["best"]
    majority = max(sum(row) for row in test["confusion"]) / test["n"]  # balanced: 1/3, chance too
    assert test["n"] == 60 and majority == pytest.approx(1 / 3)
    assert test["top1"] >= 0.6, result.metrics["history"]


def test_finetuning_on_grey_images_re_estimates_batchnorm_and_learns(tmp_path, capsys):
    data = grey_stripes(tmp_path / "stripes", train_per_class=40, test_per_class=20)
    out = tmp_path / "ft"
    assert main(["finetune", "efficientnet_lite0", "--data", str(data), "--img-size", "48", "--epochs", "2",
                 "--batch-size", "16", "--seed", "0", "--threads", "1", "--no-progress", "--set", "tensorboard=false",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    first = printed.splitlines()[0]
    assert first.startswith("recipe (fine-tune")
    assert "bn_mode         train" in printed and "grey images" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recipe"]["head_lr_scale"]["value"] == 10.0
    assert metrics["test"]["best"]["n"] == 60
    assert metrics["test_top1"] >= 0.6, metrics["history"]
