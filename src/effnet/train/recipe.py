"""The recipe a run trains with: the paper's values where they fit the run, values that learn where
they do not, each with the reason it was chosen.

The paper's recipe (:data:`PAPER`) was tuned for 350 epochs of ImageNet from scratch, about 110,000
optimizer steps at batch 4096. Several of its values are sized to that length: 5 warm-up epochs,
an EMA of the weights with decay 0.9999 (a window of 10,000 steps), BatchNorm momentum 0.01 (running
statistics averaged over about 100 steps), a step decay of x0.97 every 2.4 epochs (the learning
rate reaches a tenth of its peak only after 180 epochs), AutoAugment, label smoothing and
stochastic depth against over-fitting a long run, and a classifier initialisation sized for 1000
classes. On a run of a few hundred steps the same values leave the learning rate below its peak,
the running statistics and the EMA near their starting values, and the network under-fitted.

:func:`decide` fills every recipe key a config leaves ``None`` (:data:`DECIDED_KEYS`); a key the
user set is kept. Three regimes, and a fixed recipe:

* ``paper``: ``recipe="paper"``, or a long run from scratch (at least :data:`LONG_RUN_EPOCHS`
  epochs and :data:`LONG_RUN_STEPS` steps). The paper's values, except that the continuous ones
  follow the run's length by rules that give exactly the paper's values on an ImageNet-scale run
  (warm-up at most :data:`WARMUP_FRACTION` of the run, EMA window a tenth of the run, BatchNorm
  window a fiftieth, crop scale sized to the resolution); ``recipe="paper"`` takes them as they are.
* ``short``: a shorter run from scratch. AdamW at the paper's 0.016 per 256 images with a cosine
  schedule, no label smoothing and no stochastic depth, a zero-initialised classifier, crop and flip
  without AutoAugment, and the length-tied warm-up, EMA and BatchNorm momentum.
* ``fine-tune``: pretrained weights. AdamW at a quarter of that rate with the classifier at
  :data:`FINETUNE_HEAD_LR_SCALE` times it, a short warm-up, cosine, a zero-initialised classifier,
  crop and flip; BatchNorm statistics frozen (inference mode, as Keras's transfer-learning guide
  does) when the images look like the checkpoint's training data, and re-estimated when their
  statistics differ (grey images, or normalised channel means and spreads far from 0 and 1).
* ``recipe="short"``: :data:`SHORT_FIXED` whatever the run's length (the proxy recipe the studies
  train their candidates with), the rest as for the run's regime.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from .config import DECIDED_KEYS, DEFAULT_BATCH, PAPER, TrainConfig

#: ``recipe="short"``: fixed values that learn in a few hundred steps whatever the run's length (the
#: studies' and searches' proxy recipe, ``effnet.search.recipes``): AdamW at 2e-3 with a cosine
#: schedule, BatchNorm momentum 0.1, no EMA, label smoothing or stochastic depth, a zero-initialised
#: classifier, crop and flip only.
SHORT_FIXED: Mapping[str, Any] = {"bn_momentum": 0.1, "drop_path_rate": 0.0, "optimizer": "adamw", "lr": 2e-3,
                                  "schedule": "cosine", "ema": False, "label_smoothing": 0.0}

LONG_RUN_EPOCHS = 100
LONG_RUN_STEPS = 20_000
WARMUP_FRACTION = 0.05  # warm-up: at most this fraction of the run
EMA_WINDOW_FRACTION = 0.1  # EMA decay 1 - 1/(fraction * steps), at most the paper's
BN_WINDOW_FRACTION = 0.02  # BatchNorm momentum 1/(fraction * steps), between the paper's and torch's 0.1
BN_MOMENTUM_MAX = 0.1
PAPER_CROP_SIZE = 224  # the resolution the paper's 8% smallest crop was set at
FINETUNE_LR_PER_256 = 0.004
FINETUNE_HEAD_LR_SCALE = 10.0
#: A fine-tune shorter than this many steps at :data:`DEFAULT_BATCH` trains at :data:`FINETUNE_SHORT_BATCH`.
FINETUNE_MIN_STEPS = 200
FINETUNE_SHORT_BATCH = 32
#: Fine-tuning's smallest crop, as a fraction of the image's area.
FINETUNE_CROP_SCALE = 0.5
#: Normalised input statistics beyond these count as a domain unlike the checkpoint's.
SHIFT_MEAN = 0.5
SHIFT_STD = (0.5, 2.0)


@dataclass(frozen=True)
class InputStats:
    """Per-channel mean and standard deviation of normalised input images, and whether they are grey."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    grey: bool
    n: int

    @property
    def shifted(self) -> bool:
        """Whether these images differ from those the normalisation was fitted to."""
        return self.grey or any(abs(m) > SHIFT_MEAN for m in self.mean) or \
            any(not SHIFT_STD[0] <= s <= SHIFT_STD[1] for s in self.std)

    def describe(self) -> str:
        mean = ", ".join(f"{m:+.2f}" for m in self.mean)
        std = ", ".join(f"{s:.2f}" for s in self.std)
        return f"{'grey' if self.grey else 'colour'} images, normalised channel means {mean}, stds {std} (n={self.n})"


def input_statistics(dataset: Sequence, mean: Sequence[float], std: Sequence[float], n: int = 64) -> InputStats:
    """:class:`InputStats` of up to ``n`` images spread evenly over ``dataset`` (its transform applied).

    ``mean``/``std`` are the normalisation the transform used; a 3-channel image counts as grey
    when its unnormalised channels agree within 1/100 on average.
    """
    import torch

    total = len(dataset)
    if total == 0:
        raise ValueError("cannot measure the input statistics of an empty data set")
    picks = sorted({int(i * total / min(n, total)) for i in range(min(n, total))})
    images = torch.stack([torch.as_tensor(dataset[i][0]).float() for i in picks])
    channels = images.shape[1]
    m = images.mean(dim=(0, 2, 3))
    s = images.std(dim=(0, 2, 3))
    grey = channels == 1
    if channels == 3:
        raw = images * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
        spread = (raw[:, 0] - raw[:, 1]).abs().mean() + (raw[:, 0] - raw[:, 2]).abs().mean()
        grey = float(spread) < 0.02
    return InputStats(tuple(float(v) for v in m), tuple(float(v) for v in s), bool(grey), len(picks))


@dataclass(frozen=True)
class Recipe:
    """A config with every recipe key decided, and why: ``decisions[key] = (value, reason)``."""

    cfg: TrainConfig
    regime: str
    total_steps: int
    decisions: dict[str, tuple[Any, str]] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The decisions as a JSON/YAML-friendly mapping (saved in the run's config)."""
        return {"total_steps": self.total_steps,
                **{k: {"value": v, "why": why} for k, (v, why) in self.decisions.items()}}


def total_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    steps = cfg.epochs * steps_per_epoch
    return min(steps, cfg.max_steps) if cfg.max_steps is not None else steps


def regime_of(cfg: TrainConfig, steps: int, fine_tune: bool) -> tuple[str, str]:
    """The regime's name and the reason for it."""
    if cfg.recipe == "paper":
        return "paper", "recipe=paper asks for the paper's values"
    if cfg.recipe == "short":
        return "short (fixed)", "recipe=short asks for the fixed short-run values, whatever the run's length"
    if fine_tune:
        return "fine-tune", "pretrained weights: fine-tuning defaults"
    if cfg.epochs >= LONG_RUN_EPOCHS and steps >= LONG_RUN_STEPS:
        return "paper", (f"a long run from scratch ({cfg.epochs} epochs, {steps} steps; the paper's recipe "
                         f"applies from {LONG_RUN_EPOCHS} epochs and {LONG_RUN_STEPS} steps)")
    return "short", (f"a short run from scratch ({cfg.epochs} epochs, {steps} steps; the paper's recipe is "
                     f"sized for 350 ImageNet epochs, used here from {LONG_RUN_EPOCHS} epochs and "
                     f"{LONG_RUN_STEPS} steps)")


def decide(cfg: TrainConfig, *, steps_per_epoch: int, num_classes: int, img_size: int | None = None,
           fine_tune: bool | None = None, stats: InputStats | None = None, train_images: int | None = None,
           world_size: int = 1) -> Recipe:
    """Fill the recipe keys ``cfg`` leaves ``None`` for a run of ``steps_per_epoch`` steps per epoch
    (at ``cfg``'s batch, or :data:`DEFAULT_BATCH` when the batch is undecided).

    ``fine_tune`` defaults to whether ``cfg.pretrained`` is set; ``stats`` (from
    :func:`input_statistics`) lets the augmentation and, when fine-tuning, the BatchNorm mode
    follow the data; without it the images count as colour photographs like ImageNet's.
    ``train_images`` (and ``world_size``) give the exact step count when the batch is decided here.
    """
    if steps_per_epoch < 1:
        raise ValueError("an epoch must have at least one optimizer step (is the data set smaller than a batch?)")
    fine_tune = cfg.pretrained is not None if fine_tune is None else fine_tune
    size = img_size or cfg.img_size or PAPER_CROP_SIZE
    steps = total_steps(cfg, steps_per_epoch)
    regime, regime_why = regime_of(cfg, steps, fine_tune)
    forced = cfg.recipe == "paper"
    chosen: dict[str, tuple[Any, str]] = {}

    def pick(key: str, value: Any, why: str) -> None:
        chosen[key] = (value, why)

    batch_decision = None
    if cfg.batch_size is None:
        batch, why = DEFAULT_BATCH, "the default"
        if regime == "fine-tune" and steps < FINETUNE_MIN_STEPS:
            batch = FINETUNE_SHORT_BATCH
            why = (f"a short fine-tune: {steps} steps at batch {DEFAULT_BATCH}, fewer than {FINETUNE_MIN_STEPS}; "
                   f"batch {batch} doubles the updates (on small data a short run is short of steps, not of images per "
                   "step)")
            steps_per_epoch = (_epoch_steps(train_images, batch, world_size) if train_images
                               else steps_per_epoch * DEFAULT_BATCH // batch)
            steps = total_steps(replace(cfg, batch_size=batch), max(steps_per_epoch, 1))
        batch_decision = (batch, why)

    paper = regime == "paper"
    # --- optimizer and schedule -------------------------------------------------------------
    if paper:
        pick("optimizer", PAPER["optimizer"], "the paper's RMSProp")
        pick("lr_per_256", PAPER["lr_per_256"], "the paper's 0.016 per 256 images")
        pick("schedule", PAPER["schedule"], "the paper's x0.97 every 2.4 epochs")
        pick("label_smoothing", PAPER["label_smoothing"], "the paper's")
        pick("drop_path_rate", PAPER["drop_path_rate"], "the paper's")
    else:
        pick("optimizer", "adamw", "fine-tuning: AdamW, as common transfer practice" if fine_tune
             else "a short run: AdamW learns in few steps; the paper's RMSProp was tuned for a long run")
        pick("schedule", "cosine", "anneals to zero within the run; the paper's x0.97 every 2.4 epochs barely "
                                   "decays in a short one")
        if fine_tune:
            pick("lr_per_256", FINETUNE_LR_PER_256, "fine-tuning: a quarter of the from-scratch rate keeps the "
                                                    "pretrained features")
            pick("label_smoothing", PAPER["label_smoothing"], "the paper's")
        else:
            pick("lr_per_256", PAPER["lr_per_256"], "the paper's 0.016 per 256 images")
            pick("label_smoothing", 0.0, "a short run under-fits; smoothing regularises long runs")
        pick("drop_path_rate", 0.0, "a short run under-fits; stochastic depth regularises long runs")
    if fine_tune and not forced:
        pick("head_lr_scale", FINETUNE_HEAD_LR_SCALE, "the new classifier starts from nothing and learns faster "
                                                      "than the pretrained layers")
    else:
        pick("head_lr_scale", PAPER["head_lr_scale"], "one learning rate for every layer, as in the paper")

    # --- length-tied values -----------------------------------------------------------------
    if forced:
        pick("warmup_epochs", PAPER["warmup_epochs"], "the paper's")
        pick("ema_decay", PAPER["ema_decay"], "the paper's")
        pick("bn_momentum", PAPER["bn_momentum"], "the paper's (TensorFlow 0.99)")
        pick("crop_scale", PAPER["crop_scale"], "the paper's 8% smallest crop")
    else:
        warmup = min(PAPER["warmup_epochs"], WARMUP_FRACTION * cfg.epochs)
        pick("warmup_epochs", round(warmup, 6),
             "the paper's 5 epochs" if warmup == PAPER["warmup_epochs"]
             else f"the paper's 5 epochs capped at {WARMUP_FRACTION:.0%} of the {cfg.epochs}-epoch run")
        window = EMA_WINDOW_FRACTION * steps
        decay = min(PAPER["ema_decay"], 1.0 - 1.0 / window) if window > 1 else 0.0
        pick("ema_decay", round(decay, 6),
             "the paper's 0.9999" if decay == PAPER["ema_decay"]
             else f"averages over about {EMA_WINDOW_FRACTION:.0%} of the run's {steps} steps "
                  f"(the paper's 0.9999 averages over 10,000)")
        momentum = min(BN_MOMENTUM_MAX, max(PAPER["bn_momentum"], 1.0 / (BN_WINDOW_FRACTION * steps)))
        pick("bn_momentum", round(momentum, 6),
             "the paper's 0.01" if momentum == PAPER["bn_momentum"]
             else f"running statistics average over the last {1 / momentum:.0f} steps (the paper's 0.01 averages "
                  f"over 100, more than {BN_WINDOW_FRACTION:.0%} of this {steps}-step run)")
        from ..data.transforms import crop_scale_for  # lazy: torchvision only when deciding

        crop = round(crop_scale_for(size), 4)
        if regime == "fine-tune":
            crop = max(crop, FINETUNE_CROP_SCALE)
            pick("crop_scale", crop, f"fine-tuning: crops of {crop:.0%} to 100% of the image keep a small object in view; "
                                     "the pretrained features already span scales, and the paper's 8% is a "
                                     "from-scratch ImageNet augmentation")
        else:
            pick("crop_scale", crop,
                 "the paper's 8%" if crop == PAPER["crop_scale"]
                 else f"the paper's 8% at {PAPER_CROP_SIZE} px, scaled to {size} px so a crop keeps detail")

    # --- classifier, BatchNorm mode, augmentation ------------------------------------------
    if forced or (paper and num_classes == 1000):
        pick("head_init", "paper", "the paper's initialisation, sized for 1000 classes")
    else:
        pick("head_init", "zero", f"a new classifier for {num_classes} classes starts at zero (first loss "
                                  f"ln {num_classes}); the paper's initialisation is sized for 1000")
    if fine_tune and not forced:
        if stats is None:
            pick("bn_mode", "frozen", "fine-tuning: the pretrained statistics are kept (inference-mode BatchNorm)")
        elif stats.shifted:
            pick("bn_mode", "train", f"fine-tuning on data unlike the checkpoint's ({stats.describe()}): "
                                     "statistics are re-estimated")
        else:
            pick("bn_mode", "frozen", f"fine-tuning on data like the checkpoint's ({stats.describe()}): the "
                                      "pretrained statistics are kept (inference-mode BatchNorm)")
    else:
        pick("bn_mode", "train", "statistics follow the data, as in the paper")
    if forced:
        pick("augment", PAPER["augment"], "the paper's")
    elif stats is not None and stats.grey:
        pick("augment", "none", "grey images: AutoAugment's ImageNet policy (colour, solarise, posterise) was "
                                "searched on photographs; crop and flip only")
    elif paper:
        pick("augment", PAPER["augment"], "the paper's, for a long run")
    else:
        pick("augment", "none", "a short run under-fits; AutoAugment's ImageNet policy is tuned for long runs; "
                                "crop and flip only")

    if cfg.recipe == "short":
        fixed = "recipe=short: the fixed short-run value"
        for key in ("optimizer", "schedule", "label_smoothing", "drop_path_rate", "bn_momentum"):
            pick(key, SHORT_FIXED[key], fixed)
        pick("head_init", "zero", fixed)
        pick("augment", "none", fixed)
    decisions = {}
    updates = {}
    if batch_decision is not None:
        updates["batch_size"] = batch_decision[0]
        decisions["batch_size"] = batch_decision
    else:
        decisions["batch_size"] = (cfg.batch_size, "set")
    if cfg.recipe == "short":
        if cfg.lr is None:
            updates["lr"] = SHORT_FIXED["lr"]
        updates["ema"] = SHORT_FIXED["ema"]
    for key in DECIDED_KEYS:
        given = getattr(cfg, key)
        if given is None:
            updates[key] = chosen[key][0]
            decisions[key] = chosen[key]
        else:
            decisions[key] = (given, "set")
    decisions = {"regime": (regime, regime_why), **decisions}
    if cfg.channels_last is None:  # speed only: the layout does not change what the network computes
        from .fastpath import choose_training_settings  # lazy: as crop_scale_for

        fast = choose_training_settings(size, "cuda" if cfg.device == "cuda" else "cpu")
        updates["channels_last"] = fast.channels_last
        decisions["channels_last"] = (fast.channels_last, next(r for r in fast.reasons if r.startswith("channels_last"))
                                      + " (effnet.train.fastpath)")
    return Recipe(cfg=replace(cfg, **updates), regime=regime, total_steps=steps, decisions=decisions)


def steps_per_epoch(train_images: int, batch_size: int, world_size: int = 1) -> int:
    """Optimizer steps per epoch, as the trainer counts them: each process takes ``ceil(n / world)``
    images; a data set smaller than one batch trains on all of it per step."""
    per_rank = math.ceil(train_images / world_size)
    per_rank_batch = min(batch_size // world_size, per_rank)
    return per_rank // max(per_rank_batch, 1)


_epoch_steps = steps_per_epoch  # for decide(), whose argument of that name hides it


def describe(recipe: Recipe) -> list[str]:
    """One line per decision, ``key value  (why)``; the caller prints them."""
    lines = []
    for key, (value, why) in recipe.decisions.items():
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<16}{shown:<12}{why}")
    return lines
