"""The trainer: one model, its optimizer, schedule, EMA and data order, trained step by step."""
from __future__ import annotations

import math
import sys
import time
from dataclasses import replace
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils.data import Dataset

from . import distributed
from .config import TrainConfig
from .ema import build_ema
from .evaluation import evaluate
from .memory import enable_grad_checkpointing
from .optim import build_optimizer, build_scheduler
from .recipe import decide, steps_per_epoch
from .runtime import autocast_dtype
from .sampling import ResumableSampler, SeededDataset, train_loader


class Trainer:
    """One model, its optimizer, schedule, EMA and data order; trains step by step.

    Used by ``fit`` (with checkpoints and logs) and ``quick_train`` (without). ``batch_size`` in the
    config is the global batch; each of ``world_size`` processes takes its share. Recipe keys the
    config leaves undecided are decided here from the run's length (``effnet.train.recipe.decide``;
    ``fit`` and ``quick_train`` decide them before building the model, so that BatchNorm momentum and
    stochastic depth reach it).
    """

    def __init__(self, cfg: TrainConfig, model: nn.Module, train_set: Dataset, *, device: torch.device,
                 info: distributed.DistInfo | None = None, progress: bool | str = False,
                 progress_position: int = 0) -> None:
        self.cfg = cfg
        self.info = info or distributed.DistInfo()
        self.device = device
        # progress: True for a bar per epoch; a text labels it (a study's trial: shown on a terminal
        # only, on line ``progress_position`` so that workers do not overwrite each other)
        self.progress = bool(progress) and self.info.is_main
        self.progress_label = progress if isinstance(progress, str) else ""
        self.progress_position = progress_position
        self.amp_dtype = autocast_dtype(cfg.amp, device)

        world = self.info.world_size
        if len(train_set) == 0:
            raise ValueError("the training set is empty")
        if cfg.batch_size is None:  # the recipe decides the batch (and with it the rest)
            cfg = decide(cfg, steps_per_epoch=max(steps_per_epoch(len(train_set), cfg.batch(), world), 1),
                         num_classes=getattr(model, "num_classes", 0), train_images=len(train_set),
                         world_size=world).cfg
        if cfg.batch_size % world:
            raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {world} processes")
        self.train_set = SeededDataset(train_set, cfg.seed)
        self.sampler = ResumableSampler(self.train_set, num_replicas=world, rank=self.info.rank, seed=cfg.seed)
        # a data set smaller than one batch trains on all of it per step
        self.per_rank_batch = min(cfg.batch_size // world, self.sampler.samples_per_rank)
        self.global_batch = self.per_rank_batch * world
        self.steps_per_epoch = self.sampler.samples_per_rank // self.per_rank_batch
        if cfg.undecided():
            cfg = decide(cfg, steps_per_epoch=self.steps_per_epoch, num_classes=getattr(model, "num_classes", 0)).cfg
        if self.global_batch != cfg.batch_size:
            cfg = replace(cfg, batch_size=self.global_batch, lr=cfg.peak_lr() * self.global_batch / cfg.batch_size)
        self.cfg = cfg

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
        # the schedule's shape (its length) comes from this run's config, so that a resume with a
        # larger --epochs anneals over the new length; only its position comes from the checkpoint
        scheduler = dict(state["scheduler"])
        scheduler["lr_lambdas"] = [None] * len(self.scheduler.lr_lambdas)
        self.scheduler.load_state_dict(scheduler)
        step = self.scheduler.last_epoch
        lrs = [base * fn(step) for base, fn in zip(self.scheduler.base_lrs, self.scheduler.lr_lambdas)]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self.scheduler._last_lr = lrs
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
        if self.cfg.bn_mode == "frozen":  # every BatchNorm normalises with its running statistics
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

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
                       unit="img", desc=f"{self.progress_label}epoch {self.epoch + 1}/{cfg.epochs}", leave=False,
                       dynamic_ncols=True, file=sys.stderr, position=self.progress_position or None,
                       disable=None if self.progress_label else False)
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
