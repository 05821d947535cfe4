"""Write a grey, non-ImageNet-like image folder for checking the training defaults:
Fashion-MNIST (Debian package ``dataset-fashion-mnist``), four classes, ``OUT/train/CLASS/*.png``
and a balanced ``OUT/test/CLASS/*.png``: 1,758 images, as in the fine-tuning report it checks.

    python benchmarks/make_grey_folder.py OUT [--train-per-class 390] [--test-per-class 50]

With ``--canvas C --item S`` each item is resized to S x S pixels and pasted near the centre (jittered
by up to a tenth of the canvas) of a dark C x C canvas: small, centred objects on a dark background.
"""
from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = {0: "tshirt", 3: "dress", 4: "coat", 7: "sneaker"}


def read(split: str) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(ROOT / f"{split}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(ROOT / f"{split}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--train-per-class", type=int, default=390)
    p.add_argument("--test-per-class", type=int, default=50)
    p.add_argument("--canvas", type=int, default=0, help="paste each item on a dark canvas of this side (0: as is)")
    p.add_argument("--item", type=int, default=48, help="with --canvas: the item's side in pixels")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    for split, source, per_class in (("train", "train", args.train_per_class), ("test", "t10k", args.test_per_class)):
        images, labels = read(source)
        for label, name in CLASSES.items():
            folder = Path(args.out) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in np.flatnonzero(labels == label)[:per_class]:
                image = Image.fromarray(images[i], mode="L")
                if args.canvas:
                    canvas = Image.new("L", (args.canvas, args.canvas), 0)
                    jitter = rng.integers(-args.canvas // 10, args.canvas // 10 + 1, size=2)
                    corner = (args.canvas - args.item) // 2 + jitter
                    canvas.paste(image.resize((args.item, args.item), Image.BILINEAR), tuple(int(c) for c in corner))
                    image = canvas
                image.save(folder / f"{source}-{i:05d}.png")


if __name__ == "__main__":
    main()
