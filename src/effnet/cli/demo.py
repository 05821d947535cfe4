"""``effnet demo``: the main job on the bundled real data, as a sequence of ordinary commands.

Each step prints the command it runs, so a user can repeat any of them by hand.
"""
from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

#: scikit-image sample photos with an unambiguous ImageNet subject.
SAMPLE_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")

#: Budgets per demo size: the transfer comparison's resolution, epochs, seeds and images per class
#: (None: all of ELPV), and the grid search's budget.
SIZES = {
    "full": dict(px=112, epochs=2, seeds=2, limit=None, max_steps=None, workers=2,
                 search_epochs=8, search_limit=300, search_max=1.2, search_tolerance=0.05),
    "quick": dict(px=32, epochs=1, seeds=1, limit=12, max_steps=2, workers=1,
                  search_epochs=1, search_limit=6, search_max=1.3, search_tolerance=0.02),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job: model family, ImageNet photos, ELPV transfer, compound scaling",
                       description=__doc__)
    p.add_argument("--out", default=None,
                   help="where runs, searches and descriptions go (default runs/demo-<date>-<time>, new each time)")
    p.add_argument("--quick", action="store_true", help="tiny budgets (a smoke run of every step)")
    p.add_argument("--steps", default="family,photos,transfer,search",
                   help="comma-separated steps to run (default: all: family,photos,transfer,search)")
    p.set_defaults(func=run)


def sample_photos() -> list[str]:
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    return [str(folder / name) for name in SAMPLE_PHOTOS if (folder / name).is_file()]


def plan(out: Path, quick: bool) -> dict[str, list[list[str]]]:
    """The commands of each step."""
    s = SIZES["quick" if quick else "full"]
    limit = ["--limit-per-class", str(s["limit"])] if s["limit"] else []
    steps = ["--max-steps", str(s["max_steps"])] if s["max_steps"] else []
    return {
        "family": [["info", *[f"efficientnet_b{i}" for i in range(8)], "efficientnet_lite0"],
                   ["info", "--compare-formula"]],
        "photos": [["predict", *sample_photos(), "--model", "efficientnet_lite0", "--pretrained", "--top-k", "3"]],
        # Lite0 fine-tuned from ImageNet against the same network trained from scratch, paired seeds,
        # test top-1 with intervals: each run takes the recipe it decides for itself
        "transfer": [["study", "transfer", "--models", "efficientnet_lite0", "--data", "elpv",
                      "--img-size", str(s["px"]), "--budget-epochs", str(s["epochs"]), "--seeds", str(s["seeds"]),
                      "--workers", str(s["workers"]), "--out", str(out / "transfer"), *limit, *steps]],
        "search": [["search", "scale", "--data", "elpv", "--task", "binary", "--base", "efficientnet_b0",
                    "--img-size", "32", "--budget-epochs", str(s["search_epochs"]), "--grid-step", "0.1",
                    "--tolerance", str(s["search_tolerance"]), "--max-coefficient", str(s["search_max"]), "--limit-per-class", str(s["search_limit"]),
                    "--out", str(out / "scale-search")],
                   family_argv(out, decided=False)],
    }


def family_argv(out: Path, decided: bool) -> list[str]:
    """The family step: the grid search's coefficients when it named a winner, else the paper's."""
    coefficients = (["--coefficients", str(out / "scale-search" / "best.json")] if decided
                    else ["--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15"])
    return ["scale", "--base", "efficientnet_b0", *coefficients, "--phi", "0,1,2,3", "--img-size", "32",
            "--out", str(out / "family")]


def search_decided(out: Path) -> bool:
    """Whether the demo's grid search named a winner (its ``best.json``)."""
    import json

    try:
        summary = json.loads((out / "scale-search" / "best.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(summary.get("decided")) and (summary.get("best") or {}).get("role") == "winner"


def run(args: argparse.Namespace) -> int:
    from . import main

    out = Path(args.out or time.strftime("runs/demo-%Y%m%d-%H%M%S"))
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    commands = plan(out, args.quick)
    unknown = [s for s in steps if s not in commands]
    if unknown:
        raise ValueError(f"unknown demo step(s) {', '.join(unknown)}; choose from {', '.join(commands)}")
    start = time.perf_counter()
    for step in steps:
        for argv in commands[step]:
            if argv[0] == "scale":  # after the grid search: its coefficients only if it decided
                decided = search_decided(out)
                argv = family_argv(out, decided)
                print("\neffnet demo: " + ("the grid search named a winner; the family uses its coefficients" if decided
                                         else "the grid search did not decide (its verdict says why); the family uses "
                                              "the paper's coefficients alpha 1.2, beta 1.1, gamma 1.15"))
            print(f"\n$ effnet {shlex.join(argv)}", flush=True)
            code = main(argv)
            if code:
                print(f"effnet demo: step {step!r} failed (exit {code})")
                return code
    if out.is_dir() and any(out.iterdir()):
        argv = ["report", str(out), "--out", str(out / "report.html")]
        print(f"\n$ effnet {shlex.join(argv)}", flush=True)
        code = main(argv)
        if code:
            print(f"effnet demo: the report failed (exit {code})")
            return code
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; outputs under {out}/"
          + (f"; open {out / 'report.html'}" if (out / "report.html").is_file() else ""))
    return 0
