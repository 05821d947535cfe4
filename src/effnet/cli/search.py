"""``effnet search``: searches run as resumable studies of trials (``scale``, ``arch``).

Each search is a module ``effnet.cli.search_<name>`` exposing ``register(subparsers)``.
"""
from __future__ import annotations

import importlib

#: Search modules, in the order ``effnet search --help`` lists them.
SEARCH_COMMANDS = ["scale", "arch"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search", help="coefficient grid search (scale) or architecture search (arch)",
        description="Searches as Optuna studies with persistent storage: interrupted searches resume, and any "
                    "number of workers can share one study through a database URL.",
    )
    sub = p.add_subparsers(dest="search_command", metavar="SEARCH")
    sub.required = True
    for name in SEARCH_COMMANDS:
        importlib.import_module(f"effnet.cli.search_{name}").register(sub)
