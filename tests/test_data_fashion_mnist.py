"""Fashion-MNIST as a data source: the official split, stratified seeded validation, any size, clear errors."""
from __future__ import annotations

import contextlib
import gzip
import io

import numpy as np
import pytest
import torch

from effnet.data import load_splits
from effnet.data.fashion_mnist import FASHION_MNIST_CLASSES, fashion_mnist_root
from effnet.data.splits import split_sizes

try:
    fashion_mnist_root()
    INSTALLED = True
except OSError:
    INSTALLED = False
needs_data = pytest.mark.skipif(not INSTALLED, reason="dataset-fashion-mnist is not installed (make test installs it)")


@needs_data
def test_official_split_with_validation_carved_from_train_per_class():
    s = load_splits("fashion-mnist", img_size=28, augment="none")
    counts = s.counts()
    assert s.class_names == list(FASHION_MNIST_CLASSES)
    assert sum(counts["train"]) + sum(counts["val"]) == 60000 and sum(counts["test"]) == 10000
    assert counts["val"] == [split_sizes(6000, 0.15, 0.0)[0]] * 10 and counts["test"] == [1000] * 10
    x, y = s.test[0]
    assert x.shape == (3, 28, 28) and x.dtype == torch.float32 and 0 <= y < 10


@needs_data
def test_limit_per_class_caps_training_only_and_validation_is_seeded():
    a = load_splits("fashion-mnist", img_size=40, limit_per_class=50, augment="none", seed=0)
    b = load_splits("fashion-mnist", img_size=40, limit_per_class=50, augment="none", seed=0)
    c = load_splits("fashion-mnist", img_size=40, limit_per_class=50, augment="none", seed=1)
    # validation is carved from all 6,000 images of each class first: a small training set keeps a
    # validation set of 9,000 images, large enough to tell networks apart
    n_val = split_sizes(6000, 0.15, 0.0)[0]
    assert a.counts()["train"] == [50] * 10 and a.counts()["val"] == [n_val] * 10 and sum(a.counts()["val"]) >= 2000
    small = load_splits("fashion-mnist", img_size=28, limit_per_class=50, augment="none", seed=0)
    full = load_splits("fashion-mnist", img_size=28, augment="none", seed=0)
    # the same validation images with or without the cap
    assert small.val.labels == full.val.labels and torch.equal(small.val.images, full.val.images)
    assert len(a.test) == 10000  # the test split is always the whole official test set
    assert a.train[0][0].shape == (3, 40, 40)
    assert torch.equal(a.val.images, b.val.images) and not torch.equal(a.val.images, c.val.images)
    gray = load_splits("fashion-mnist", img_size=16, limit_per_class=5, augment="none",
                       preprocessing=__import__("effnet.weights.meta", fromlist=["Preprocessing"]).Preprocessing(
                           resolution=16, mean=(0.5,), std=(0.5,)))
    assert gray.train[0][0].shape == (1, 16, 16)


def test_missing_files_give_one_line_naming_the_apt_package(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNET_FASHION_MNIST", str(tmp_path))
    with pytest.raises(OSError, match="apt-get install dataset-fashion-mnist"):
        load_splits("fashion-mnist", img_size=28)
    from effnet.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["study", "scaling", "--data", "fashion-mnist", "--ratios", "2", "--methods", "width",
                     "--out", str(tmp_path / "out")])
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "dataset-fashion-mnist" in lines[0], err.getvalue()


def test_idx_files_are_read_from_numpy_and_bad_ones_refused(tmp_path, monkeypatch):
    """A tiny hand-made set in the idx format reads back exactly; a truncated file is one clear error."""
    rng = np.random.default_rng(0)

    def write(name, arr, dims):
        header = b"\x00\x00\x08" + bytes([dims]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(header + arr.astype(np.uint8).tobytes())

    train_x = rng.integers(0, 256, (40, 28, 28))
    train_y = np.arange(40) % 10
    write("train-images-idx3-ubyte.gz", train_x, 3)
    write("train-labels-idx1-ubyte.gz", train_y, 1)
    write("t10k-images-idx3-ubyte.gz", train_x[:20], 3)
    write("t10k-labels-idx1-ubyte.gz", train_y[:20], 1)
    monkeypatch.setenv("EFFNET_FASHION_MNIST", str(tmp_path))
    s = load_splits("fashion-mnist", img_size=28, augment="none", val_fraction=0.25)
    assert len(s.train) + len(s.val) == 40 and len(s.test) == 20
    assert torch.equal(s.test.images[:, 0], torch.from_numpy(train_x[:20].astype(np.uint8)))
    assert s.test.targets == list(train_y[:20])
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (20).to_bytes(4, "big") + b"\x01\x02")
    from effnet.data.fashion_mnist import fashion_mnist_arrays

    fashion_mnist_arrays.cache_clear()
    with pytest.raises(OSError, match="holds 2 bytes"):
        load_splits("fashion-mnist", img_size=28)
