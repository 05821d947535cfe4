"""``effnet report``: one static HTML page from run, study and benchmark outputs."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="one static HTML page of runs, studies and benchmarks",
                              description="Collect the tables (CSV, JSON) and plots (PNG) in training run folders, "
                                          "search/study folders and benchmark JSON files into one HTML page with the "
                                          "images embedded.")
    p.add_argument("inputs", nargs="+", metavar="RUN_OR_STUDY_DIR")
    p.add_argument("--out", required=True, metavar="report.html")
    p.add_argument("--title", default="effnet report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.report import write_report

    path = write_report(args.inputs, args.out, args.title)
    print(f"wrote {path}")
    return 0
