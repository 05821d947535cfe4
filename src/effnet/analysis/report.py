"""One static HTML page from run, study and benchmark outputs; images embedded as data URIs.

Recognised files (searched up to three folders deep): ``*.json`` (benchmark results written by
``effnet bench --json``, metrics, summaries, configs), ``*.csv`` (metrics, trials), ``*.png``
(confusion matrices, plots), ``*.yaml``/``*.yml`` and ``*.md`` (configs, study notes). A metrics CSV
with an ``epoch`` column also gets a plot of its curves.
"""
from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
from pathlib import Path
from typing import Any, Sequence

from ..fsutil import atomic_write_text

KNOWN = (".json", ".csv", ".png", ".yaml", ".yml", ".md")
MAX_ROWS = 200
MAX_TEXT = 20_000
MAX_DEPTH = 3

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em} h3{font-size:1em;color:#444}
table{border-collapse:collapse;font-size:.82em;margin:.5em 0} td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f3f3f3} td.t,th.t{text-align:left} pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em;max-height:30em}
figure{margin:.5em 0} img{max-width:100%;border:1px solid #eee} figcaption{font-size:.8em;color:#555} .note{color:#666;font-size:.85em}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "-"
    if isinstance(value, str) and ("." in value or "e" in value.lower()) and _is_number(value):
        return f"{float(value):.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], total: int | None = None) -> str:
    def cell(tag: str, v: Any) -> str:
        text = _fmt(v)
        cls = "" if isinstance(v, (int, float)) or _is_number(text) else ' class="t"'
        return f"<{tag}{cls}>{_esc(text)}</{tag}>"

    out = ["<table><thead><tr>", "".join(f'<th class="t">{_esc(h)}</th>' for h in header), "</tr></thead><tbody>"]
    for row in rows[:MAX_ROWS]:
        out.append("<tr>" + "".join(cell("td", v) for v in row) + "</tr>")
    out.append("</tbody></table>")
    n = total if total is not None else len(rows)
    if n > MAX_ROWS:
        out.append(f'<p class="note">first {MAX_ROWS} of {n} rows shown</p>')
    return "".join(out)


def _img_tag(data: bytes, caption: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<figure><img src="{uri}" alt="{_esc(caption)}"><figcaption>{_esc(caption)}</figcaption></figure>'


def _pre(text: str) -> str:
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f"\n... ({len(text) - MAX_TEXT} more characters)"
    return f"<pre>{_esc(text)}</pre>"


# ----- file renderers ------------------------------------------------------------------------

def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.reader(f))
    if not rows:
        return [], []
    return rows[0], rows[1:]


def _curves_png(header: list[str], rows: list[list[str]]) -> bytes | None:
    """Metric curves against ``epoch`` (losses and accuracies in two panels)."""
    if "epoch" not in header or not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = header.index("epoch")
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if len(row) != len(header) or not _is_number(row[e]):
            continue
        for i, name in enumerate(header):
            if i != e and name not in ("step", "lr") and _is_number(row[i]):
                series.setdefault(name, []).append((float(row[e]), float(row[i])))
    if not series:
        return None
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, pts in series.items():
        ax = ax_loss if "loss" in name else ax_acc
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name)
    for ax, title in ((ax_loss, "loss"), (ax_acc, "accuracy / other")):
        ax.set_xlabel("epoch")
        ax.set_title(title, fontsize=9)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _render_csv(path: Path, rel: str) -> str:
    header, rows = _read_csv(path)
    if not header:
        return f"<h3>{_esc(rel)}</h3><p class='note'>empty CSV file</p>"
    parts = [f"<h3>{_esc(rel)}</h3>", _table(header, rows)]
    png = _curves_png(header, rows)
    if png:
        parts.append(_img_tag(png, f"{rel}: curves by epoch"))
    return "".join(parts)


def _render_bench(data: dict, rel: str) -> str:
    env = data.get("environment", {})
    cols = ["model", "impl", "path", "batch_size", "img_size", "throughput", "p50_ms", "p95_ms", "peak_mem_mib",
            "vs_best_peer", "note"]
    rows = [[r.get(c) for c in cols] for r in data.get("results", [])]
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    load = env.get("load_average")
    load_text = ", ".join(f"{v:.2f}" for v in load) if isinstance(load, list) else "not recorded"
    about = (f"{env.get('date', '?')}; {env.get('cpu', '?')}, {env.get('cores', '?')} cores; load average "
             f"{load_text}; {versions}; settings {json.dumps(data.get('settings', {}))}")
    return (f"<h3>{_esc(rel)}: inference benchmark</h3><p class='note'>{_esc(about)}</p>"
            f"{_table(['model', 'impl', 'path', 'batch', 'px', 'img/s', 'p50 ms', 'p95 ms', 'peak MiB', 'vs best peer', 'note'], rows)}")


def _render_json(path: Path, rel: str) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        return f"<h3>{_esc(rel)}</h3><p class='note'>not valid JSON: {_esc(exc)}</p>"
    if isinstance(data, dict) and data.get("kind") == "effnet.bench":
        return _render_bench(data, rel)
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        header = list(dict.fromkeys(k for r in data for k in r))
        return f"<h3>{_esc(rel)}</h3>" + _table(header, [[r.get(k) for k in header] for r in data])
    if isinstance(data, dict) and data and all(not isinstance(v, (dict, list)) or len(json.dumps(v)) <= 80
                                               for v in data.values()):
        return f"<h3>{_esc(rel)}</h3>" + _table(["key", "value"], [[k, v] for k, v in data.items()])
    return f"<h3>{_esc(rel)}</h3>" + _pre(json.dumps(data, indent=2))


def _render(path: Path, rel: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".png":
        return _img_tag(path.read_bytes(), rel)
    if suffix == ".csv":
        return _render_csv(path, rel)
    if suffix == ".json":
        return _render_json(path, rel)
    return f"<h3>{_esc(rel)}</h3>" + _pre(path.read_text(encoding="utf-8", errors="replace"))


# ----- collection ----------------------------------------------------------------------------

def _files(root: Path) -> list[Path]:
    found = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if len(rel.parts) > MAX_DEPTH or any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and p.suffix.lower() in KNOWN:
            found.append(p)
    return found


def _kind(files: list[Path]) -> str:
    names = {p.name for p in files}
    if names & {"metrics.csv", "metrics.json"}:
        return "training run"
    if names & {"trials.csv", "best.json", "scaling.json"}:
        return "search / study"
    return "results"


def build_report(inputs: Sequence[str | Path], title: str = "effnet report") -> str:
    """The HTML text for ``inputs`` (folders or single result files)."""
    if not inputs:
        raise ValueError("no run, study or benchmark folders given")
    sections = []
    for item in inputs:
        path = Path(item).expanduser()
        if not path.exists():
            raise ValueError(f"not found: {item}")
        if path.is_file():
            if path.suffix.lower() not in KNOWN:
                raise ValueError(f"{item}: not a result file (expected {', '.join(KNOWN)} or a folder)")
            files, root, kind = [path], path.parent, "results"
        else:
            files, root = _files(path), path
            if not files:
                raise ValueError(f"{item}: no run, study or benchmark files found (looked for "
                                 f"{', '.join('*' + k for k in KNOWN)} up to {MAX_DEPTH} folders deep)")
            kind = _kind(files)
        body = "".join(_render(f, str(f.relative_to(root))) for f in files)
        sections.append(f"<section><h2>{_esc(path.name or str(path))} <small class='note'>({_esc(kind)}, "
                        f"{len(files)} file{'s' if len(files) != 1 else ''})</small></h2>{body}</section>")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"
            f"<p class='note'>Generated {stamp} from {len(inputs)} input(s). FLOPs are multiply-adds.</p>"
            + "".join(sections) + "</body></html>\n")


def write_report(inputs: Sequence[str | Path], out: str | Path, title: str = "effnet report") -> Path:
    text = build_report(inputs, title)
    atomic_write_text(out, text)
    return Path(out)
