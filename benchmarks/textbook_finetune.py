"""The fine-tuning loop anyone would write, as the bar for ``effnet finetune``'s defaults, and the
defaults' own run scored on the same test images for a paired comparison.

Textbook loop: the pretrained network with a new zero-initialised head, AdamW (weight decay 0.01) on
every layer at one peak rate with PyTorch's one-cycle schedule, batch 32, crops of 50% to 100% of the
image and horizontal flips, BatchNorm in train mode, no EMA, the last weights scored. The data
splits, the preprocessing and the test images are effnet's own for the folder and seed.

    python benchmarks/textbook_finetune.py --data FOLDER --epochs 2 --lr 1e-3 --seed 0 --out RESULT.json
    python benchmarks/textbook_finetune.py --data FOLDER --score RUN_DIR --out RESULT.json   # effnet's run
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

import effnet
from effnet.data import load_splits, make_transforms


def test_correct(model: torch.nn.Module, test) -> list[int]:
    model.eval()
    out = []
    with torch.inference_mode():
        for x, y in DataLoader(test, batch_size=64, shuffle=False, num_workers=0):
            out += (model(x).argmax(1) == y).int().tolist()
    return out


def textbook(args) -> dict:
    torch.manual_seed(args.seed)
    model = effnet.create_model(args.model, pretrained=True)
    prep = model.preprocessing
    splits = load_splits(args.data, img_size=args.img_size, preprocessing=prep, seed=args.seed, augment="none")
    splits.train.transform = make_transforms(prep, args.img_size, train=True, augment="none", crop_scale=0.5)
    model.reset_classifier(splits.num_classes, zero_init=True)
    loader = DataLoader(splits.train, batch_size=32, shuffle=True, drop_last=True, num_workers=0,
                        generator=torch.Generator().manual_seed(args.seed))
    steps = args.epochs * len(loader)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.time()
    for _ in range(args.epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()
            sched.step()
    correct = test_correct(model, splits.test)
    return {"method": "textbook", "lr": args.lr, "steps": steps, "train_s": time.time() - start, "correct": correct}


def score_run(args) -> dict:
    from effnet.deploy.loading import load_model_arg

    run = Path(args.score)
    model = load_model_arg(str(run / "best.safetensors")).eval()
    metrics = json.loads((run / "metrics.json").read_text())
    splits = load_splits(args.data, img_size=model.preprocessing.resolution, preprocessing=model.preprocessing,
                         seed=args.seed, augment="none")
    return {"method": "effnet", "run": str(run), "correct": test_correct(model, splits.test),
            "recipe": metrics.get("recipe")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--score", metavar="RUN_DIR", help="score effnet's run instead of training the textbook loop")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    result = score_run(args) if args.score else textbook(args)
    result.update(data=args.data, seed=args.seed, epochs=args.epochs, top1=float(np.mean(result["correct"])))
    Path(args.out).write_text(json.dumps(result) + "\n")
    print(f"{result['method']} {args.data} seed {args.seed}: test top-1 {result['top1']:.3f} "
          f"({len(result['correct'])} images)")


if __name__ == "__main__":
    main()
