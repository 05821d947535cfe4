"""What a run writes and prints: per-epoch rows, the best weights, metrics CSV/JSON, the final
report and its one-screen summary."""
from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ..fsutil import atomic_write_text
from . import checkpoint as ckpt
from . import distributed
from .evaluation import evaluate, plot_confusion
from .trainer import Trainer

CSV_COLUMNS = ["epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_top1", "val_top5",
               "ema_val_loss", "ema_val_top1", "ema_val_top5"]


def end_of_epoch(trainer: Trainer, splits, info: distributed.DistInfo) -> dict[str, Any]:
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


def update_best(trainer: Trainer, row: dict[str, Any], best: dict[str, Any], run_dir: Path) -> dict[str, Any]:
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


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in CSV_COLUMNS})
    atomic_write_text(run_dir / "metrics.csv", buf.getvalue())


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    text = (f"epoch {row['epoch']}/{epochs}  step {row['step']}  next lr {row['lr']:.2e}  "
            f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.3f}  "
            f"val loss {row['val_loss']:.4f} top1 {row['val_top1']:.3f}")
    if row.get("ema_val_top1") is not None:
        text += f"  EMA val top1 {row['ema_val_top1']:.3f}"
    return text


def final_report(trainer: Trainer, splits, run_dir: Path, history, best, c, img_size: int,
                 class_names: list[str], wall_s: float, recipe: dict[str, Any] | None = None) -> dict[str, Any]:
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
        "recipe": recipe or {},
    }
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    plot_confusion(test["best"]["confusion"], class_names, run_dir / "confusion.png",
                   title=f"test confusion matrix ({best.get('weights')} weights of epoch {best.get('epoch')}), "
                         f"top-1 {test['best']['top1']:.3f}, n={test['best']['n']}")
    return metrics


def trainer_eval(trainer: Trainer, model: nn.Module, dataset: Dataset) -> dict[str, Any]:
    return evaluate(model, dataset, trainer.cfg.eval_batch_size, device=trainer.device, amp_dtype=trainer.amp_dtype,
                    channels_last=trainer.cfg.channels_last)


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
        f"trained        {metrics['epochs']} epoch{'s' if metrics['epochs'] != 1 else ''}, {metrics['steps']} "
        f"step{'s' if metrics['steps'] != 1 else ''} at batch {metrics['batch_size']} in "
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
