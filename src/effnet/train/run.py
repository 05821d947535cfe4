"""``fit``: a full training run with a run dir (config, checkpoints, metrics, logs), resumable."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import torch

from ..arch import cost
from . import checkpoint as ckpt
from . import distributed
from .config import TrainConfig
from .outputs import end_of_epoch, epoch_line, final_report, summary_text, update_best, write_metrics
from .recipe import describe
from .runtime import resolve_device, runtime
from .setup import prepare
from .trainer import Trainer


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    #: the recipe's decisions, ``{key: {"value", "why"}}`` (also in the run's config files)
    recipe: dict[str, Any] = field(default_factory=dict)


def default_run_dir(cfg: TrainConfig) -> Path:
    model = Path(cfg.model).stem if cfg.model.endswith(".json") else cfg.model
    data = Path(cfg.data).name or "data"
    return Path("runs") / f"{model}-{data}-{datetime.now():%Y%m%d-%H%M%S}"


def fit(cfg: TrainConfig, progress: bool = True, *, resume: bool = False, splits=None,
        log: Callable[[str], None] | None = None) -> RunResult:
    """Train with a run dir: config, checkpoints, metrics CSV/JSON, TensorBoard logs, confusion matrix.

    The recipe keys ``cfg`` leaves open are decided for this run first (``effnet.train.recipe``);
    the decisions and their reasons are saved in the run's config files and in ``metrics.json``,
    and handed to ``log`` (one line each) before training starts. With ``resume=True`` the run
    continues from the newest readable checkpoint in ``cfg.out`` exactly as if it had not stopped;
    an unreadable newest checkpoint is set aside (``checkpoints/unreadable-step-*``), the previous
    one is used, and ``log`` says so in one line. ``splits`` (an ``effnet.data.Splits``) replaces
    loading ``cfg.data``. ``progress`` shows progress bars and per-epoch lines. Under ``torchrun``
    every process calls ``fit``; only rank 0 writes files and logs.
    """
    with runtime(cfg):
        device = resolve_device(cfg, distributed.from_env().local_rank)
        info = distributed.init(device)
        try:
            return _fit(cfg, progress, resume, splits, device, info, log)
        finally:
            distributed.shutdown(info)


def _fit(cfg: TrainConfig, progress: bool, resume: bool, splits, device: torch.device,
         info: distributed.DistInfo, log: Callable[[str], None] | None) -> RunResult:
    main = info.is_main
    say = _printer(progress and main)

    def note(text: str) -> None:
        if main and log is not None:
            log(text)

    if resume and not cfg.out:
        raise ValueError("resume needs the run dir (out)")
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    run_dir = Path(distributed.broadcast_object(info, str(run_dir)))
    candidates = ckpt.candidates(run_dir) if run_dir.exists() else []
    if resume and not candidates:
        raise ValueError(f"{run_dir} has no checkpoint to resume from")
    if not resume and candidates:
        raise ValueError(f"{run_dir} already holds a run; resume it with --resume {run_dir} or choose another --out")
    cfg = replace(cfg, out=str(run_dir))

    prepared = prepare(cfg, splits, world_size=info.world_size)
    cfg, splits, model = prepared.cfg, prepared.splits, prepared.model
    img_size, class_names = prepared.img_size, prepared.class_names
    decisions = prepared.recipe.record()
    if resume:
        decisions = _saved_decisions(run_dir) or decisions
        note("recipe (decided when the run started):")
    else:
        note(f"recipe ({prepared.recipe.regime}; --recipe paper forces the paper's values):")
    for line in describe(prepared.recipe) if not resume else _describe_saved(decisions):
        note("  " + line)
    torch.manual_seed(cfg.seed + info.rank)  # per-process dropout and stochastic-depth streams

    trainer = Trainer(cfg, model, splits.train, device=device, info=info, progress=progress)
    cfg = trainer.cfg
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    created = main and not resume and not run_dir.exists()  # removed again if the run fails before its first checkpoint
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir, decisions=decisions)
    if resume:
        state = _read_newest_readable(trainer, candidates, note, main)
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
            row = end_of_epoch(trainer, splits, info)
            history.append(row)
            if main:
                best = update_best(trainer, row, best, run_dir)
            best = distributed.broadcast_object(info, best)
            trainer.sums = {"loss": 0.0, "correct": 0, "seen": 0}
            save("epoch")
            if main:
                write_metrics(run_dir, history)
                if writer is not None:
                    for key, value in row.items():
                        if key not in ("epoch", "step") and value is not None:
                            writer.add_scalar(f"epoch/{key}", value, row["step"])
                    writer.flush()
                say(epoch_line(row, cfg.epochs))
    except BaseException:
        if writer is not None:
            writer.close()
            writer = None
        if created and not ckpt.candidates(run_dir):  # nothing worth keeping: leave no half-made run folder
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if writer is not None:
            writer.close()

    metrics: dict[str, Any] = {}
    if main:
        metrics = final_report(trainer, splits, run_dir, history, best, c, img_size, class_names,
                               time.perf_counter() - start_wall, decisions)
        say(summary_text(metrics, run_dir))
    distributed.barrier(info)
    return RunResult(run_dir=run_dir, metrics=metrics, recipe=decisions)


def _printer(enabled: bool):
    def say(text: str) -> None:
        if enabled:
            print(text, flush=True)
    return say


def _read_newest_readable(trainer: Trainer, candidates: list[Path], note, main: bool) -> dict[str, Any]:
    """The train state of the newest checkpoint that reads whole, its weights loaded into ``trainer``.

    A checkpoint that does not read (truncated or corrupt files) is set aside by the main process
    and the next older one is tried; the message names both.
    """
    failures = []
    for path in candidates:
        try:
            state = ckpt.read_state(path)
            ckpt.load_weights(trainer.model, path / "model.safetensors")
            if trainer.ema is not None:
                ckpt.load_weights(trainer.ema.module, path / "ema.safetensors")
        except ValueError as exc:
            failures.append((path, str(exc).splitlines()[0]))
            continue
        for bad, why in failures:
            aside = ckpt.set_aside(bad) if main else bad
            note(f"checkpoint {bad.name} is unreadable ({why}); resuming from {path.name}, "
                 f"the unreadable one kept as {aside.name}")
        return state
    raise ValueError(f"no checkpoint in {candidates[0].parent} can be read "
                     f"(newest: {failures[0][0].name}: {failures[0][1]})")


def _saved_decisions(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    decisions = data.get("decisions") if isinstance(data, dict) else None
    return decisions if isinstance(decisions, dict) else {}


def _describe_saved(decisions: dict[str, Any]) -> list[str]:
    lines = []
    for key, entry in decisions.items():
        if isinstance(entry, dict) and "value" in entry:
            value = entry["value"]
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            lines.append(f"{key:<16}{shown:<12}{entry.get('why', '')}")
    return lines
