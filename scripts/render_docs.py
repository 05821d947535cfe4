#!/usr/bin/env python3
"""Write the numbers of docs/ and the README from the JSON results in the repository.

Each document has a template in ``docs/src/`` (``README.md`` has ``docs/src/README.md``); this
script fills the template's placeholders from JSON files and writes the document. With ``--check``
it writes nothing and exits 1 when a document differs from what its template and JSON give, or
when a template's measured sections hold a number typed by hand.

Placeholders:

* ``{{NAME:PATH|FMT}}``: the value at ``PATH`` in ``NAME.json`` (looked up in ``docs/`` then in
  ``benchmarks/results/``). ``PATH`` is dot-separated; a segment is a key, a list index, or
  ``[key=value,key2=value2]`` (the first item of a list that matches); ``''`` is the empty key. ``FMT`` is a Python format
  spec (``.3f``, ``+.4f``, ``,``) or one of ``pts`` (a fraction as signed points, ``+8.7``), ``pt``
  (unsigned points), ``pct`` (a percentage), ``M`` (millions), ``min`` (seconds as minutes),
  ``list`` (a list joined by commas), ``count`` (a list's length), ``yesno``, ``none`` (as text, or "none" where the value is null by design), ``s`` (as text, the default).
* ``{{table NAME:PATH | Header=field:FMT, Header=ci(prefix):FMT, ...}}`` on a line of its own: a
  Markdown table with a row per item of the list at ``PATH``; ``ci(prefix)`` shows
  ``prefix_ci_low`` to ``prefix_ci_high`` (``ci()`` for ``ci_low``/``ci_high``).

Sections whose heading says "Measured" or "Results", and whole templates that begin with
``<!-- every number rendered -->``, may hold no number outside placeholders, code, and a few
names and labels (Figure 3, Table 5, B0, 95%, batch 32, "contains 0").
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "docs" / "src"
SEARCH = (ROOT / "docs", ROOT / "benchmarks" / "results")
PLACEHOLDER = re.compile(r"\{\{(?!table )\s*([\w.-]+):([^|}]*?)\s*(?:\|\s*([^}]*?))?\s*\}\}")
TABLE = re.compile(r"^\{\{table\s+([\w.-]+):([^|}]*?)\s*\|\s*(.*?)\}\}\s*$")
STRICT_MARK = "<!-- every number rendered -->"


class RenderError(Exception):
    pass


def target_of(template: Path) -> Path:
    return ROOT / "README.md" if template.name == "README.md" else ROOT / "docs" / template.name


def load(name: str, cache: dict[str, Any]) -> Any:
    if name not in cache:
        for folder in SEARCH:
            p = folder / f"{name}.json"
            if p.exists():
                cache[name] = json.loads(p.read_text())
                break
        else:
            raise RenderError(f"no {name}.json in docs/ or benchmarks/results/")
    return cache[name]


def lookup(data: Any, path: str, where: str) -> Any:
    cur = data
    for seg in [s for s in re.split(r"\.(?![^\[]*\])", path.strip()) if s]:
        if seg.startswith("[") and seg.endswith("]"):
            conds = [c.split("=", 1) for c in seg[1:-1].split(",")]
            if not isinstance(cur, list) or any(len(c) != 2 for c in conds):
                raise RenderError(f"{where}: {seg} needs a list and key=value conditions")
            hit = [x for x in cur if isinstance(x, dict) and all(str(x.get(k.strip())) == v.strip() for k, v in conds)]
            if not hit:
                raise RenderError(f"{where}: no item with {seg[1:-1]}")
            cur = hit[0]
        elif isinstance(cur, list) and re.fullmatch(r"-?\d+", seg):
            cur = cur[int(seg)]
        elif isinstance(cur, dict) and (seg if seg != "''" else "") in cur:
            cur = cur[seg if seg != "''" else ""]
        else:
            raise RenderError(f"{where}: no {seg!r} in {path!r}")
    return cur


def fmt(value: Any, spec: str | None, where: str) -> str:
    spec = (spec or "s").strip()
    if spec == "none":  # a value that may be null by design (a study's winner): "none" then
        return "none" if value is None else str(value)
    if value is None:
        raise RenderError(f"{where}: the value is missing (null)")
    if spec == "s":
        return str(value)
    if spec == "yesno":
        return "yes" if value else "no"
    if spec == "list":
        return ", ".join(map(str, value))
    if spec == "count":
        return str(len(value))
    if spec == "pts":
        return f"{100 * value:+.1f}"
    if spec == "pt":
        return f"{100 * abs(value):.1f}"
    if spec == "pct":
        return f"{100 * value:.0f}%"
    if spec == "M":
        return f"{value / 1e6:.1f}"
    if spec == "min":
        return f"{value / 60:.0f}"
    try:
        return format(value, spec)
    except (ValueError, TypeError) as e:
        raise RenderError(f"{where}: cannot format {value!r} with {spec!r}: {e}") from None


def table(name: str, path: str, columns: str, cache: dict[str, Any], where: str) -> str:
    rows = lookup(load(name, cache), path, where)
    cols = []
    for part in [c.strip() for c in columns.split(",") if c.strip()]:
        header, _, rest = part.partition("=")
        field, _, spec = rest.partition(":")
        cols.append((header.strip(), field.strip(), spec.strip() or "s"))
    out = ["| " + " | ".join(h for h, _, _ in cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = []
        for _, field, spec in cols:
            m = re.fullmatch(r"ci\((\w*)\)", field)
            if m:
                pre = f"{m.group(1)}_" if m.group(1) else ""
                lo, hi = row.get(f"{pre}ci_low"), row.get(f"{pre}ci_high")
                cells.append("" if lo is None or hi is None else f"{fmt(lo, spec, where)} to {fmt(hi, spec, where)}")
            else:
                try:
                    v = lookup(row, field, where)
                except RenderError:
                    v = None
                cells.append("" if v is None else fmt(v, spec, where))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def render(template: Path, cache: dict[str, Any] | None = None) -> str:
    cache = {} if cache is None else cache
    lines = []
    for n, line in enumerate(template.read_text().splitlines(), 1):
        where = f"{template.name}:{n}"
        m = TABLE.match(line.strip())
        if m:
            lines.append(table(*m.groups(), cache, where))
            continue
        lines.append(PLACEHOLDER.sub(lambda mm: fmt(lookup(load(mm.group(1), cache), mm.group(2), where),
                                                      mm.group(3), where), line))
    text = "\n".join(lines) + "\n"
    return text.replace(STRICT_MARK + "\n", "")


NUMBER = re.compile(r"(?<![\w.+-])[-+]?\d+(?:,\d{3})*(?:\.\d+)?%?(?![\w%])")
ALLOWED = re.compile(r"(Figure|Table|Figures|Tables|issue|step|Step)\s+\d+$|95%$|\b(contains|excludes|above|below) 0$|\bbatch \d+$")


def hand_typed_numbers(template: Path) -> list[str]:
    """Numbers typed by hand in the sections that may hold only rendered ones."""
    text = template.read_text()
    strict_file = text.startswith(STRICT_MARK)
    strict, fenced, found = strict_file, False, []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.startswith("#"):
            strict = strict_file or bool(re.search(r"Measured|Results", line))
            continue
        if not strict:
            continue
        bare = PLACEHOLDER.sub("", line)
        if TABLE.match(bare.strip()):
            continue
        bare = re.sub(r"`[^`]*`", "", bare)
        bare = re.sub(r"\]\([^)]*\)", "]", bare)  # link targets
        bare = re.sub(r"<!--.*?-->", "", bare)
        for m in NUMBER.finditer(bare):
            before = bare[:m.end()]
            if ALLOWED.search(before):
                continue
            found.append(f"{template.name}:{n}: {m.group(0)!r} in {line.strip()[:80]!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="render docs/ and the README from their templates and JSON results")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a document is out of date")
    args = ap.parse_args(argv)
    cache: dict[str, Any] = {}
    problems = []
    for template in sorted(TEMPLATES.glob("*.md")):
        try:
            text = render(template, cache)
        except RenderError as e:
            problems.append(str(e))
            continue
        problems += [f"hand-typed number: {p}" for p in hand_typed_numbers(template)]
        target = target_of(template)
        if args.check:
            if not target.exists() or target.read_text() != text:
                problems.append(f"{target.relative_to(ROOT)} differs from {template.relative_to(ROOT)} rendered "
                                "(run scripts/render_docs.py)")
        elif not target.exists() or target.read_text() != text:
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
