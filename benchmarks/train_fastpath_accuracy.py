"""Accuracy with and without the fast training settings: B0 from scratch on ELPV, same seeds.

Trains ``efficientnet_b0`` with ``effnet.train.quick_train`` and the searches' ``short`` proxy
recipe (AdamW, BatchNorm momentum 0.1) at 64 px, batch 32, once in plain fp32 NCHW and once with
``effnet.train.fastpath.choose_training_settings`` (channels_last; bf16 where the CPU has it),
for each seed, and prints validation and test top-1 and the per-image agreement of the two runs'
test predictions.

    python benchmarks/train_fastpath_accuracy.py [--epochs 3] [--seeds 0] [--limit-per-class 150]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> int:
    from effnet.data import load_splits
    from effnet.search.recipes import quick_train_options
    from effnet.train import quick_train
    from effnet.train.fastpath import choose_training_settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", default="0")
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument("--img-size", type=int, default=64)
    args = p.parse_args()
    fast = choose_training_settings(args.img_size)
    print(fast.describe(), flush=True)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        splits = load_splits("elpv", img_size=args.img_size, augment="none", seed=seed,
                             limit_per_class=args.limit_per_class)
        runs = {}
        for name, extra in (("fp32 NCHW", {"channels_last": False, "amp": "none"}), ("fast", fast.config_overrides())):
            opts = {**quick_train_options("short"), **extra}
            r = quick_train("efficientnet_b0", splits, img_size=args.img_size, epochs=args.epochs, batch_size=32,
                            seed=seed, predictions=True, **opts)
            runs[name] = r
            print(f"seed {seed} {name:10s} val {r['val_acc']:.4f} test {r['test_acc']:.4f} "
                  f"train {r['train_time_s']:.0f} s ({r['images_per_s']:.1f} img/s)", flush=True)
        a, b = runs["fp32 NCHW"], runs["fast"]
        agree = sum(x == y for x, y in zip(a["test_pred"], b["test_pred"])) / len(a["test_pred"])
        rows.append({"seed": seed, "val": [a["val_acc"], b["val_acc"]], "test": [a["test_acc"], b["test_acc"]],
                     "test_agreement": agree, "images_per_s": [a["images_per_s"], b["images_per_s"]],
                     "n_test": len(a["test_pred"])})
        print(f"seed {seed}: test top-1 change {100 * (b['test_acc'] - a['test_acc']):+.2f} points, "
              f"predictions agree on {100 * agree:.1f}% of {len(a['test_pred'])} test images", flush=True)
    print(json.dumps({"load_average_end": os.getloadavg(), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
