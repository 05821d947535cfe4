"""Options that several commands share, defined once so that a flag means the same everywhere.

Torch-free: parsers are built at start-up (``effnet --help`` answers at once).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: augmentation policies (effnet.data.AUGMENTATIONS; tests/test_cli_vocabulary.py checks they agree)
AUGMENT_CHOICES = ("none", "autoaugment", "randaugment")
#: training recipes (effnet.train.config.RECIPES and effnet.search.recipes.PROXY_RECIPES)
RECIPE_CHOICES = ("auto", "short", "paper")
RECIPE_HELP = ("auto: decided from the run (the paper's values for a long run from scratch, values sized to the run "
               "for short runs and fine-tuning, printed with the reason); short: fixed values that learn in a few "
               "hundred steps (AdamW 2e-3, cosine, BatchNorm momentum 0.1, a zero-initialised classifier, no EMA); "
               "paper: the paper's values whatever the run")


def comma_list(text: str) -> list[str]:
    """``a,b,c`` -> ``["a", "b", "c"]``: the one list syntax of every command."""
    items = [t.strip() for t in str(text).split(",")]
    if not items or any(not t for t in items):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list without empty items, got {text!r}")
    return items


def add_json(p: argparse.ArgumentParser, what: str = "the results") -> None:
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help=f"{what} as JSON: --json alone prints it on standard output (in place of the text, where "
                        "there is one), --json FILE writes it to FILE (default: no JSON)")


def add_pretrained(p: argparse.ArgumentParser, default: Any = False) -> None:
    p.add_argument("--pretrained", nargs="?", const=True, default=default, metavar="PATH",
                   help="--pretrained alone: the published ImageNet weights of a model name (Lite0..Lite2 offline, "
                        "B0..B7 downloaded once from torchvision's release and cached); --pretrained PATH or URL: "
                        "those weights (default: random initialisation, or a checkpoint's own weights)")


def add_augment(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--augment", choices=AUGMENT_CHOICES, default=default,
                   help="augmentation policy on top of random crop and flip (default: "
                        f"{default if default else 'decided by the recipe'})")


def add_recipe(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--recipe", choices=RECIPE_CHOICES, default=default,
                   help=f"{RECIPE_HELP} (default: {default or 'auto'})")


def emit_json(data: Any, target: str | None) -> bool:
    """Write ``data`` where ``--json`` said: standard output for ``-`` (returns True: the text is
    replaced), else the file (atomically; prints its path; returns False)."""
    text = json.dumps(data, indent=2, default=float) + "\n"
    if target == "-":
        print(text, end="")
        return True
    from ..fsutil import atomic_write_text

    atomic_write_text(target, text)
    print(f"wrote {target}")
    return False


def state_defaults(parser: argparse.ArgumentParser) -> None:
    """Append ``(default: ...)`` to every option's help that does not say its default (switches:
    off; options left unset: the parser's ``unset_default`` text, or "none")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                state_defaults(sub)
            continue
        if not action.option_strings or action.help == argparse.SUPPRESS or action.required:
            continue
        text = action.help or ""
        if "default" in text.lower():
            continue
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreConstAction)):
            said = "off"
        elif action.default is None or action.default == []:
            said = getattr(parser, "unset_default", "none")
        elif isinstance(action.default, (list, tuple)):
            said = ",".join(map(str, action.default))
        else:
            said = str(action.default)
        action.help = f"{text} (default: {said.replace('%', '%%')})".lstrip()


def parse_phis(text: str) -> list[float]:
    """``--phi``'s comma-separated values, each once, in order."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"--phi must be comma-separated numbers such as 0,1,2,3, got {text!r}") from None
        if not (value >= -8) or value > 16:
            raise ValueError(f"phi must be between -8 (a scaled-down base) and 16, got {part}")
        if value not in out:
            out.append(value)
    return out


def load_base(text: str):
    """A base description: a JSON file, else a family name."""
    from ..arch import Network, get_network  # lazy: the parser is built without the library

    if text.endswith(".json") or Path(text).is_file():
        return Network.load(text)
    return get_network(text)
