"""``effnet report``: one static HTML page from run, study and benchmark outputs."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="one static HTML page of runs, studies and benchmarks",
                              description="One HTML page, images embedded, from training run folders, search/study "
                                          "folders and benchmark JSON files (searched three folders deep). It leads "
                                          "with each run's test top-1 and its 95% Wilson interval, model, data and "
                                          "time, the runs side by side, and each study's verdict; then per run its "
                                          "curves and confusion matrix, per study its control, candidates with "
                                          "intervals and plots; configuration and raw tables folded away.")
    p.add_argument("inputs", nargs="+", metavar="RUN_OR_STUDY_DIR")
    p.add_argument("--out", required=True, metavar="report.html")
    p.add_argument("--title", default="effnet report", help="page title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.report import write_report

    path = write_report(args.inputs, args.out, args.title)
    print(f"wrote {path}")
    return 0
