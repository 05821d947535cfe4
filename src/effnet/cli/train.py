"""``effnet train``, ``effnet eval`` and ``effnet finetune``.

Config precedence (later wins): the variant's defaults (``TrainConfig.for_model``) or, with
``--resume``, the run's saved ``config.yaml``; then ``--config FILE``; then the named flags; then
``--set key=value``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_augment, add_json, add_pretrained, add_recipe, emit_json

# named flag -> config key (flags left unset do not override anything)
_FLAGS = {
    "model": "model", "data": "data", "task": "task", "img_size": "img_size", "epochs": "epochs",
    "batch_size": "batch_size", "lr": "lr", "seed": "seed", "out": "out", "pretrained": "pretrained",
    "skip_bad_images": "skip_bad_images", "limit_per_class": "limit_per_class", "amp": "amp",
    "channels_last": "channels_last", "grad_checkpointing": "grad_checkpointing", "sync_bn": "sync_bn",
    "workers": "workers", "threads": "threads", "deterministic": "deterministic",
    "checkpoint_every": "checkpoint_every_steps", "max_steps": "max_steps", "freeze_stages": "freeze_stages",
    "in_chans": "in_chans", "augment": "augment", "schedule": "schedule", "optimizer": "optimizer",
    "warmup_epochs": "warmup_epochs", "recipe": "recipe",
}

EPILOG = """\
config keys for --set / --config (see effnet.train.TrainConfig):
  {keys}

distributed: torchrun --nproc_per_node N -m effnet train ...  (gloo on CPU, NCCL on GPU; --batch-size is
the global batch; multi-node: add --nnodes, --node_rank, --master_addr, --master_port to torchrun)
"""


def _add_train_options(p: argparse.ArgumentParser, *, model_flag: bool) -> None:
    p.unset_default = "decided by the recipe and the model's variant, printed when the run starts"
    if model_flag:
        p.add_argument("--model", help="registered name (efficientnet_b0) or description JSON (default efficientnet_b0)")
    add_pretrained(p, default=None)
    p.add_argument("--data", help="'elpv', 'fashion-mnist', 'synthetic', an image folder (one folder per class) or a CSV list "
                                  "(no default: required unless --resume or --config gives it)")
    p.add_argument("--task", help="labelling of the data set (elpv: defect4 as 'default', or 'binary'; default: 'default')")
    p.add_argument("--img-size", type=int, help="training resolution (default: the variant's)")
    p.add_argument("--epochs", type=int, help="training epochs (default 350, the paper's; a short run's recipe is sized to it)")
    p.add_argument("--batch-size", type=int, help="global batch size (default: decided, 64; a fine-tune shorter than 200 "
                   "steps at 64 takes 32)")
    p.add_argument("--lr", type=float, help="peak learning rate (default lr_per_256 x batch/256; lr_per_256 "
                                            "is decided by the recipe)")
    p.add_argument("--seed", type=int, help="seed of initialisation, data order and split (default 0)")
    p.add_argument("--out", help="run dir (default runs/<model>-<data>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint (default: a new run)")
    p.add_argument("--skip-bad-images", action="store_const", const=True, help="leave out unreadable images")
    p.add_argument("--limit-per-class", type=int, help="use at most N images per class (default: every image)")
    add_recipe(p, None)
    add_augment(p, None)
    p.add_argument("--optimizer", choices=["rmsprop_tf", "sgd", "adamw"], help="optimizer")
    p.add_argument("--schedule", choices=["step", "cosine"], help="learning-rate schedule after warm-up")
    p.add_argument("--warmup-epochs", type=float, help="linear warm-up length in epochs")
    p.add_argument("--amp", choices=["none", "bf16", "fp16", "auto"], help="mixed precision (default none)")
    p.add_argument("--channels-last", action="store_const", const=True,
                   help="NHWC memory layout (default: the machine's fastest layout, decided when the run starts)")
    p.add_argument("--grad-checkpointing", action="store_const", const=True,
                   help="recompute each stage in backward (less memory)")
    p.add_argument("--sync-bn", action="store_const", const=True,
                   help="distributed: BatchNorm statistics over the global batch (SyncBatchNorm on GPU, "
                        "effnet's GlobalBatchNorm2d on CPU)")
    p.add_argument("--workers", type=int, help="data loader worker processes (default 0: loading in the main process)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--deterministic", action="store_const", const=True,
                   help="deterministic algorithms (bit-exact reruns and resumes)")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="also checkpoint every N steps (default: at the end of every epoch only)")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (default: no limit)")
    p.add_argument("--config", metavar="FILE", help="YAML or JSON file of config keys (default: none)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key (repeatable; default: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")


def _epilog() -> str:
    from effnet.train.config import TrainConfig

    keys = TrainConfig.field_names()
    lines, line = [], ""
    for k in keys:
        if len(line) + len(k) > 96:
            lines.append(line.rstrip())
            line = ""
        line += k + ", "
    lines.append(line.rstrip(", "))
    return EPILOG.format(keys="\n  ".join(lines))


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model (the paper's recipe, sized to the run)",
                              description="Train a model; writes a run dir. A long run from scratch gets the "
                                          "paper's recipe, a short one values that learn in its length; the "
                                          "run's first lines say which and why.",
                              epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_train_options(p, model_flag=True)
    p.set_defaults(func=_train)


def register_finetune(subparsers) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune a checkpoint or pretrained model on a data set",
                              description="Fine-tune: load weights, put a new head for the data set's classes, train "
                                          "with fine-tuning defaults (printed with the reason when the run starts).",
                              epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="CHECKPOINT_OR_NAME",
                   help="a checkpoint file (effnet, torchvision, timm, EfficientNet-PyTorch) or a model name with "
                        "offline weights (efficientnet_lite0)")
    p.add_argument("--model", help="architecture (name or description JSON) for checkpoints that do not store "
                                   "one (torchvision, timm, EfficientNet-PyTorch files; default: the checkpoint's own)")
    p.add_argument("--freeze-stages", type=int, help="freeze the stem and the first N stages (default 0)")
    p.add_argument("--in-chans", type=int, help="input channels, the stem adapted (default: the checkpoint's, or 3)")
    _add_train_options(p, model_flag=False)
    p.set_defaults(func=_finetune)


def register_eval(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint: top-1/top-5, per-class accuracy, confusion",
                              description="Evaluate a checkpoint (or a run dir's best weights) on a data split.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .safetensors checkpoint, a run dir (uses best.safetensors), "
                                                            "or a file written by `effnet export` (.onnx, OpenVINO .xml)")
    p.add_argument("--data", help="data source (default: the run's, when CHECKPOINT is a run dir)")
    p.add_argument("--split", choices=["train", "val", "test"], default="test", help="the split to score")
    p.add_argument("--task", help="labelling of the data set (default: the run's, or 'default')")
    p.add_argument("--seed", type=int, help="split seed (default: the run's, or 0)")
    p.add_argument("--limit-per-class", type=int, help="use at most N images per class (default: the run's, or all)")
    p.add_argument("--skip-bad-images", action="store_true", help="leave out unreadable images")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    add_json(p, "the metrics")
    p.set_defaults(func=_eval)


# ----- handlers --------------------------------------------------------------------------

def resolve_config(args: argparse.Namespace, *, model: str | None = None, pretrained: str | None = None):
    """The run's config from ``args`` (see the module docstring for precedence)."""
    from effnet.train.config import TrainConfig

    if args.resume:
        run = Path(args.resume)
        saved = run / "config.yaml"
        if not saved.is_file():
            raise ValueError(f"{run} is not a run dir (no config.yaml)")
        cfg = TrainConfig.from_file(saved)
    else:
        if not getattr(args, "data", None) and not _set_has(args.set, "data") and not args.config:
            raise ValueError("--data is required (elpv, synthetic, an image folder or a CSV list)")
        name = model or getattr(args, "model", None) or _set_value(args.set, "model") or "efficientnet_b0"
        cfg = TrainConfig.for_model(name)
    if args.config:
        cfg = TrainConfig.from_file(args.config, base=cfg)
    flags = {}
    for attr, key in _FLAGS.items():
        value = getattr(args, attr, None)
        if value is not None:
            flags[key] = "true" if key == "pretrained" and value is True else value  # --pretrained alone
    if model is not None and not args.resume:
        flags["model"] = model
    if pretrained is not None and not args.resume:
        flags["pretrained"] = pretrained
    if args.resume:
        flags["out"] = args.resume
    try:
        cfg = cfg.override(flags)
    except ValueError as exc:
        raise ValueError(_as_flag(str(exc), flags)) from None
    return cfg.override(args.set)


def _as_flag(message: str, given: dict) -> str:
    """A config error about a key the user set by a flag, told with the flag's name (img_size -> --img-size)."""
    for attr, key in _FLAGS.items():
        if key in given and message.startswith(key + " "):
            return f"--{attr.replace('_', '-')}{message[len(key):]}"
    return message


def _set_has(items: list[str], key: str) -> bool:
    return _set_value(items, key) is not None


def _set_value(items: list[str], key: str) -> str | None:
    for item in reversed(items):
        if "=" in item and item.split("=", 1)[0].strip().replace("-", "_") == key:
            return item.split("=", 1)[1].strip()
    return None


def _run(cfg, args) -> int:
    from effnet.train import fit
    from effnet.train.outputs import summary_text

    result = fit(cfg, progress=not args.no_progress, resume=bool(args.resume), log=lambda line: print(line, flush=True))
    if args.no_progress and result.metrics:  # with progress, fit prints the summary itself
        print(summary_text(result.metrics, result.run_dir))
    return 0


def _train(args: argparse.Namespace) -> int:
    return _run(resolve_config(args), args)


def _finetune(args: argparse.Namespace) -> int:
    source = args.source
    if Path(source).exists():
        if args.pretrained not in (None, True):
            raise ValueError(f"--pretrained {args.pretrained} names weights for a model name; {source} is a "
                             "checkpoint and brings its own")
        cfg = resolve_config(args, model=args.model or source, pretrained=source)
    else:
        from effnet.arch import list_networks

        if source not in list_networks():
            raise ValueError(f"{source!r} is neither a checkpoint file nor a model name (known names: "
                             f"{', '.join(list_networks())})")
        weights = args.pretrained if args.pretrained not in (None, True) else "true"
        cfg = resolve_config(args, model=source, pretrained=weights)
    return _run(cfg, args)


def _eval(args: argparse.Namespace) -> int:
    import dataclasses

    from effnet.data import DataSpec, load_data
    from effnet.train import evaluate
    from effnet.train.config import TrainConfig
    from effnet.factory import load_model

    path = Path(args.checkpoint)
    run_cfg = None
    if path.is_dir() and (path / "config.yaml").is_file():
        run_cfg = TrainConfig.from_file(path / "config.yaml")
        path = path / "best.safetensors"
    if not path.exists():
        raise ValueError(f"checkpoint not found: {path}")
    if path.suffix.lower() == ".json":
        raise ValueError(f"{path} is a description, not a checkpoint: eval needs trained weights "
                         "(a .safetensors file, a run dir, or an exported .onnx or OpenVINO .xml file)")
    from effnet.deploy.exported import is_exported, load_exported

    model = load_exported(path) if is_exported(path) else load_model(path)
    pre = model.preprocessing
    data = args.data or (run_cfg.data if run_cfg else None)
    if not data:
        raise ValueError("--data is required (elpv, synthetic, an image folder or a CSV list)")
    # the run's own data settings when it is the run's data (so its test split is the same images), else defaults
    spec = run_cfg.data_spec() if run_cfg is not None and data == run_cfg.data else DataSpec(data)
    changes = {"task": args.task, "seed": args.seed, "limit_per_class": args.limit_per_class,
               "skip_bad_images": args.skip_bad_images or None}
    spec = dataclasses.replace(spec, **{k: v for k, v in changes.items() if v is not None})
    splits = load_data(spec, img_size=pre.resolution, preprocessing=pre)
    if model.num_classes != splits.num_classes:
        raise ValueError(f"the checkpoint has {model.num_classes} classes, the data set {splits.num_classes}")
    if pre.class_names and list(pre.class_names) != list(splits.class_names):
        raise ValueError(f"the checkpoint's classes {list(pre.class_names)} differ from the data set's "
                         f"{list(splits.class_names)}")
    dataset = getattr(splits, args.split)
    if args.split == "train":  # scored as the evaluation splits are: no random crops or flips
        from effnet.data.splits import without_augmentation

        dataset = without_augmentation(dataset, pre, pre.resolution)
    metrics = evaluate(model, dataset, batch_size=args.batch_size)
    metrics = {"checkpoint": str(path), "data": splits.source, "split": args.split,
               "class_names": list(splits.class_names), **metrics}
    if not (args.json and emit_json(metrics, args.json)):
        print(format_eval(metrics))
    return 0


def format_eval(m: dict) -> str:
    names = m["class_names"]
    lines = [f"{m['checkpoint']} on {m['data']} ({m['split']} split, {m['n']} images)",
             f"top-1   {m['top1']:.4f}"]
    if "top5" in m:
        lines.append(f"top-5   {m['top5']:.4f}")
    lines.append(f"loss    {m['loss']:.4f}  (mean cross-entropy)")
    width = max(len(n) for n in names)
    lines.append("")
    lines.append(f"{'class':<{width}}  accuracy  confusion (rows true, columns predicted)")
    for name, acc, row in zip(names, m["per_class"], m["confusion"]):
        shown = "     -  " if acc is None else f"{acc:8.4f}"
        lines.append(f"{name:<{width}}  {shown}  " + " ".join(f"{v:5d}" for v in row))
    return "\n".join(lines)
