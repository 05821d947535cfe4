"""The training loop: ``fit`` (a full run with a run dir), ``quick_train`` (no files, for search
trials) and ``evaluate``."""
from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..arch import Network, cost
from ..fsutil import atomic_savefig, atomic_write_text
from . import checkpoint as ckpt
from . import distributed
from .config import TrainConfig
from .ema import build_ema
from .memory import enable_grad_checkpointing
from .optim import build_optimizer, build_scheduler
from .sampling import ResumableSampler, SeededDataset, eval_loader, train_loader


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)


# ----- runtime ---------------------------------------------------------------------------

def resolve_device(cfg: TrainConfig, local_rank: int = 0) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("device cuda was asked for but CUDA is not available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 autocast
    still works but is emulated and slow. Uses torch's own (private) capability probe."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for an ``amp`` setting on ``device`` (``None``: full precision)."""
    if amp == "none":
        return None
    if device.type == "cuda":
        if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
            if not torch.cuda.is_bf16_supported():
                raise ValueError("this GPU does not support bfloat16; use amp=fp16")
            return torch.bfloat16
        return torch.float16
    if amp == "fp16":
        raise ValueError("amp=fp16 needs CUDA; on CPU use amp=bf16")
    if amp == "auto":
        return torch.bfloat16 if cpu_supports_bf16() else None
    return torch.bfloat16


@contextlib.contextmanager
def _runtime(cfg: TrainConfig) -> Iterator[None]:
    """Thread count and deterministic mode for the run; the caller's settings come back afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    cudnn_benchmark = torch.backends.cudnn.benchmark
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.backends.cudnn.benchmark = cudnn_benchmark


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


# ----- evaluation ------------------------------------------------------------------------

def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 64, *, device: torch.device | None = None,
             amp_dtype: torch.dtype | None = None, channels_last: bool = False,
             num_classes: int | None = None, workers: int = 0, predictions: bool = False) -> dict[str, Any]:
    """Top-1, top-5 (5 or more classes), per-class accuracy, confusion matrix and mean cross-entropy.

    ``per_class[k]`` is the accuracy on images of class ``k`` (``None`` when the set has none);
    ``confusion[true][predicted]`` counts images. With ``predictions=True`` the result also holds
    ``pred`` and ``target``: the predicted and true class of every image, in the data set's order.
    The model's train/eval mode is restored.
    """
    if len(dataset) == 0:
        raise ValueError("the evaluation set is empty")
    model = _unwrap(model)
    device = device or next((p.device for p in model.parameters()), torch.device("cpu"))
    classes = num_classes or getattr(model, "num_classes", 0) or None
    was_training = model.training
    model.eval()
    confusion: torch.Tensor | None = None
    loss_sum, top5_hits, n = 0.0, 0, 0
    preds: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    loader = eval_loader(dataset, batch_size, workers=workers, pin_memory=device.type == "cuda")
    try:
        with torch.inference_mode():
            for x, y in loader:
                x = x.to(device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits = model(x)
                logits = logits.float().cpu()
                y = torch.as_tensor(y, dtype=torch.long)
                if classes is None:
                    classes = logits.shape[1]
                if confusion is None:
                    confusion = torch.zeros(classes, classes, dtype=torch.long)
                if int(y.max()) >= classes:
                    raise ValueError(f"label {int(y.max())} is outside the model's {classes} classes")
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                pred = logits.argmax(1)
                if predictions:
                    preds.append(pred)
                    targets.append(y)
                confusion += torch.bincount(y * classes + pred, minlength=classes * classes).view(classes, classes)
                if classes >= 5:
                    top5_hits += int((logits.topk(5, dim=1).indices == y[:, None]).any(1).sum())
                n += len(y)
    finally:
        model.train(was_training)
    assert confusion is not None
    support = confusion.sum(1)
    correct = confusion.diag()
    out: dict[str, Any] = {
        "top1": float(correct.sum()) / n,
        "per_class": [float(c) / float(s) if s else None for c, s in zip(correct.tolist(), support.tolist())],
        "confusion": confusion.tolist(),
        "loss": loss_sum / n,
        "n": n,
    }
    if classes >= 5:
        out["top5"] = top5_hits / n
    if predictions:
        out["pred"] = torch.cat(preds).tolist()
        out["target"] = torch.cat(targets).tolist()
    return out


# ----- the trainer -----------------------------------------------------------------------

class Trainer:
    """One model, its optimizer, schedule, EMA and data order; trains step by step.

    Used by ``fit`` (with checkpoints and logs) and ``quick_train`` (without). ``batch_size`` in the
    config is the global batch; each of ``world_size`` processes takes its share.
    """

    def __init__(self, cfg: TrainConfig, model: nn.Module, train_set: Dataset, *, device: torch.device,
                 info: distributed.DistInfo | None = None, progress: bool = False) -> None:
        self.cfg = cfg
        self.info = info or distributed.DistInfo()
        self.device = device
        self.progress = progress and self.info.is_main
        self.amp_dtype = autocast_dtype(cfg.amp, device)

        world = self.info.world_size
        if cfg.batch_size % world:
            raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {world} processes")
        if len(train_set) == 0:
            raise ValueError("the training set is empty")
        self.train_set = SeededDataset(train_set, cfg.seed)
        self.sampler = ResumableSampler(self.train_set, num_replicas=world, rank=self.info.rank, seed=cfg.seed)
        # a data set smaller than one batch trains on all of it per step
        self.per_rank_batch = min(cfg.batch_size // world, self.sampler.samples_per_rank)
        self.global_batch = self.per_rank_batch * world
        if self.global_batch != cfg.batch_size:
            self.cfg = cfg = replace(cfg, batch_size=self.global_batch, lr=cfg.peak_lr() * self.global_batch / cfg.batch_size)
        self.steps_per_epoch = self.sampler.samples_per_rank // self.per_rank_batch

        model = model.to(device)
        if cfg.grad_checkpointing:
            enable_grad_checkpointing(model)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.sync_bn and self.info.enabled:
            if device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            else:
                model = distributed.convert_global_batchnorm(model)
        self.model = model
        self.ema = build_ema(model, cfg.ema_decay) if cfg.ema else None
        self.net: nn.Module = model
        if self.info.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(model, device_ids=ids)

        self.optimizer = build_optimizer(cfg, model)
        total = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        self.total_steps = total
        self.scheduler = build_scheduler(cfg, self.optimizer, self.steps_per_epoch, total)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

        self.step = 0  # optimizer steps taken
        self.epoch = 0  # current epoch (0-based)
        self.batch_in_epoch = 0  # batches of the current epoch done
        self.sums = {"loss": 0.0, "correct": 0, "seen": 0}  # current epoch's running train metrics
        self.train_time_s = 0.0

    # --- state ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "ema_n_averaged": self.ema.n_averaged.clone() if self.ema is not None else None,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "sums": dict(self.sums),
            "train_time_s": self.train_time_s,
            "world_size": self.info.world_size,
            "global_batch": self.global_batch,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("world_size") != self.info.world_size or state.get("global_batch") != self.global_batch:
            raise ValueError(f"the checkpoint was written by {state.get('world_size')} process(es) at global batch "
                             f"{state.get('global_batch')}; resume with the same layout "
                             f"(now {self.info.world_size} at {self.global_batch})")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema_n_averaged") is not None:
            self.ema.n_averaged.copy_(state["ema_n_averaged"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.sums = dict(state["sums"])
        self.train_time_s = float(state["train_time_s"])

    # --- training ---------------------------------------------------------------------
    def set_train_mode(self) -> None:
        self.net.train()
        for m in getattr(self.model, "frozen_modules", ()):
            m.eval()  # frozen parts keep their BatchNorm statistics

    def done(self) -> bool:
        return self.epoch >= self.cfg.epochs or (self.cfg.max_steps is not None and self.step >= self.cfg.max_steps)

    def train_epoch(self) -> Iterator[int]:
        """Train the rest of the current epoch, yielding after every optimizer step (the step count).

        On return the epoch is complete (``epoch`` advanced) unless ``max_steps`` stopped it.
        """
        cfg = self.cfg
        self.set_train_mode()
        self.train_set.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * self.per_rank_batch)
        loader = train_loader(self.train_set, self.sampler, self.per_rank_batch, seed=cfg.seed, epoch=self.epoch,
                              workers=cfg.workers, pin_memory=self.device.type == "cuda")
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.steps_per_epoch * self.global_batch, initial=self.batch_in_epoch * self.global_batch,
                       unit="img", desc=f"epoch {self.epoch + 1}/{cfg.epochs}", leave=False, dynamic_ncols=True,
                       file=sys.stderr)
        try:
            for x, y in loader:
                if self.done():
                    return
                start = time.perf_counter()
                loss, correct = self._step(x, y)
                self.train_time_s += time.perf_counter() - start
                self.sums["loss"] += loss * len(y)
                self.sums["correct"] += correct
                self.sums["seen"] += len(y)
                self.step += 1
                self.batch_in_epoch += 1
                if bar is not None:
                    bar.update(self.global_batch)
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}", refresh=False)
                yield self.step
        finally:
            if bar is not None:
                bar.close()
        if self.batch_in_epoch >= self.steps_per_epoch:
            self.epoch += 1
            self.batch_in_epoch = 0

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        cfg = self.cfg
        x = x.to(self.device, non_blocking=True)
        y = torch.as_tensor(y).to(self.device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            logits = self.net(x)
        loss = self.criterion(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RuntimeError(f"training diverged: the loss is {value} at step {self.step + 1} "
                               "(lower the learning rate or turn mixed precision off)")
        correct = int((logits.detach().argmax(1) == y).sum())
        return value, correct

    def epoch_train_metrics(self) -> dict[str, float]:
        seen = distributed.all_reduce_mean(self.info, float(self.sums["seen"])) * self.info.world_size
        loss = distributed.all_reduce_mean(self.info, self.sums["loss"]) * self.info.world_size
        correct = distributed.all_reduce_mean(self.info, float(self.sums["correct"])) * self.info.world_size
        return {"train_loss": loss / max(seen, 1), "train_acc": correct / max(seen, 1)}

    def evaluate(self, dataset: Dataset, ema: bool = False, predictions: bool = False) -> dict[str, Any]:
        model = self.ema.module if ema else self.model
        return evaluate(model, dataset, self.cfg.eval_batch_size, device=self.device, amp_dtype=self.amp_dtype,
                        channels_last=self.cfg.channels_last, predictions=predictions)


# ----- model and data set-up ------------------------------------------------------------

def pretrained_arg(value: str | None) -> bool | str:
    if value is None or value.lower() in ("false", "no", "0", ""):
        return False
    if value.lower() in ("true", "yes", "1"):
        return True
    return value


def build_model(cfg: TrainConfig, num_classes: int | None = None) -> nn.Module:
    """The config's model (with its pretrained weights), a head for ``num_classes``, frozen stages."""
    from ..factory import create_model

    model = create_model(cfg.model, num_classes=num_classes, in_chans=cfg.in_chans,
                         pretrained=pretrained_arg(cfg.pretrained), drop_rate=cfg.dropout,
                         drop_path_rate=cfg.drop_path_rate, padding=cfg.padding, bn_eps=cfg.bn_eps,
                         bn_momentum=cfg.bn_momentum)
    freeze_stages(model, cfg.freeze_stages)
    return model


def freeze_stages(model: nn.Module, n: int) -> None:
    """Freeze the stem and the first ``n`` stages (weights and BatchNorm statistics)."""
    if n <= 0:
        return
    stages = list(model.stages)
    if n > len(stages):
        raise ValueError(f"freeze_stages {n} is more than the model's {len(stages)} stages")
    frozen = [model.stem, model.stem_pool, *stages[:n]]
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    model.frozen_modules = frozen


def _preprocessing_for(model: nn.Module, cfg: TrainConfig, img_size: int):
    from ..weights.meta import Preprocessing

    pre = getattr(model, "preprocessing", None) or Preprocessing(resolution=img_size)
    data = pre.to_dict()
    data["resolution"] = img_size
    if cfg.in_chans == 1 and len(pre.mean) == 3:  # grayscale input: one normalisation channel
        data["mean"] = [sum(pre.mean) / 3]
        data["std"] = [sum(pre.std) / 3]
    return Preprocessing.from_dict(data)


def load_data(cfg: TrainConfig, preprocessing, img_size: int):
    from ..data import load_splits

    return load_splits(cfg.data, img_size=img_size, preprocessing=preprocessing, task=cfg.task, augment=cfg.augment,
                       seed=cfg.seed, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                       skip_bad_images=cfg.skip_bad_images, limit_per_class=cfg.limit_per_class)


def _img_size(cfg: TrainConfig) -> int:
    from ..factory import resolve_description

    return cfg.img_size or resolve_description(cfg.model).resolution


# ----- quick_train -----------------------------------------------------------------------

def quick_train(desc_or_model: Network | nn.Module | str, splits, *, img_size: int, epochs: int, batch_size: int = 32,
                lr: float | None = None, seed: int = 0, progress: bool = False, max_steps: int | None = None,
                on_epoch: Callable[[int, float], None] | None = None, predictions: bool = False,
                **overrides: Any) -> dict[str, Any]:
    """Train on ``splits`` without writing files; returns validation metrics, time and cost.

    The recipe is ``TrainConfig.for_model``'s, with the warm-up shortened to at most a fifth of the
    run and the machine's fastest settings (``effnet.train.fastpath``); ``overrides`` set any other config key. The returned dict has ``val_acc`` (final weights),
    ``val_acc_ema``, ``val_loss``, ``train_loss``, ``train_time_s``, ``steps``, ``images_per_s``,
    ``params`` and ``macs`` of the trained model (the description with the data set's classes;
    multiply-adds at ``img_size``, from ``effnet.arch.cost``).

    ``on_epoch(epoch, val_acc)``, when given, is called after every epoch with the validation
    accuracy of the current weights; it may raise (a pruner's ``TrialPruned``) to stop the run.
    ``predictions=True`` adds ``val_pred``/``val_target`` and, where ``splits.test`` has images,
    ``test_acc``/``test_pred``/``test_target`` (final weights; per image, in the split's order).
    """
    from ..factory import create_model, resolve_description

    model = desc_or_model if isinstance(desc_or_model, nn.Module) else None
    desc = model.desc if model is not None else resolve_description(desc_or_model)
    base = TrainConfig.for_model(desc)
    from .fastpath import choose_training_settings  # the machine's fastest settings; overrides win

    settings = choose_training_settings(img_size, "cuda" if torch.cuda.is_available() else "cpu").config_overrides()
    settings.update({"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "img_size": img_size,
                     "max_steps": max_steps, "warmup_epochs": min(base.warmup_epochs, epochs / 5)})
    settings.update(overrides)
    cfg = replace(base, **settings)
    if model is None:
        # built after the config so that its model settings (BatchNorm, dropout, ...) take effect
        torch.manual_seed(seed)
        model = create_model(desc, num_classes=splits.num_classes, drop_rate=cfg.dropout,
                             drop_path_rate=cfg.drop_path_rate, padding=cfg.padding, bn_eps=cfg.bn_eps,
                             bn_momentum=cfg.bn_momentum)
    elif model.num_classes != splits.num_classes:
        model.reset_classifier(splits.num_classes)
    desc = model.desc
    with _runtime(cfg):
        torch.manual_seed(seed)
        device = resolve_device(cfg)
        trainer = Trainer(cfg, model, splits.train, device=device, progress=progress)
        raw = None
        while not trainer.done():
            for _ in trainer.train_epoch():
                pass
            if on_epoch is not None:
                raw = trainer.evaluate(splits.val, predictions=predictions)
                on_epoch(trainer.epoch, float(raw["top1"]))
            if trainer.batch_in_epoch:  # stopped by max_steps inside an epoch
                break
        if raw is None:
            raw = trainer.evaluate(splits.val, predictions=predictions)
        ema = trainer.evaluate(splits.val, ema=True) if trainer.ema is not None else None
        train = trainer.epoch_train_metrics() if trainer.sums["seen"] else {"train_loss": float("nan")}
        scored: dict[str, Any] = {}
        if predictions:
            scored = {"val_pred": raw["pred"], "val_target": raw["target"]}
            if len(splits.test):
                test = trainer.evaluate(splits.test, predictions=True)
                scored.update(test_acc=test["top1"], test_pred=test["pred"], test_target=test["target"])
    c = cost(desc, img_size)
    return {
        **scored,
        "val_acc": raw["top1"],
        "val_loss": raw["loss"],
        "val_acc_ema": ema["top1"] if ema else None,
        "train_loss": train["train_loss"],
        "train_time_s": trainer.train_time_s,
        "steps": trainer.step,
        "images_per_s": trainer.step * trainer.global_batch / max(trainer.train_time_s, 1e-9),
        "params": c.params,
        "macs": c.macs,
        "img_size": img_size,
        "batch_size": trainer.global_batch,
    }


# ----- fit -------------------------------------------------------------------------------

CSV_COLUMNS = ["epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_top1", "val_top5",
               "ema_val_loss", "ema_val_top1", "ema_val_top5"]


def default_run_dir(cfg: TrainConfig) -> Path:
    model = Path(cfg.model).stem if cfg.model.endswith(".json") else cfg.model
    data = Path(cfg.data).name or "data"
    return Path("runs") / f"{model}-{data}-{datetime.now():%Y%m%d-%H%M%S}"


def fit(cfg: TrainConfig, progress: bool = True, *, resume: bool = False, splits=None) -> RunResult:
    """Train with a run dir: config, checkpoints, metrics CSV/JSON, TensorBoard logs, confusion matrix.

    With ``resume=True`` the run continues from the newest checkpoint in ``cfg.out`` exactly as if
    it had not stopped. ``splits`` (an ``effnet.data.Splits``) replaces loading ``cfg.data``.
    Under ``torchrun`` every process calls ``fit``; only rank 0 writes files.
    """
    with _runtime(cfg):
        device = resolve_device(cfg, distributed.from_env().local_rank)
        info = distributed.init(device)
        try:
            return _fit(cfg, progress, resume, splits, device, info)
        finally:
            distributed.shutdown(info)


def _fit(cfg: TrainConfig, progress: bool, resume: bool, splits, device: torch.device,
         info: distributed.DistInfo) -> RunResult:
    main = info.is_main
    say = _printer(progress and main)
    if resume and not cfg.out:
        raise ValueError("resume needs the run dir (out)")
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    run_dir = Path(distributed.broadcast_object(info, str(run_dir)))
    latest = ckpt.latest_checkpoint(run_dir) if run_dir.exists() else None
    if resume and latest is None:
        raise ValueError(f"{run_dir} has no checkpoint to resume from")
    if not resume and latest is not None:
        raise ValueError(f"{run_dir} already holds a run; resume it with --resume {run_dir} or choose another --out")
    cfg = replace(cfg, out=str(run_dir))
    img_size = _img_size(cfg)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    preprocessing = _preprocessing_for(model, cfg, img_size)
    if splits is None:
        splits = load_data(cfg, preprocessing, img_size)
    class_names = list(splits.class_names)
    head_classes = list(getattr(model, "preprocessing", None).class_names) if hasattr(model, "preprocessing") else []
    if model.num_classes != len(class_names) or (head_classes and head_classes != class_names):
        model.reset_classifier(len(class_names))  # a new head unless it was trained for these classes
    model.preprocessing = replace(preprocessing, class_names=tuple(class_names))
    torch.manual_seed(cfg.seed + info.rank)  # per-process dropout and stochastic-depth streams

    trainer = Trainer(cfg, model, splits.train, device=device, info=info, progress=progress)
    cfg = trainer.cfg
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir)
    if resume:
        state = ckpt.read_state(latest)
        ckpt.load_weights(trainer.model, latest / "model.safetensors")
        if trainer.ema is not None:
            ckpt.load_weights(trainer.ema.module, latest / "ema.safetensors")
        trainer.load_state(state)
        history, best = list(state["history"]), dict(state["best"])
        rng = state["rng"]
        ckpt.set_rng_state(rng[info.rank] if len(rng) == info.world_size else rng[0])
        say(f"resuming {run_dir} at epoch {trainer.epoch + 1}, step {trainer.step}")
    desc = trainer.model.desc
    c = cost(desc, img_size)
    say(f"{desc.name}: {c.params / 1e6:.2f}M parameters, {c.macs / 1e6:.1f}M multiply-adds at {img_size}px; "
        f"{len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test images, "
        f"{len(class_names)} classes; {trainer.steps_per_epoch} steps/epoch at batch {trainer.global_batch}, "
        f"{device.type}{f' x{info.world_size}' if info.enabled else ''}")

    writer = None
    if main and cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=trainer.step if resume else None)

    def save(tag: str) -> None:
        rng = distributed.gather_objects(info, ckpt.rng_state())
        if main:
            state = {**trainer.state(), "history": history, "best": best, "rng": rng, "config": cfg.to_dict()}
            meta = {"step": str(trainer.step), "epoch": str(trainer.epoch), "run": run_dir.name}
            path = ckpt.write_checkpoint(run_dir, trainer.step, model=trainer.model,
                                         ema_model=trainer.ema.module if trainer.ema is not None else None,
                                         state=state, keep=cfg.keep_checkpoints, metadata=meta)
            ckpt.publish(path / "model.safetensors", run_dir / "last.safetensors")
            if trainer.ema is not None:
                ckpt.publish(path / "ema.safetensors", run_dir / "last_ema.safetensors")
        distributed.barrier(info)

    start_wall = time.perf_counter()
    try:
        while not trainer.done():
            for step in trainer.train_epoch():
                if writer is not None and step % cfg.log_every_steps == 0:
                    writer.add_scalar("train/loss_avg", trainer.sums["loss"] / max(trainer.sums["seen"], 1), step)
                    writer.add_scalar("train/lr", trainer.scheduler.get_last_lr()[0], step)
                if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0 and not trainer.done() \
                        and trainer.batch_in_epoch < trainer.steps_per_epoch:
                    save("step")
            row = _end_of_epoch(trainer, splits, info)
            history.append(row)
            if main:
                best = _update_best(trainer, row, best, run_dir)
            best = distributed.broadcast_object(info, best)
            trainer.sums = {"loss": 0.0, "correct": 0, "seen": 0}
            save("epoch")
            if main:
                _write_metrics(run_dir, history)
                if writer is not None:
                    for key, value in row.items():
                        if key not in ("epoch", "step") and value is not None:
                            writer.add_scalar(f"epoch/{key}", value, row["step"])
                    writer.flush()
                say(_epoch_line(row, cfg.epochs))
    finally:
        if writer is not None:
            writer.close()

    metrics: dict[str, Any] = {}
    if main:
        metrics = _final_report(trainer, splits, run_dir, history, best, c, img_size, class_names,
                                time.perf_counter() - start_wall)
        say(summary_text(metrics, run_dir))
    distributed.barrier(info)
    return RunResult(run_dir=run_dir, metrics=metrics)


def _printer(enabled: bool):
    def say(text: str) -> None:
        if enabled:
            print(text, flush=True)
    return say


def _end_of_epoch(trainer: Trainer, splits, info: distributed.DistInfo) -> dict[str, Any]:
    train = trainer.epoch_train_metrics()
    row: dict[str, Any] = {"epoch": trainer.epoch if trainer.batch_in_epoch == 0 else trainer.epoch + 1,
                           "step": trainer.step, "lr": trainer.scheduler.get_last_lr()[0], **train}
    if info.is_main:
        raw = trainer.evaluate(splits.val)
        row.update(val_loss=raw["loss"], val_top1=raw["top1"], val_top5=raw.get("top5"))
        if trainer.ema is not None:
            ema = trainer.evaluate(splits.val, ema=True)
            row.update(ema_val_loss=ema["loss"], ema_val_top1=ema["top1"], ema_val_top5=ema.get("top5"))
    return distributed.broadcast_object(info, row)


def _update_best(trainer: Trainer, row: dict[str, Any], best: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Keep ``best.safetensors``: the weights (raw or EMA) with the highest validation top-1 so far
    (ties: the lower validation loss, then the earlier epoch)."""
    candidates = [("raw", row["val_top1"], row["val_loss"], trainer.model)]
    if trainer.ema is not None:
        candidates.append(("ema", row["ema_val_top1"], row["ema_val_loss"], trainer.ema.module))
    kind, top1, loss, model = max(candidates, key=lambda c: (c[1], -c[2]))
    if best and (best["val_top1"], -best["val_loss"]) >= (top1, -loss):
        return best
    meta = {"weights": kind, "epoch": str(row["epoch"]), "step": str(row["step"]), "val_top1": f"{top1:.6f}"}
    ckpt.save_weights(model, run_dir / "best.safetensors", meta)
    return {"weights": kind, "epoch": row["epoch"], "step": row["step"], "val_top1": top1, "val_loss": loss}


def _write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in CSV_COLUMNS})
    atomic_write_text(run_dir / "metrics.csv", buf.getvalue())


def _epoch_line(row: dict[str, Any], epochs: int) -> str:
    text = (f"epoch {row['epoch']}/{epochs}  step {row['step']}  lr {row['lr']:.2e}  "
            f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.3f}  "
            f"val loss {row['val_loss']:.4f} top1 {row['val_top1']:.3f}")
    if row.get("ema_val_top1") is not None:
        text += f"  EMA val top1 {row['ema_val_top1']:.3f}"
    return text


def _final_report(trainer: Trainer, splits, run_dir: Path, history, best, c, img_size: int,
                  class_names: list[str], wall_s: float) -> dict[str, Any]:
    best_model = copy.deepcopy(trainer.model)
    ckpt.load_weights(best_model, run_dir / "best.safetensors")
    test = {"best": trainer_eval(trainer, best_model, splits.test), "last": trainer.evaluate(splits.test)}
    if trainer.ema is not None:
        test["ema"] = trainer.evaluate(splits.test, ema=True)
    images = trainer.step * trainer.global_batch
    metrics = {
        "model": trainer.model.desc.name,
        "data": getattr(splits, "source", "") or trainer.cfg.data,
        "class_names": class_names,
        "img_size": img_size,
        "params": c.params,
        "macs": c.macs,
        "epochs": history[-1]["epoch"] if history else 0,
        "steps": trainer.step,
        "batch_size": trainer.global_batch,
        "train_time_s": trainer.train_time_s,
        "images_per_s": images / max(trainer.train_time_s, 1e-9),
        "wall_time_s": wall_s,
        "best": best,
        "test_top1": test["best"]["top1"],
        "test_weights": best.get("weights"),
        "test": test,
        "history": history,
    }
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    plot_confusion(test["best"]["confusion"], class_names, run_dir / "confusion.png",
                   title=f"test confusion matrix ({best.get('weights')} weights of epoch {best.get('epoch')}), "
                         f"top-1 {test['best']['top1']:.3f}, n={test['best']['n']}")
    return metrics


def trainer_eval(trainer: Trainer, model: nn.Module, dataset: Dataset) -> dict[str, Any]:
    return evaluate(model, dataset, trainer.cfg.eval_batch_size, device=trainer.device, amp_dtype=trainer.amp_dtype,
                    channels_last=trainer.cfg.channels_last)


def plot_confusion(confusion: list[list[int]], class_names: list[str], path: Path, title: str = "") -> None:
    """A confusion-matrix heat map with counts, rows true class, columns predicted (PNG, written atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = len(confusion)
    size = max(4.0, 0.6 * k + 2.5)
    fig = Figure(figsize=(size, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    data = torch.tensor(confusion, dtype=torch.float64)
    ax.imshow(data.numpy(), cmap="Blues")
    peak = float(data.max()) if data.numel() else 0.0
    for i in range(k):
        for j in range(k):
            value = int(confusion[i][j])
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                    color="white" if value > peak / 2 else "black")
    names = class_names if len(class_names) == k else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=9, wrap=True)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)


def summary_text(metrics: dict[str, Any], run_dir: Path) -> str:
    """The one-screen summary printed at the end of ``fit``."""
    best = metrics.get("best") or {}
    test = metrics["test"]
    lines = [
        "",
        f"run            {run_dir}",
        f"model          {metrics['model']}  ({metrics['params'] / 1e6:.2f}M params, "
        f"{metrics['macs'] / 1e6:.1f}M multiply-adds at {metrics['img_size']}px)",
        f"data           {metrics['data']}  ({len(metrics['class_names'])} classes)",
        f"trained        {metrics['epochs']} epochs, {metrics['steps']} steps at batch {metrics['batch_size']} in "
        f"{metrics['train_time_s']:.1f}s ({metrics['images_per_s']:.1f} img/s; wall {metrics['wall_time_s']:.1f}s)",
        f"best val       top-1 {best.get('val_top1', float('nan')):.4f} ({best.get('weights')} weights, "
        f"epoch {best.get('epoch')})",
        f"test top-1     {test['best']['top1']:.4f} with the best weights ({best.get('weights')}), "
        f"n={test['best']['n']}",
    ]
    if "ema" in test:
        lines.append(f"               {test['ema']['top1']:.4f} EMA (last), {test['last']['top1']:.4f} raw (last)")
    else:
        lines.append(f"               {test['last']['top1']:.4f} raw (last)")
    if "top5" in test["best"]:
        lines.append(f"test top-5     {test['best']['top5']:.4f}")
    per_class = ", ".join(f"{name} {acc:.3f}" if acc is not None else f"{name} -"
                          for name, acc in zip(metrics["class_names"], test["best"]["per_class"]))
    lines.append(f"per class      {per_class}")
    lines.append("files          config.yaml, metrics.csv, metrics.json, best.safetensors, last.safetensors, "
                 "confusion.png, tensorboard/, checkpoints/")
    return "\n".join(lines)
