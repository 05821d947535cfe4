"""``effnet finetune``'s defaults against the textbook loop on a suite of real folders unlike ImageNet.

Each cell (folder, budget in epochs, seed) runs ``effnet finetune MODEL --pretrained --data FOLDER
--epochs E --seed S`` exactly as a user would (no other flag) and the textbook loop of
``benchmarks/textbook_finetune.py`` at each of its peak rates on the same split and seed; both are
scored on the same test images. Per folder and budget the JSON holds every run's per-image
correctness, and the paired difference of effnet's defaults minus the textbook loop at its best peak
rate (chosen on the test images, in the textbook's favour) with its 95% interval over seeds and
images (``effnet.search.stats.paired_difference``). A plot shows both with their intervals.

    python benchmarks/finetune_suite.py --suite /work/suite --epochs 2 --seeds 0,1 --out RESULT.json

The folders (written by ``benchmarks/make_grey_folder.py``, ``elpv`` is the bundled data set):
``fm-grey`` (Fashion-MNIST items as grey 28 px images), ``fm-small`` (the items small on a dark
canvas), and ELPV's solar cells at two resolutions. Runs already in the JSON are not run again.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: name -> (data argument relative to the suite folder or a data source name, image size)
FOLDERS = {"fm-grey": ("fm-grey", 128), "fm-small": ("fm-small", 128), "elpv-96": ("elpv", 96),
           "elpv-160": ("elpv", 160)}
TEXTBOOK_LRS = (3e-4, 1e-3, 3e-3)


def run_cell(kind: str, folder: str, data: str, size: int, epochs: int, seed: int, lr: float | None,
             work: Path, model: str) -> dict:
    tag = f"{folder}-e{epochs}-s{seed}-" + ("effnet" if kind == "effnet" else f"tb{lr:g}")
    out = work / f"{tag}.json"
    if not out.exists():
        py = sys.executable
        base = [py, str(HERE / "textbook_finetune.py"), "--data", data, "--img-size", str(size),
                "--epochs", str(epochs), "--seed", str(seed), "--model", model, "--out", str(out)]
        start = time.time()
        if kind == "effnet":
            run_dir = work / "runs" / tag
            subprocess.run([py, "-m", "effnet", "finetune", model, "--pretrained", "--data", data, "--img-size",
                            str(size), "--epochs", str(epochs), "--seed", str(seed), "--out", str(run_dir),
                            "--no-progress"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(base + ["--score", str(run_dir)], check=True, stdout=subprocess.DEVNULL)
        else:
            subprocess.run(base + ["--lr", str(lr)], check=True, stdout=subprocess.DEVNULL)
        result = json.loads(out.read_text())
        result["wall_s"] = time.time() - start
        out.write_text(json.dumps(result) + "\n")
    return json.loads(out.read_text())


def analyse(cells: list[dict]) -> list[dict]:
    from effnet.search.stats import paired_difference

    groups: dict[tuple[str, int], dict] = {}
    for c in cells:
        g = groups.setdefault((c["folder"], c["epochs"]), {"effnet": {}, "textbook": {}})
        key = "effnet" if c["method"] == "effnet" else "textbook"
        g[key].setdefault(c.get("lr"), {})[c["seed"]] = c["correct"]
    rows = []
    for (folder, epochs), g in sorted(groups.items()):
        ours = g["effnet"].get(None, {})
        by_lr = {lr: np.mean([np.mean(v) for v in runs.values()]) for lr, runs in g["textbook"].items()}
        if not ours or not by_lr:
            continue
        best = max(by_lr, key=by_lr.get)
        seeds = sorted(set(ours) & set(g["textbook"][best]))
        d = paired_difference([ours[s] for s in seeds], [g["textbook"][best][s] for s in seeds])
        rows.append({"folder": folder, "epochs": epochs, "seeds": seeds, "test_images": len(ours[seeds[0]]),
                     "effnet_top1": float(np.mean([np.mean(ours[s]) for s in seeds])),
                     "textbook_top1_by_lr": {f"{lr:g}": float(v) for lr, v in by_lr.items()},
                     "textbook_best_lr": best, "textbook_best_top1": float(by_lr[best]),
                     "diff": d["diff"], "ci_low": d["ci_low"], "ci_high": d["ci_high"],
                     "at_least_as_accurate": bool(d["ci_high"] >= 0), "better": bool(d["ci_low"] > 0)})
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    labels = [f"{r['folder']}\n{r['epochs']} ep" for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["effnet_top1"] for r in rows], 0.4, label="effnet finetune defaults")
    ax.bar(x + 0.2, [r["textbook_best_top1"] for r in rows], 0.4, label="textbook loop, best peak rate")
    for i, r in enumerate(rows):
        ax.annotate(f"{100 * r['diff']:+.1f}\n({100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f})",
                    (i, max(r["effnet_top1"], r["textbook_best_top1"]) + 0.01), ha="center", fontsize=7)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("test top-1")
    ax.set_ylim(0, 1.15)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("fine-tuning defaults vs the textbook loop (difference, points, 95% interval)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", required=True, help="folder holding the suite's image folders")
    p.add_argument("--folders", default=",".join(FOLDERS))
    p.add_argument("--epochs", default="2", help="comma-separated budgets")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--lrs", default=",".join(f"{lr:g}" for lr in TEXTBOOK_LRS),
                   help="the textbook loop's peak rates (default: %(default)s)")
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--work", default=None, help="where runs and per-run JSONs go (default SUITE/work)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    suite = Path(args.suite)
    work = Path(args.work or suite / "work")
    (work / "runs").mkdir(parents=True, exist_ok=True)
    lrs = [float(lr) for lr in args.lrs.split(",")]
    cells = []
    for epochs in [int(e) for e in args.epochs.split(",")]:
        for folder in args.folders.split(","):
            data, size = FOLDERS[folder]
            data = str(suite / data) if (suite / data).exists() else data
            for seed in [int(s) for s in args.seeds.split(",")]:
                for kind, lr in [("effnet", None)] + [("textbook", lr) for lr in lrs]:
                    r = run_cell(kind, folder, data, size, epochs, seed, lr, work, args.model)
                    r.update(folder=folder, kind=kind)
                    cells.append(r)
                    print(f"{folder} {epochs} ep seed {seed} {r['method']}{'' if lr is None else f' lr {lr:g}'}: "
                          f"top-1 {r['top1']:.3f} ({r.get('wall_s', 0):.0f} s)", flush=True)
    rows = analyse(cells)
    import platform

    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    result = {"kind": "effnet.finetune-suite", "model": args.model, "cpu": cpu, "torch": torch.__version__,
              "textbook_lrs": lrs, "rows": rows,
              "runs": [{k: c[k] for k in ("folder", "epochs", "seed", "method", "lr", "top1", "correct", "wall_s")
                        if k in c} for c in cells]}
    Path(args.out).write_text(json.dumps(result) + "\n")
    plot(rows, Path(args.out).with_suffix(".png"))
    for r in rows:
        print(f"{r['folder']:9s} {r['epochs']} ep: effnet {r['effnet_top1']:.3f}, textbook best (lr "
              f"{r['textbook_best_lr']:g}) {r['textbook_best_top1']:.3f}; difference {100 * r['diff']:+.1f} points "
              f"({100 * r['ci_low']:+.1f} to {100 * r['ci_high']:+.1f})")


if __name__ == "__main__":
    main()
