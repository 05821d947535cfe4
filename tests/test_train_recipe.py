"""The recipe a run gets: the paper's values for a long ImageNet-scale run or on request, values sized
to the run for short runs and fine-tuning, each with its reason."""
import pytest
import torch

from effnet.train import PAPER, TrainConfig, decide
from effnet.train.recipe import InputStats, input_statistics, steps_per_epoch

IMAGENET_TRAIN = 1_281_167


def test_a_long_imagenet_scale_run_gets_exactly_the_papers_values():
    cfg = TrainConfig.for_model("efficientnet_b0", epochs=350, batch_size=4096)
    recipe = decide(cfg, steps_per_epoch=steps_per_epoch(IMAGENET_TRAIN, 4096), num_classes=1000)
    assert recipe.regime == "paper" and recipe.total_steps == 312 * 350
    assert {k: getattr(recipe.cfg, k) for k in PAPER} == dict(PAPER)


def test_recipe_paper_forces_the_papers_values_on_a_short_run():
    cfg = TrainConfig.for_model("efficientnet_b0", epochs=3, batch_size=32, img_size=64, recipe="paper")
    recipe = decide(cfg, steps_per_epoch=57, num_classes=4)
    assert {k: getattr(recipe.cfg, k) for k in PAPER} == dict(PAPER)
    assert all(why for _, why in recipe.decisions.values())


def test_a_short_run_gets_values_sized_to_its_length():
    cfg = TrainConfig.for_model("efficientnet_b0", epochs=3, batch_size=32, img_size=64)
    recipe = decide(cfg, steps_per_epoch=57, num_classes=4)
    c = recipe.cfg
    assert recipe.regime == "short" and recipe.total_steps == 171
    assert (c.optimizer, c.schedule, c.lr_per_256, c.label_smoothing, c.drop_path_rate) == \
        ("adamw", "cosine", 0.016, 0.0, 0.0)
    assert c.warmup_epochs == pytest.approx(0.15)  # 5% of the run, not 5 epochs
    assert c.bn_momentum == 0.1  # 1 / (2% of 171 steps), capped at torch's 0.1
    assert c.ema_decay == pytest.approx(1 - 1 / 17.1, abs=1e-6)  # a window of a tenth of the run
    assert (c.head_init, c.bn_mode, c.augment) == ("zero", "train", "none")
    assert c.crop_scale == pytest.approx(0.28)  # the paper's 8% at 224 px, sized to 64 px
    assert "capped" in recipe.decisions["warmup_epochs"][1]


def test_length_tied_values_move_smoothly_between_the_regimes():
    cfg = TrainConfig.for_model("efficientnet_b0", epochs=30, batch_size=64, img_size=224)
    c = decide(cfg, steps_per_epoch=100, num_classes=10).cfg  # 3,000 steps
    assert c.warmup_epochs == 1.5 and c.bn_momentum == pytest.approx(1 / 60, abs=1e-6)
    assert c.ema_decay == pytest.approx(1 - 1 / 300, abs=1e-6) and c.crop_scale == 0.08


def test_values_the_user_set_are_kept_and_marked():
    cfg = TrainConfig.for_model("efficientnet_b0", epochs=3, optimizer="rmsprop_tf", bn_momentum=0.05)
    recipe = decide(cfg, steps_per_epoch=20, num_classes=4)
    assert (recipe.cfg.optimizer, recipe.cfg.bn_momentum) == ("rmsprop_tf", 0.05)
    assert recipe.decisions["bn_momentum"] == (0.05, "set")
    assert decide(recipe.cfg, steps_per_epoch=20, num_classes=4).cfg == recipe.cfg  # idempotent


def test_fine_tuning_defaults_and_batchnorm_under_a_domain_shift():
    cfg = TrainConfig.for_model("efficientnet_lite0", epochs=2, pretrained="true", img_size=128)
    photo = InputStats(mean=(0.1, -0.05, 0.0), std=(1.0, 0.9, 1.1), grey=False, n=64)
    grey = InputStats(mean=(0.6, 0.8, 1.0), std=(0.5, 0.5, 0.5), grey=True, n=64)
    like = decide(cfg, steps_per_epoch=27, num_classes=4, stats=photo)
    unlike = decide(cfg, steps_per_epoch=27, num_classes=4, stats=grey)
    assert like.regime == unlike.regime == "fine-tune"
    assert (like.cfg.bn_mode, unlike.cfg.bn_mode) == ("frozen", "train")
    assert unlike.cfg.augment == "none" and "grey" in unlike.decisions["augment"][1]
    c = unlike.cfg
    assert (c.optimizer, c.schedule, c.head_init, c.head_lr_scale) == ("adamw", "cosine", "zero", 10.0)
    assert c.lr_per_256 == 0.004 and c.warmup_epochs == pytest.approx(0.1)


def test_input_statistics_tell_grey_images_from_colour_ones():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    g = torch.Generator().manual_seed(0)

    def normalised(raw):
        return (raw - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)

    grey = [(normalised(torch.rand(1, 8, 8, generator=g).expand(3, 8, 8)), 0) for _ in range(10)]
    colour = [(normalised(torch.rand(3, 8, 8, generator=g)), 0) for _ in range(10)]
    assert input_statistics(grey, mean, std).grey and input_statistics(grey, mean, std).shifted
    stats = input_statistics(colour, mean, std)
    assert not stats.grey and stats.n == 10 and len(stats.mean) == 3


def test_the_memory_layout_is_the_machines_fastest_unless_set():
    from effnet.train.fastpath import choose_training_settings

    cfg = TrainConfig.for_model("efficientnet_b0", epochs=3, batch_size=32, img_size=64)
    decided = decide(cfg, steps_per_epoch=57, num_classes=4)
    assert decided.cfg.channels_last is choose_training_settings(64, "cpu").channels_last
    assert "fastpath" in decided.decisions["channels_last"][1]
    kept = decide(TrainConfig.for_model("efficientnet_b0", epochs=3, channels_last=False), steps_per_epoch=57,
                  num_classes=4)
    assert kept.cfg.channels_last is False and "channels_last" not in kept.decisions


def test_recipe_short_fixes_the_studies_proxy_values_whatever_the_length():
    from effnet.train.recipe import SHORT_FIXED

    cfg = TrainConfig(model="efficientnet_b0", data="synthetic", epochs=400, recipe="short")
    recipe = decide(cfg, steps_per_epoch=1000, num_classes=4)  # a long run: auto would give the paper's
    c = recipe.cfg
    assert recipe.regime == "short (fixed)"
    assert (c.optimizer, c.schedule, c.lr, c.ema, c.bn_momentum, c.label_smoothing, c.drop_path_rate) == (
        SHORT_FIXED["optimizer"], SHORT_FIXED["schedule"], SHORT_FIXED["lr"], SHORT_FIXED["ema"],
        SHORT_FIXED["bn_momentum"], SHORT_FIXED["label_smoothing"], SHORT_FIXED["drop_path_rate"])
    assert c.head_init == "zero" and c.augment == "none"


def test_a_short_fine_tune_takes_a_smaller_batch_and_crops_that_keep_the_object():
    cfg = TrainConfig(epochs=2, pretrained="true")
    # 1,758 training images: 27 steps per epoch at batch 64, 54 at 32
    short = decide(cfg, steps_per_epoch=steps_per_epoch(1758, 64), num_classes=4, img_size=128, train_images=1758)
    assert short.cfg.batch_size == 32 and short.total_steps == 2 * steps_per_epoch(1758, 32)
    assert "fewer than 200" in short.decisions["batch_size"][1]
    assert short.cfg.crop_scale == 0.5 and "keep a small object in view" in short.decisions["crop_scale"][1]
    # the length-tied values follow the steps the run will really take
    assert short.cfg.ema_decay == pytest.approx(1 - 1 / (0.1 * short.total_steps), abs=1e-6)
    long = decide(TrainConfig(epochs=30, pretrained="true"), steps_per_epoch=steps_per_epoch(1758, 64), num_classes=4,
                  img_size=128, train_images=1758)
    assert long.cfg.batch_size == 64 and long.decisions["batch_size"][1] == "the default"
    kept = decide(TrainConfig(epochs=2, pretrained="true", batch_size=64), steps_per_epoch=27, num_classes=4)
    assert kept.cfg.batch_size == 64 and kept.decisions["batch_size"] == (64, "set")
    scratch = decide(TrainConfig(epochs=2), steps_per_epoch=27, num_classes=4, img_size=128)
    assert scratch.cfg.batch_size == 64 and scratch.cfg.crop_scale < 0.5  # from scratch: the paper's crops, scaled
