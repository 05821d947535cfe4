"""The ``effnet`` command: parses, calls the library, prints.

Each subcommand lives in its own module here, exposing ``register(subparsers)``; the parser calls
the function stored as ``func`` on the parsed namespace. Bad input raises ``ValueError`` (or
``OSError``) in the library and is printed here as one line with a non-zero exit; so is a module
missing from an optional extra, with the ``pip install 'effnet[EXTRA]'`` line that brings it.

Building the parser imports no torch (nor Optuna, ONNX, ...): every subcommand module imports what
it needs inside its handler, so ``effnet --help``, any ``--help`` and the torch-free commands
(``info``, ``scale``) answer at once. ``tests/test_cli_startup.py`` keeps it so.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

#: Subcommand modules, in the order ``effnet --help`` lists them.
COMMANDS = ["info", "demo", "train", "eval", "finetune", "search", "scale", "study", "predict", "export", "quantize", "bench", "cam", "report"]


class Parser(argparse.ArgumentParser):
    """argparse with a bad flag answered in one line on stderr and exit status 2 (the usage is
    for ``--help``). Subcommand parsers are made of the same class."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = Parser(prog="effnet", description="EfficientNet: models, compound scaling, search, training, analysis, deployment.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"effnet.cli.{name}").register(sub)
    from .common import state_defaults

    state_defaults(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("effnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`effnet ... | head`): stop quietly, as other command-line tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (ValueError, OSError, RuntimeError, ImportError) as exc:
        if os.environ.get("EFFNET_DEBUG"):
            raise
        from ..errors import missing_extra

        missing = missing_extra(exc, f"effnet {args.command}", "demo" if args.command == "demo" else None)
        if missing is not None:
            exc = missing
        elif isinstance(exc, ImportError):
            raise  # not an optional dependency: a broken install, shown in full
        print(f"effnet {args.command}: error: {error_message(exc)}", file=sys.stderr)
        return 2
    return int(result or 0)


def error_message(exc: BaseException) -> str:
    """The user-facing text of an error.

    An error raised inside a DataLoader worker comes back with the worker's traceback in its
    text; only its last line (the original message, without the exception's class path) is kept.
    """
    msg = str(exc).strip() or exc.__class__.__name__
    if "Original Traceback" in msg:
        last = [line for line in msg.splitlines() if line.strip()][-1].strip()
        head, sep, tail = last.partition(": ")
        msg = tail if sep and "." in head and " " not in head else last
    return msg
