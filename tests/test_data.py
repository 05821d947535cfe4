"""The data layer: image decoding, transforms, sources, deterministic stratified splits, ELPV."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from effnet.data import (ImageDataset, Splits, check_image, elpv_records, load_image, load_splits,
                         make_transforms, split_sizes, synthetic_splits, to_rgb)
from effnet.weights.meta import Preprocessing

# ---------------------------------------------------------------- helpers


def save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def touch_images(root: Path, counts: dict[str, int], ext: str = ".png") -> None:
    """Empty files with image names: enough to build splits (images are decoded only when drawn)."""
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / cls / f"{cls}_{i:03d}{ext}").touch()


def real_images(root: Path, counts: dict[str, int], size: int = 16) -> None:
    for k, (cls, n) in enumerate(counts.items()):
        for i in range(n):
            save(Image.new("RGB", (size, size), (40 * k, 10 * i % 256, 90)), root / cls / f"{i}.png")


def pixels(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img)


def paths(ds) -> set[str]:
    return {p for p, _ in ds.samples}


# ---------------------------------------------------------------- decoding


def test_grayscale_image_becomes_equal_rgb_channels(tmp_path):
    img = Image.fromarray(np.array([[0, 77], [200, 255]], dtype=np.uint8))
    out = pixels(load_image(save(img, tmp_path / "g.png")))
    assert out.shape == (2, 2, 3)
    assert out[..., 0].tolist() == [[0, 77], [200, 255]]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_bilevel_image_becomes_black_and_white(tmp_path):
    img = Image.new("1", (2, 1), 0)
    img.putpixel((1, 0), 1)
    out = pixels(load_image(save(img, tmp_path / "b.png")))
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 1].tolist() == [255, 255, 255]


@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_16bit_grayscale_is_scaled_to_8bit_not_clipped(tmp_path, fmt):
    values = np.array([[0, 257, 32768, 65535, 1000]], dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / f"deep.{fmt}")
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")  # the file really is high bit depth
    out = pixels(load_image(path))[..., 0]
    assert out.tolist() == [[0, 1, 128, 255, 4]]  # round(v / 257); clipping would give 255 for all but 0


def test_32bit_integer_image_in_16bit_range_is_scaled_like_16bit():
    img = Image.fromarray(np.array([[0, 514, 65535]], dtype=np.int32))
    assert img.mode == "I"
    assert pixels(to_rgb(img))[..., 0].tolist() == [[0, 2, 255]]


def test_integer_and_float_images_outside_the_usual_range_are_stretched():
    wide = Image.fromarray(np.array([[-100, 0, 155]], dtype=np.int32))
    assert pixels(to_rgb(wide))[..., 0].tolist() == [[0, 100, 255]]
    unit = Image.fromarray(np.array([[0.0, 0.2, 1.0]], dtype=np.float32))
    assert unit.mode == "F"
    assert pixels(to_rgb(unit))[..., 0].tolist() == [[0, 51, 255]]
    wide_float = Image.fromarray(np.array([[-1.0, 0.0, 3.0]], dtype=np.float32))
    assert pixels(to_rgb(wide_float))[..., 0].tolist() == [[0, 64, 255]]


def test_rgba_is_composited_on_white(tmp_path):
    img = Image.new("RGBA", (3, 1))
    img.putdata([(255, 0, 0, 0), (255, 0, 0, 255), (0, 0, 0, 128)])
    out = pixels(load_image(save(img, tmp_path / "a.png")))
    assert out[0, 0].tolist() == [255, 255, 255]  # fully transparent red shows the white background
    assert out[0, 1].tolist() == [255, 0, 0]
    assert all(abs(v - 127) <= 1 for v in out[0, 2].tolist())  # half-transparent black over white


def test_grayscale_with_alpha_is_composited_on_white(tmp_path):
    img = Image.new("LA", (2, 1))
    img.putdata([(0, 0), (0, 255)])
    out = pixels(load_image(save(img, tmp_path / "la.png")))
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [0, 0, 0]


def test_palette_image_with_transparency_is_composited_and_without_keeps_colours(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 255, 10, 200, 30] + [0] * 762)
    img.putdata([0, 1])
    opaque = pixels(load_image(save(img, tmp_path / "p.png")))
    assert opaque[0, 0].tolist() == [0, 0, 255] and opaque[0, 1].tolist() == [10, 200, 30]
    img.info["transparency"] = 0
    transparent = pixels(load_image(save(img, tmp_path / "pt.png", transparency=0)))
    assert transparent[0, 0].tolist() == [255, 255, 255] and transparent[0, 1].tolist() == [10, 200, 30]


def test_cmyk_image_converts_to_rgb(tmp_path):
    img = Image.new("CMYK", (3, 1))
    img.putdata([(0, 0, 0, 0), (0, 0, 0, 255), (255, 0, 0, 0)])
    out = pixels(load_image(save(img, tmp_path / "c.tiff")))
    assert out[0].tolist() == [[255, 255, 255], [0, 0, 0], [0, 255, 255]]


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: stored landscape, shown portrait
    path = save(img, tmp_path / "phone.jpg", exif=exif.tobytes())
    assert load_image(path).size == (10, 20)


def bad_files(tmp_path: Path) -> dict[str, Path]:
    good = png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)))
    files = {"truncated": good[: len(good) // 2], "empty": b"", "text": b"this is not an image\n"}
    out = {}
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        out[name] = tmp_path / f"{name}.png"
        out[name].write_bytes(data)
    return out


@pytest.mark.parametrize("kind", ["truncated", "empty", "text"])
def test_unreadable_file_raises_one_line_error_naming_it(tmp_path, kind):
    path = bad_files(tmp_path)[kind]
    with pytest.raises(ValueError, match="cannot read image") as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    reason = check_image(path)  # verify() may word the problem differently from a full decode
    assert reason is not None and reason.startswith(f"cannot read image {path}: ") and "\n" not in reason


def test_missing_image_file_raises_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.png: no such file"):
        load_image(tmp_path / "missing.png")


def test_check_image_accepts_a_good_file(tmp_path):
    assert check_image(save(Image.new("L", (4, 4)), tmp_path / "ok.png")) is None


# ---------------------------------------------------------------- transforms


@pytest.mark.parametrize("augment", ["autoaugment", "randaugment", "none"])
def test_train_transform_gives_requested_size(augment):
    tf = make_transforms(Preprocessing(), 48, train=True, augment=augment)
    for size in [(90, 60), (30, 70)]:
        out = tf(Image.new("RGB", size, (10, 120, 240)))
        assert out.shape == (3, 48, 48) and out.dtype == torch.float32
        assert type(out) is torch.Tensor


def test_eval_transform_gives_requested_size_and_honours_mean_std():
    pre = Preprocessing(mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    out = make_transforms(pre, 40, train=False)(Image.new("RGB", (100, 70), (102, 153, 204)))
    assert out.shape == (3, 40, 40)
    expected = [(102 / 255 - 0.5) / 0.5, (153 / 255 - 0.25) / 0.25, 204 / 255]
    assert torch.allclose(out.mean(dim=(1, 2)), torch.tensor(expected), atol=1e-5)
    assert out.std(dim=(1, 2)).max() < 1e-5


def test_eval_transform_centre_crop_follows_crop_fraction():
    img = Image.new("RGB", (200, 200), (0, 0, 0))
    img.paste((255, 255, 255), (50, 50, 150, 150))  # the central half is white
    half = make_transforms(Preprocessing(crop_fraction=0.5), 32, train=False)(img)
    whole = make_transforms(Preprocessing(crop_fraction=1.0), 32, train=False)(img)
    white = (1 - 0.485) / 0.229
    # resize to 64, crop 32: only the white square (its outermost pixel row blends with the black)
    assert (half[0, 1:-1, 1:-1] > white - 0.1).all() and (half[0] > 1.5).all()
    assert (whole[0] < 0).float().mean() > 0.5  # the whole image: mostly black


def test_single_channel_preprocessing_gives_one_channel_tensors():
    pre = Preprocessing(mean=(0.5,), std=(0.5,))
    assert make_transforms(pre, 32, train=True)(Image.new("RGB", (50, 50))).shape == (1, 32, 32)
    assert make_transforms(pre, 32, train=False)(Image.new("RGB", (50, 50))).shape == (1, 32, 32)


def test_random_crop_scale_is_sized_to_the_resolution():
    from torchvision.transforms import v2

    from effnet.data import crop_scale_for

    assert crop_scale_for(224) == 0.08 and crop_scale_for(600) == 0.08  # the paper's 8%
    assert crop_scale_for(64) == pytest.approx(0.28) and crop_scale_for(16) == 1.0
    for augment in ("none", "autoaugment"):
        crop = make_transforms(None, 32, train=True, augment=augment).transforms[0]
        assert isinstance(crop, v2.RandomResizedCrop) and crop.scale == (pytest.approx(0.56), 1.0)
    assert make_transforms(None, 32, train=True, augment="none", crop_scale=0.9).transforms[0].scale == (0.9, 1.0)
    with pytest.raises(ValueError, match="crop_scale"):
        make_transforms(None, 32, train=True, crop_scale=0.0)


def test_unknown_augmentation_is_rejected():
    with pytest.raises(ValueError, match="augment must be one of"):
        make_transforms(None, 32, train=True, augment="mixup")


# ---------------------------------------------------------------- image folders


def test_image_folder_gives_sorted_classes_and_all_images(tmp_path):
    real_images(tmp_path, {"dog": 7, "cat": 6})
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / "cat" / ".hidden.png").write_bytes(b"")
    splits = load_splits(tmp_path, img_size=32, seed=1)
    assert splits.class_names == ["cat", "dog"]
    assert len(splits.train) + len(splits.val) + len(splits.test) == 13
    image, label = splits.train[0]
    assert image.shape == (3, 32, 32) and label in (0, 1)
    image, _ = splits.val[0]
    assert image.shape == (3, 32, 32)
    assert splits.source == str(tmp_path) and splits.skipped == []


def test_empty_class_folder_is_an_error_naming_it(tmp_path):
    touch_images(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="no image files.*empty_class"):
        load_splits(tmp_path, img_size=32)


def test_single_class_is_an_error(tmp_path):
    touch_images(tmp_path, {"only": 5})
    with pytest.raises(ValueError, match="at least two classes, found 1 \\(only\\)"):
        load_splits(tmp_path, img_size=32)


def test_folder_without_class_folders_is_an_error(tmp_path):
    save(Image.new("RGB", (4, 4)), tmp_path / "loose.png")
    with pytest.raises(ValueError, match="no class folders"):
        load_splits(tmp_path, img_size=32)


def test_missing_source_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="data source not found: .*nowhere"):
        load_splits(tmp_path / "nowhere", img_size=32)


def test_task_other_than_default_is_rejected_for_folders(tmp_path):
    touch_images(tmp_path, {"a": 3, "b": 3})
    with pytest.raises(ValueError, match="applies only to the 'elpv'"):
        load_splits(tmp_path, img_size=32, task="binary")


def test_train_val_test_folders_are_used_as_given(tmp_path):
    touch_images(tmp_path / "train", {"a": 10, "b": 10})
    touch_images(tmp_path / "val", {"a": 2, "b": 3})
    touch_images(tmp_path / "test", {"a": 4})
    splits = load_splits(tmp_path, img_size=32)
    assert splits.class_names == ["a", "b"]
    assert splits.counts() == {"train": [10, 10], "val": [2, 3], "test": [4, 0]}
    assert all("/val/" in p for p in paths(splits.val)) and all("/test/" in p for p in paths(splits.test))


def test_missing_test_folder_is_carved_from_train(tmp_path):
    touch_images(tmp_path / "train", {"a": 20, "b": 20})
    touch_images(tmp_path / "validation", {"a": 2, "b": 2})
    splits = load_splits(tmp_path, img_size=32, test_fraction=0.25)
    assert splits.counts() == {"train": [15, 15], "val": [2, 2], "test": [5, 5]}
    assert all("/train/" in p for p in paths(splits.test)) and not paths(splits.test) & paths(splits.train)


def test_val_class_unknown_to_train_is_an_error(tmp_path):
    touch_images(tmp_path / "train", {"a": 3, "b": 3})
    touch_images(tmp_path / "val", {"a": 1, "c": 1})
    with pytest.raises(ValueError, match="not in .*train: c"):
        load_splits(tmp_path, img_size=32)


# ---------------------------------------------------------------- CSV lists


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_list_resolves_relative_paths_and_header_is_optional(tmp_path):
    real_images(tmp_path / "imgs", {"x": 4, "y": 4})
    rows = [f"imgs/{c}/{i}.png,{c}" for c in "xy" for i in range(4)]
    rows[0] = str(tmp_path / "imgs/x/0.png") + ",x"  # absolute paths work too
    (tmp_path / "lists").mkdir()
    with_header = load_splits(write_csv(tmp_path / "with.csv", ["path,label"] + rows), img_size=32)
    without = load_splits(write_csv(tmp_path / "without.csv", rows), img_size=32)
    assert with_header.class_names == without.class_names == ["x", "y"]
    for split in ("train", "val", "test"):
        assert getattr(with_header, split).samples == getattr(without, split).samples
    assert all(Path(p).is_file() for p in paths(with_header.train))
    assert with_header.train[0][0].shape == (3, 32, 32)


def test_csv_integer_labels_are_ordered_numerically(tmp_path):
    touch_images(tmp_path, {"i": 9})
    labels = ["10", "2", "2", "10", "07", "7", "2", "10", "7"]
    rows = [f"i/i_{n:03d}.png,{lab}" for n, lab in enumerate(labels)]
    splits = load_splits(write_csv(tmp_path / "l.csv", rows), img_size=32)
    assert splits.class_names == ["2", "7", "10"]
    assert [sum(c) for c in zip(*splits.counts().values())] == [3, 3, 3]


@pytest.mark.parametrize("row, message", [
    ("a/a_000.png,", r"l\.csv:2: empty label"),
    ("a/a_000.png,x,extra", r"l\.csv:2: expected 2 fields"),
    ("a/a_000.png", r"l\.csv:2: expected 2 fields"),
    ("a/a_001.png,a", r"l\.csv:2: .*listed twice \(also on line 1\)"),
])
def test_csv_bad_rows_are_errors_naming_the_line(tmp_path, row, message):
    touch_images(tmp_path, {"a": 3})
    with pytest.raises(ValueError, match=message):
        load_splits(write_csv(tmp_path / "l.csv", ["a/a_001.png,a", row, "a/a_002.png,b"]), img_size=32)


def test_csv_missing_file_is_an_error_or_skipped_with_the_flag(tmp_path):
    real_images(tmp_path, {"a": 3, "b": 3})
    rows = [f"{c}/{i}.png,{c}" for c in "ab" for i in range(3)] + ["a/gone.png,a"]
    listing = write_csv(tmp_path / "l.csv", rows)
    with pytest.raises(ValueError, match=r"l\.csv:7: image file not found: .*gone\.png"):
        load_splits(listing, img_size=32)
    splits = load_splits(listing, img_size=32, skip_bad_images=True)
    assert splits.skipped == [str(tmp_path / "a/gone.png")]
    assert sum(len(getattr(splits, s)) for s in ("train", "val", "test")) == 6


def test_non_csv_file_source_is_rejected(tmp_path):
    path = save(Image.new("RGB", (4, 4)), tmp_path / "one.png")
    with pytest.raises(ValueError, match="expected a .csv list"):
        load_splits(path, img_size=32)


# ---------------------------------------------------------------- bad images in a data set


def test_bad_images_fail_when_drawn_or_are_skipped_and_counted(tmp_path):
    real_images(tmp_path, {"a": 6, "b": 6})
    bad = bad_files(tmp_path / "a")
    strict = load_splits(tmp_path, img_size=32, val_fraction=0.0, test_fraction=0.0)
    index = [p for p, _ in strict.train.samples].index(str(bad["truncated"]))
    with pytest.raises(ValueError, match=r"cannot read image .*truncated\.png"):
        strict.train[index]

    splits = load_splits(tmp_path, img_size=32, skip_bad_images=True)
    assert sorted(splits.skipped) == sorted(str(p) for p in bad.values())
    kept = paths(splits.train) | paths(splits.val) | paths(splits.test)
    assert len(kept) == 12 and not kept & set(splits.skipped)
    for ds in (splits.train, splits.val, splits.test):
        for i in range(len(ds)):
            assert ds[i][0].shape == (3, 32, 32)


def test_class_with_only_unreadable_images_is_an_error_when_skipping(tmp_path):
    real_images(tmp_path, {"a": 3})
    bad_files(tmp_path / "b")
    with pytest.raises(ValueError, match="class 'b' has no readable images"):
        load_splits(tmp_path, img_size=32, skip_bad_images=True)


# ---------------------------------------------------------------- splitting


def test_splits_are_deterministic_stratified_disjoint_and_complete(tmp_path):
    counts = {"a": 20, "b": 13, "c": 7}
    touch_images(tmp_path, counts)
    first = load_splits(tmp_path, img_size=32, seed=3)
    again = load_splits(tmp_path, img_size=32, seed=3)
    other = load_splits(tmp_path, img_size=32, seed=4)
    parts = [paths(first.train), paths(first.val), paths(first.test)]
    assert [paths(again.train), paths(again.val), paths(again.test)] == parts
    assert paths(other.val) != parts[1]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, parts)) == 40
    c = first.counts()
    assert c == {"train": [14, 9, 5], "val": [3, 2, 1], "test": [3, 2, 1]}
    assert first.train.targets == [y for _, y in first.train.samples]


def test_split_sizes_keep_every_class_in_every_split_and_one_to_train():
    for n in range(1, 60):
        for vf, tf in [(0.15, 0.15), (0.1, 0.0), (0.45, 0.45), (0.0, 0.0)]:
            n_val, n_test = split_sizes(n, vf, tf)
            assert n - n_val - n_test >= 1
            if n >= 3:
                assert (n_val >= 1) == (vf > 0) and (n_test >= 1) == (tf > 0)


def test_limit_per_class_caps_each_class(tmp_path):
    touch_images(tmp_path, {"a": 30, "b": 5})
    splits = load_splits(tmp_path, img_size=32, limit_per_class=10)
    assert [sum(col) for col in zip(*splits.counts().values())] == [10, 5]


@pytest.mark.parametrize("kwargs, message", [
    ({"val_fraction": 0.6, "test_fraction": 0.4}, "must be below 1"),
    ({"val_fraction": -0.1}, "val_fraction must be in"),
    ({"limit_per_class": 0}, "limit_per_class must be a positive integer"),
    ({"img_size": 0}, "img_size must be a positive integer"),
])
def test_bad_split_options_are_rejected(tmp_path, kwargs, message):
    touch_images(tmp_path, {"a": 3, "b": 3})
    with pytest.raises(ValueError, match=message):
        load_splits(tmp_path, **{"img_size": 32, **kwargs})


# ---------------------------------------------------------------- ELPV


def test_elpv_has_2624_images_in_four_classes_with_label_file_counts():
    splits = load_splits("elpv", img_size=64, augment="none")
    assert splits.class_names == ["functional", "possibly_defective", "likely_defective", "defective"]
    per_class = [sum(col) for col in zip(*splits.counts().values())]
    assert per_class == [1508, 295, 106, 715] and sum(per_class) == 2624
    assert splits.counts()["test"] == [226, 44, 16, 107]
    assert len(paths(splits.train) | paths(splits.val) | paths(splits.test)) == 2624
    assert splits.source == "elpv (task defect4)"


def test_elpv_binary_task_counts_one_third_as_functional():
    records, names = elpv_records("binary")
    assert names == ["functional", "defective"]
    assert [sum(1 for _, y in records if y == k) for k in (0, 1)] == [1508 + 295, 106 + 715]


def test_elpv_sample_is_an_rgb_tensor_at_the_requested_size():
    splits = load_splits("elpv", img_size=48, limit_per_class=3, task="binary")
    assert [sum(col) for col in zip(*splits.counts().values())] == [3, 3]
    for ds in (splits.train, splits.test):
        image, label = ds[0]
        assert image.shape == (3, 48, 48) and label in (0, 1)
    image, _ = splits.test[0]  # eval transform: the grayscale cell gives three equal channels
    std, mean = torch.tensor([0.229, 0.224, 0.225]), torch.tensor([0.485, 0.456, 0.406])
    raw = image * std.view(3, 1, 1) + mean.view(3, 1, 1)
    assert torch.allclose(raw[0], raw[1], atol=1e-5) and torch.allclose(raw[1], raw[2], atol=1e-5)
    assert raw.std() > 0.05  # a real picture, not a blank


def test_elpv_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="unknown elpv task 'colour'"):
        load_splits("elpv", img_size=32, task="colour")


# ---------------------------------------------------------------- synthetic


def test_synthetic_splits_are_deterministic_and_seeded():
    a, b, c = synthetic_splits(seed=5), synthetic_splits(seed=5), synthetic_splits(seed=6)
    assert isinstance(a, Splits) and a.class_names == ["class_0", "class_1", "class_2"]
    assert (len(a.train), len(a.val), len(a.test)) == (24, 12, 12)
    for i in range(len(a.train)):
        assert torch.equal(a.train[i][0], b.train[i][0]) and a.train[i][1] == b.train[i][1]
    assert not torch.equal(a.train[0][0], c.train[0][0])
    assert not torch.equal(a.train[0][0], a.val[0][0])
    assert a.train[0][0].shape == (3, 32, 32) and a.train.targets[:4] == [0, 1, 2, 0]


def test_synthetic_data_is_learnable_by_a_tiny_model_in_a_few_steps():
    torch.manual_seed(0)
    splits = synthetic_splits(num_classes=4, per_class=16, img_size=32, seed=0)
    loader = torch.utils.data.DataLoader(splits.train, batch_size=16, shuffle=True)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(5):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    x, y = next(iter(torch.utils.data.DataLoader(splits.val, batch_size=len(splits.val))))
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.75  # chance is 0.25


def test_load_splits_synthetic_uses_preprocessing_and_limit():
    pre = Preprocessing(resolution=40, mean=(0.5,), std=(0.5,))
    splits = load_splits("synthetic", img_size=40, preprocessing=pre, limit_per_class=4, seed=2)
    assert len(splits.train) == 12 and splits.train[0][0].shape == (1, 40, 40)


def test_image_dataset_without_transform_yields_rgb_images(tmp_path):
    real_images(tmp_path, {"a": 1})
    ds = ImageDataset([(str(tmp_path / "a/0.png"), 0)], ["a"])
    image, label = ds[0]
    assert image.mode == "RGB" and label == 0 and ds.targets == [0] and len(ds) == 1
