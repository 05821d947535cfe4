"""One vocabulary: a flag means the same, and is typed the same, in every command that has it."""
from __future__ import annotations

import argparse
from collections import defaultdict

from effnet.cli import build_parser


def _walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, prefix + (name,))
        else:
            yield prefix, action


def _kind(action: argparse.Action) -> tuple:
    if isinstance(action, (argparse._StoreTrueAction,)) or (
            isinstance(action, argparse._StoreConstAction) and action.const is True):
        return ("switch",)
    typ = getattr(action.type, "__name__", action.type)
    return (type(action).__name__, action.nargs, typ, tuple(action.choices) if action.choices else None,
            action.const)


def test_no_flag_is_spelled_or_typed_two_ways():
    uses = defaultdict(list)
    for prefix, action in _walk(build_parser()):
        for flag in action.option_strings:
            if flag.startswith("--") and flag not in ("--help", "--version"):
                uses[flag].append((" ".join(prefix), _kind(action)))
    clashes = {flag: u for flag, u in uses.items() if len({k for _, k in u}) > 1}
    assert not clashes, "\n".join(f"{flag}: " + "; ".join(f"{c} {k}" for c, k in u) for flag, u in clashes.items())
    spellings = defaultdict(set)
    for flag in uses:
        spellings[flag.replace("-", "").replace("_", "")].add(flag)
    assert all(len(s) == 1 for s in spellings.values()), [s for s in spellings.values() if len(s) > 1]


def test_every_option_says_its_default():
    missing = []
    for prefix, action in _walk(build_parser()):
        if not action.option_strings or action.help == argparse.SUPPRESS or action.option_strings[0] in (
                "-h", "--help", "--version") or action.required:
            continue
        text = (action.help or "")
        if "default" not in text.lower() and "%(default)" not in text:
            missing.append(f"{' '.join(prefix)} {action.option_strings[0]}")
    assert not missing, missing


def test_json_alone_prints_and_json_file_writes(tmp_path, capsys):
    import json

    from effnet.cli import main

    assert main(["info", "efficientnet_b0", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    target = tmp_path / "info.json"
    assert main(["info", "efficientnet_b0", "--json", str(target)]) == 0
    out = capsys.readouterr().out
    assert json.loads(target.read_text()) == printed and "efficientnet_b0" in out and f"wrote {target}" in out


def test_the_cli_choices_are_the_librarys():
    from effnet.cli.common import AUGMENT_CHOICES, RECIPE_CHOICES
    from effnet.data import AUGMENTATIONS
    from effnet.search.recipes import PROXY_RECIPES
    from effnet.train.config import RECIPES

    assert set(AUGMENT_CHOICES) == set(AUGMENTATIONS)
    assert set(RECIPE_CHOICES) == set(RECIPES) == set(PROXY_RECIPES)
