"""One static HTML page from run, study and benchmark outputs; images embedded as data URIs.

The page leads with what a reader came for. At the top: every training run side by side (model,
data, test top-1 with its 95% interval, time) and every study's verdict. Then one section per run
(the headline sentence, curves, confusion matrix, per-class accuracy), per study (verdict, the
positive control, the candidates with their intervals, plots) and per benchmark. Configuration,
settings and the raw tables are folded away (``<details>``), each shown once.

What is recognised, searched up to three folders deep in each input:

* a training run: a folder with ``metrics.json`` or ``metrics.csv`` (``effnet train``);
* a study: a folder with ``best.json``, ``scaling.json``, ``transfer.json``, ``proxy.json``, ``race.json``,
  ``strategies.json``, ``search.json``, ``points.csv`` or ``trials.csv``
  (``effnet search ...``, ``effnet study ...``). Study files that carry paired statistics
  (``verdict``, ``control``, ``per_candidate`` rows with ``mean``, ``ci_low``/``ci_high``,
  ``diff_to_best`` and its interval, ``indistinguishable_from_best``, ``test_mean``) are shown with
  them; older files (means and standard deviations only) are shown as they are, with a verdict line
  saying that no interval was recorded;
* a benchmark: a JSON file written by ``effnet bench --json``;
* anything else (``*.json``, ``*.csv``, ``*.png``, ``*.yaml``, ``*.md``) under "other files".

A run's test accuracy carries a Wilson score interval over its test images (the interval for a
binomial proportion; the images are the sampling unit, the training seed is not varied).
"""
from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..search.results import SUMMARY_FILES, CandidateRow, StudySummary
from ..fsutil import atomic_write_text

KNOWN = (".json", ".csv", ".png", ".yaml", ".yml", ".md")
MAX_ROWS = 200
MAX_TEXT = 20_000
MAX_DEPTH = 3
RUN_FILES = ("metrics.json", "metrics.csv")
STUDY_FILES = ("best.json", "scaling.json", "transfer.json", "proxy.json", "race.json", "strategies.json",
               "search.json", "points.csv", "trials.csv")
#: Files the run and study sections render themselves (the rest go under "other files").
_RUN_SHOWN = {"metrics.json", "config.yaml", "config.json", "confusion.png"}


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1em;color:#444}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f3f3f3} td.t,th.t{text-align:left} pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em;max-height:30em}
figure{margin:.5em 0} img{max-width:100%;border:1px solid #eee} figcaption{font-size:.8em;color:#555}
.note{color:#666;font-size:.85em} .headline{font-size:1.05em;background:#f4f8ff;border-left:4px solid #4a7bd0;padding:.4em .7em}
.verdict{font-size:1.05em;background:#fff8ec;border-left:4px solid #d09a4a;padding:.4em .7em}
details{margin:.6em 0} summary{cursor:pointer;color:#345}
"""


# ----- statistics ------------------------------------------------------------------------------

def wilson_interval(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95% by default) for ``successes`` out of ``n``.

    Written here because it is four lines and the core install carries no statistics package; it
    keeps its coverage near 95% for small ``n`` and accuracies near 0 or 1, where the normal
    approximation does not.
    """
    if n <= 0:
        raise ValueError(f"an interval needs at least one trial, got n={n}")
    p = min(max(successes / n, 0.0), 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# ----- HTML pieces -----------------------------------------------------------------------------

def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_number(text: Any) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
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


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], total: int | None = None, cls: str = "") -> str:
    def cell(v: Any) -> str:
        text = _fmt(v)
        numeric = (isinstance(v, (int, float)) and not isinstance(v, bool)) or _is_number(text.rstrip("%"))
        return f"<td>{_esc(text)}</td>" if numeric else f'<td class="t">{_esc(text)}</td>'

    out = [f"<table{f' class={cls!r}' if cls else ''}><thead><tr>",
           "".join(f'<th class="t">{_esc(h)}</th>' for h in header), "</tr></thead><tbody>"]
    for row in rows[:MAX_ROWS]:
        out.append("<tr>" + "".join(cell(v) for v in row) + "</tr>")
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


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{_esc(summary)}</summary>{body}</details>" if body else ""


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _figure(size: tuple[float, float], panels: int = 1):
    """A matplotlib figure without pyplot (no global state, no display backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, panels, i + 1) for i in range(panels)]


def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


# ----- files -----------------------------------------------------------------------------------

def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.reader(f))
    if not rows:
        return [], []
    return rows[0], rows[1:]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, json.JSONDecodeError):
        return None


def _render_csv(path: Path, rel: str) -> str:
    header, rows = _read_csv(path)
    if not header:
        return f"<h3>{_esc(rel)}</h3><p class='note'>empty CSV file</p>"
    return f"<h3>{_esc(rel)}</h3>" + _table(header, rows)


def _render_bench(data: dict, rel: str) -> str:
    env = data.get("environment", {})
    cols = ["model", "impl", "path", "batch_size", "img_size", "throughput", "p50_ms", "p95_ms", "peak_mem_mib",
            "vs_best_peer", "note"]
    rows = [[r.get(c) for c in cols] for r in data.get("results", []) if isinstance(r, dict)]
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    load = env.get("load_average")
    load_text = ", ".join(f"{v:.2f}" for v in load) if isinstance(load, list) else "not recorded"
    about = (f"{env.get('date', '?')}; {env.get('cpu', '?')}, {env.get('cores', '?')} cores; load average "
             f"{load_text}; {versions}; settings {json.dumps(data.get('settings', {}))}")
    return (f"<p class='note'>{_esc(about)}</p>"
            f"{_table(['model', 'impl', 'path', 'batch', 'px', 'img/s', 'p50 ms', 'p95 ms', 'peak MiB', 'vs best peer', 'note'], rows)}")


def _render_json(path: Path, rel: str) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        return f"<h3>{_esc(rel)}</h3><p class='note'>not valid JSON: {_esc(exc)}</p>"
    if isinstance(data, dict) and data.get("kind") == "effnet.bench":
        return f"<h3>{_esc(rel)}: inference benchmark</h3>" + _render_bench(data, rel)
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        header = list(dict.fromkeys(k for r in data for k in r))
        return f"<h3>{_esc(rel)}</h3>" + _table(header, [[r.get(k) for k in header] for r in data])
    if isinstance(data, dict) and data and all(not isinstance(v, (dict, list)) or len(json.dumps(v)) <= 80
                                               for v in data.values()):
        return f"<h3>{_esc(rel)}</h3>" + _table(["key", "value"], [[k, v] for k, v in data.items()])
    return f"<h3>{_esc(rel)}</h3>" + _pre(json.dumps(data, indent=2))


def _render_file(path: Path, rel: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".png":
        return _img_tag(path.read_bytes(), rel)
    if suffix == ".csv":
        return _render_csv(path, rel)
    if suffix == ".json":
        return _render_json(path, rel)
    return f"<h3>{_esc(rel)}</h3>" + _pre(path.read_text(encoding="utf-8", errors="replace"))


def _other_files(files: Sequence[Path], root: Path, label: str = "Other files") -> str:
    if not files:
        return ""
    body = "".join(_render_file(f, str(f.relative_to(root))) for f in files)
    return _details(f"{label} ({len(files)}): {', '.join(str(f.relative_to(root)) for f in files[:6])}"
                    f"{', ...' if len(files) > 6 else ''}", body)


# ----- discovery -------------------------------------------------------------------------------

@dataclass
class Unit:
    """One thing the report shows: a training run, a study, a benchmark file, or loose results."""

    kind: str  # "run", "study", "bench" or "results"
    root: Path
    label: str
    files: list[Path] = field(default_factory=list)


def _files(root: Path) -> list[Path]:
    found = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if len(rel.parts) > MAX_DEPTH or any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and p.suffix.lower() in KNOWN:
            found.append(p)
    return found


def _is_bench(path: Path) -> bool:
    if path.suffix.lower() != ".json" or path.stat().st_size > 5_000_000:
        return False
    data = _read_json(path)
    return isinstance(data, dict) and data.get("kind") == "effnet.bench"


def _dir_kind(folder: Path) -> str | None:
    names = {p.name for p in folder.iterdir() if p.is_file()}
    if names & set(RUN_FILES):
        return "run"
    if names & set(STUDY_FILES):
        return "study"
    return None


def _discover(path: Path, label: str) -> list[Unit]:
    """The runs, studies and benchmarks under ``path`` (a folder or one file), in path order."""
    if path.is_file():
        if path.suffix.lower() not in KNOWN:
            raise ValueError(f"{path}: not a result file (expected {', '.join(KNOWN)} or a folder)")
        if _is_bench(path):
            return [Unit("bench", path.parent, label, [path])]
        kind = _dir_kind(path.parent) if path.name in RUN_FILES + STUDY_FILES else None
        if kind:
            return [Unit(kind, path.parent, label, _files(path.parent))]
        return [Unit("results", path.parent, label, [path])]
    files = _files(path)
    if not files:
        raise ValueError(f"{path}: no run, study or benchmark files found (looked for "
                         f"{', '.join('*' + k for k in KNOWN)} up to {MAX_DEPTH} folders deep)")
    unit_dirs: dict[Path, str] = {}
    for folder in sorted({path, *(f.parent for f in files)}):
        kind = _dir_kind(folder)
        if kind and not any(parent in unit_dirs for parent in folder.parents):  # a run's subfolders are its own
            unit_dirs[folder] = kind
    units: dict[Path, Unit] = {}
    loose: list[Path] = []
    benches: list[Unit] = []
    for f in files:
        owner = next((d for d in [f.parent, *f.parent.parents] if d in unit_dirs), None)
        if owner is not None:
            rel = owner.relative_to(path)
            name = label if rel == Path(".") else f"{label}/{rel}"
            units.setdefault(owner, Unit(unit_dirs[owner], owner, name)).files.append(f)
        elif _is_bench(f):
            benches.append(Unit("bench", f.parent, f"{label}/{f.relative_to(path)}", [f]))
        else:
            loose.append(f)
    out = [*units.values(), *benches]
    if loose:
        out.append(Unit("results", path, label, loose))
    return out


# ----- training runs ---------------------------------------------------------------------------

@dataclass
class RunSummary:
    label: str
    model: str | None = None
    data: str | None = None
    img_size: int | None = None
    params: int | None = None
    macs: int | None = None
    epochs: int | None = None
    train_time_s: float | None = None
    wall_time_s: float | None = None
    test_top1: float | None = None
    test_n: int | None = None
    ci: tuple[float, float] | None = None
    weights: str | None = None
    best_epoch: Any = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def headline(self) -> str:
        parts = []
        if self.test_top1 is not None:
            acc = f"test top-1 {_pct(self.test_top1)}"
            if self.ci:
                acc += f" (95% CI {_pct(self.ci[0])} to {_pct(self.ci[1])}, Wilson, n={self.test_n} test images)"
            parts.append(acc)
        else:
            parts.append("no test accuracy recorded (the run has not finished)")
        what = " on ".join(x for x in (self.model, self.data) if x)
        if what:
            parts.append(what + (f" at {self.img_size} px" if self.img_size else ""))
        cost = []
        if self.params:
            cost.append(f"{self.params / 1e6:.2f} M parameters")
        if self.macs:
            cost.append(f"{self.macs / 1e6:.1f} M multiply-adds")
        if cost:
            parts.append(", ".join(cost))
        if self.epochs is not None:
            t = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
            if self.train_time_s is not None:
                t += f", {_seconds(self.train_time_s)} training"
            if self.wall_time_s is not None:
                t += f" ({_seconds(self.wall_time_s)} wall)"
            parts.append(t)
        if self.weights:
            parts.append(f"scored with the best {self.weights} weights (epoch {self.best_epoch}, chosen on validation)")
        return "; ".join(parts)


def _history_from_csv(path: Path) -> list[dict[str, Any]]:
    header, rows = _read_csv(path)
    out = []
    for row in rows:
        if len(row) == len(header):
            out.append({k: float(v) if _is_number(v) else None for k, v in zip(header, row)})
    return out


def _run_summary(unit: Unit) -> RunSummary:
    by_name = {f.name: f for f in unit.files if f.parent == unit.root}
    s = RunSummary(label=unit.label)
    metrics = _read_json(by_name["metrics.json"]) if "metrics.json" in by_name else None
    if isinstance(metrics, dict):
        s.model, s.data = metrics.get("model"), metrics.get("data")
        s.img_size, s.params, s.macs = metrics.get("img_size"), metrics.get("params"), metrics.get("macs")
        s.epochs, s.train_time_s, s.wall_time_s = metrics.get("epochs"), metrics.get("train_time_s"), metrics.get("wall_time_s")
        s.test_top1 = metrics.get("test_top1")
        best_test = ((metrics.get("test") or {}).get("best") or {}) if isinstance(metrics.get("test"), dict) else {}
        n = best_test.get("n")
        if isinstance(s.test_top1, (int, float)) and isinstance(n, int) and n > 0:
            s.test_n = n
            s.ci = wilson_interval(round(s.test_top1 * n), n)
        s.weights = metrics.get("test_weights")
        s.best_epoch = (metrics.get("best") or {}).get("epoch") if isinstance(metrics.get("best"), dict) else None
        if isinstance(metrics.get("history"), list):
            s.history = [h for h in metrics["history"] if isinstance(h, dict)]
    if not s.history and "metrics.csv" in by_name:
        s.history = _history_from_csv(by_name["metrics.csv"])
    if s.epochs is None and s.history:
        s.epochs = int(max(h.get("epoch") or 0 for h in s.history))
    return s


_CURVES = (("loss", ("train_loss", "val_loss", "ema_val_loss")), ("top-1 accuracy", ("train_acc", "val_top1", "ema_val_top1")))


def _curves_png(history: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Loss and top-1 accuracy against epoch, training and validation (raw and EMA weights)."""
    points = [h for h in history if isinstance(h.get("epoch"), (int, float))]
    if not points:
        return None
    fig, axes = _figure((9, 3.2), panels=2)
    for ax, (title, keys) in zip(axes, _CURVES):
        for key in keys:
            pts = [(h["epoch"], h[key]) for h in points if isinstance(h.get(key), (int, float))]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(title, fontsize=9)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _png_bytes(fig)


def _runs_curves_png(runs: Sequence[RunSummary]) -> bytes | None:
    """Validation top-1 against epoch, one line per run."""
    fig, (ax,) = _figure((7, 3.4))
    for r in runs:
        pts = [(h["epoch"], h["val_top1"]) for h in r.history
               if isinstance(h.get("epoch"), (int, float)) and isinstance(h.get("val_top1"), (int, float))]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=r.label)
    if not ax.lines:
        return None
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("validation top-1")
    ax.set_title("validation top-1 by epoch, every run", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png_bytes(fig)


def _runs_table(runs: Sequence[RunSummary]) -> str:
    header = ["run", "model", "data", "px", "params (M)", "FLOPs (M mult-adds)", "epochs", "test top-1",
              "95% CI (Wilson)", "test images", "training time"]
    rows = [[r.label, r.model or "-", r.data or "-", r.img_size, None if r.params is None else round(r.params / 1e6, 2),
             None if r.macs is None else round(r.macs / 1e6, 1), r.epochs, _pct(r.test_top1),
             f"{_pct(r.ci[0])} to {_pct(r.ci[1])}" if r.ci else "-", r.test_n, _seconds(r.train_time_s)]
            for r in runs]
    return _table(header, rows, cls="runs")


def _render_run(unit: Unit, s: RunSummary) -> str:
    by_name = {f.name: f for f in unit.files if f.parent == unit.root}
    parts = [f"<p class='headline'>{_esc(s.headline())}</p>"]
    png = _curves_png(s.history)
    if png:
        parts.append(_img_tag(png, f"{unit.label}: loss and top-1 accuracy by epoch"))
    if "confusion.png" in by_name:
        parts.append(_img_tag(by_name["confusion.png"].read_bytes(), f"{unit.label}: test confusion matrix"))
    metrics = _read_json(by_name["metrics.json"]) if "metrics.json" in by_name else None
    if isinstance(metrics, dict) and isinstance(metrics.get("test"), dict):
        test = metrics["test"]
        names = metrics.get("class_names") or []
        per_class = (test.get("best") or {}).get("per_class")
        if isinstance(per_class, list) and per_class:
            names = names if len(names) == len(per_class) else [f"class {i}" for i in range(len(per_class))]
            parts.append("<h3>test accuracy per class (best weights)</h3>"
                         + _table(["class", "top-1"], [[n, _pct(a)] for n, a in zip(names, per_class)]))
        others = [f"{k} weights {_pct(v.get('top1'))}" for k, v in test.items()
                  if k != "best" and isinstance(v, dict) and v.get("top1") is not None]
        if others:
            parts.append(f"<p class='note'>Test top-1 with other weights: {_esc(', '.join(others))} "
                         "(for reference; the headline uses the weights chosen on validation).</p>")
    config = by_name.get("config.yaml") or by_name.get("config.json")
    if config is not None:
        parts.append(_details(f"Configuration ({config.name})",
                              _pre(config.read_text(encoding="utf-8", errors="replace"))))
    rest = [f for f in unit.files if not (f.parent == unit.root and f.name in _RUN_SHOWN)]
    parts.append(_other_files(rest, unit.root))
    return "".join(parts)


# ----- studies ---------------------------------------------------------------------------------

def _study_data(unit: Unit) -> StudySummary:
    """The study's summary (the first of :data:`SUMMARY_FILES` that is one), else an empty summary."""
    by_name = {f.name: f for f in unit.files if f.parent == unit.root}
    for name in SUMMARY_FILES:
        if name in by_name:
            data = _read_json(by_name[name])
            if isinstance(data, dict):
                summary = StudySummary.from_dict(data)
                if summary.is_summary():
                    return summary
    return StudySummary.from_dict({})


def _study_rows(unit: Unit, data: StudySummary) -> list[CandidateRow]:
    rows = data.rows()
    if rows:
        return rows
    points = next((f for f in unit.files if f.parent == unit.root and f.name == "points.csv"), None)
    if points is not None:
        header, table = _read_csv(points)
        return [CandidateRow.from_dict({k: (float(v) if _is_number(v) else (v or None)) for k, v in zip(header, r)})
                for r in table if len(r) == len(header)]
    return []


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _with_ci(value: Any, lo: Any, hi: Any, signed: bool = False, std: Any = None) -> str | None:
    v = _num(value)
    if v is None:
        return None
    fmt = "{:+.4f}" if signed else "{:.4f}"
    text = fmt.format(v)
    a, b = _num(lo), _num(hi)
    if a is not None and b is not None:
        text += f" [{fmt.format(a)}, {fmt.format(b)}]"
    elif _num(std) is not None:
        text += f" ± {_num(std):.4f} (SD)"
    return text


def _candidates_table(rows: Sequence[CandidateRow]) -> str:
    columns: list[tuple[str, Any]] = [
        ("candidate", CandidateRow.label),
        ("role", lambda r: r.role),
        ("FLOPs x base", lambda r: None if _num(r.achieved_ratio) is None else f"{_num(r.achieved_ratio):.2f}"),
        ("FLOPs (M mult-adds)", lambda r: None if _num(r.macs) is None else f"{_num(r.macs) / 1e6:.1f}"),
        ("px", lambda r: r.resolution),
        ("seeds", lambda r: r.seeds_done),
        ("val acc [95% CI]", lambda r: _with_ci(r.accuracy(), r.ci_low, r.ci_high, std=r.extra.get("std"))),
        ("d(best) [95% CI]", lambda r: _with_ci(r.diff_to_best, r.diff_to_best_ci_low, r.diff_to_best_ci_high, True)),
        ("same as best?", lambda r: None if r.indistinguishable_from_best is None else
            ("best" if r.is_best else ("yes" if r.indistinguishable_from_best else "no"))),
        ("d(base) [95% CI]", lambda r: _with_ci(r.diff_to_baseline, r.diff_to_baseline_ci_low,
                                                r.diff_to_baseline_ci_high, True)),
        ("test acc [95% CI]", lambda r: _with_ci(r.test_mean, r.test_ci_low, r.test_ci_high)),
    ]
    cells = [[fn(r) for _, fn in columns] for r in rows]
    keep = [j for j in range(len(columns)) if any(c[j] not in (None, "", "-") for c in cells)]
    return _table([columns[j][0] for j in keep], [[c[j] for j in keep] for c in cells])


def _verdict(data: StudySummary, rows: Sequence[CandidateRow]) -> str:
    text = data.verdict_text()
    if text:
        return text
    best = data.best
    if isinstance(best, dict) and all(_num(best.get(k)) is not None for k in ("alpha", "beta", "gamma")):
        acc = next((_num(best.get(k)) for k in ("val_acc", "acc", "mean") if _num(best.get(k)) is not None), None)
        acc_text = f", validation accuracy {acc:.4f}" if acc is not None else ""
        return (f"Highest mean: alpha {best['alpha']:g}, beta {best['beta']:g}, gamma {best['gamma']:g}{acc_text} "
                f"over {best.get('seeds_done', '?')} seed(s). No confidence intervals were recorded in this study "
                "file, so whether it beats the other candidates is not tested.")
    if rows:
        return (f"{len(rows)} candidates, means over seeds. No confidence intervals were recorded in this study "
                "file, so no difference between them is tested.")
    return "No verdict recorded."


def _render_study(unit: Unit, summary: StudySummary, rows: Sequence[CandidateRow]) -> str:
    parts = []
    for result in (summary.control_result(), summary.negative_result()):  # the controls first, then the verdict
        text = result.text() if result else None
        if text:
            parts.append(f"<p class='control'>{_esc(text)}</p>")
    parts.append(f"<p class='verdict'>{_esc(_verdict(summary, rows))}</p>")
    data = summary.to_dict()
    diffs = data.get("imagenet_minus_scratch")
    if isinstance(diffs, dict):
        items = "".join(
            f"<li>{_esc('all models' if k == 'pooled' else str(k))}: {100 * d['diff']:+.1f} points (95% CI "
            f"{100 * d['ci_low']:+.1f} to {100 * d['ci_high']:+.1f})</li>" for k, d in diffs.items()
            if isinstance(d, dict) and all(isinstance(d.get(f), (int, float)) for f in ("diff", "ci_low", "ci_high")))
        parts.append(f"<p>ImageNet initialisation minus training from scratch, test top-1, paired:</p><ul>{items}</ul>")
    sat = data.get("saturation")
    if isinstance(sat, dict) and isinstance(sat.get("methods"), dict):
        items = "".join(f"<li>{_esc(str(m))}: {_esc(str(v.get('text', '')))}</li>" for m, v in sat["methods"].items()
                        if isinstance(v, dict))
        parts.append(f"<p>Saturation (Figure 3), each step's gain tested:</p><ul>{items}</ul>")
    if isinstance(data.get("measured"), str):
        parts.append(f"<p class='note'>Measured: {_esc(data['measured'])}.</p>")
    if rows:
        parts.append(_candidates_table(rows))
    pngs = [f for f in unit.files if f.suffix.lower() == ".png"]
    parts.extend(_img_tag(f.read_bytes(), f"{unit.label}: {f.relative_to(unit.root)}") for f in pngs)
    settings = {k: data[k] for k in ("settings", "progress", "constraint", "matched_cost", "selection", "storage", "study")
                if k in data}
    if settings:
        parts.append(_details("Study settings and progress", _pre(json.dumps(settings, indent=2, default=str))))
    shown = {f for f in unit.files if f.parent == unit.root and f.name in SUMMARY_FILES and data}
    rest = [f for f in unit.files if f not in shown and f.suffix.lower() != ".png"]
    parts.append(_other_files(rest, unit.root, "Tables and notes"))
    return "".join(parts)


# ----- the page --------------------------------------------------------------------------------

def _anchor(i: int) -> str:
    return f"u{i}"


def build_report(inputs: Sequence[str | Path], title: str = "effnet report") -> str:
    """The HTML text for ``inputs`` (folders or single result files)."""
    if not inputs:
        raise ValueError("no run, study or benchmark folders given")
    units: list[Unit] = []
    for item in inputs:
        path = Path(item).expanduser()
        if not path.exists():
            raise ValueError(f"not found: {item}")
        units.extend(_discover(path, path.name or str(path)))

    runs = [(i, u, _run_summary(u)) for i, u in enumerate(units) if u.kind == "run"]
    studies = [(i, u, _study_data(u)) for i, u in enumerate(units) if u.kind == "study"]
    study_rows = {i: _study_rows(u, d) for i, u, d in studies}

    glance: list[str] = []
    if len(runs) > 1:  # one run leads with its own section, headline first
        glance.append(f"<h2>Training runs side by side ({len(runs)})</h2>")
        glance.append(_runs_table([s for _, _, s in runs]))
    if studies:
        glance.append(f"<h2>Studies ({len(studies)})</h2><ul>")
        for i, u, d in studies:
            glance.append(f"<li><a href='#{_anchor(i)}'>{_esc(u.label)}</a>: {_esc(_verdict(d, study_rows[i]))}</li>")
        glance.append("</ul>")
    if len(runs) > 1:
        png = _runs_curves_png([s for _, _, s in runs])
        if png:
            glance.append(_img_tag(png, "validation top-1 by epoch, every run"))
    benches = [u for u in units if u.kind == "bench"]
    if benches:
        glance.append(f"<p class='note'>{len(benches)} benchmark file(s), below.</p>")

    sections = []
    kinds = {"run": "training run", "study": "search / study", "bench": "inference benchmark", "results": "results"}
    summaries = {i: s for i, _, s in runs}
    study_data = {i: d for i, _, d in studies}
    order = {"run": 0, "study": 1, "bench": 2, "results": 3}
    for i, u in sorted(enumerate(units), key=lambda iu: (order[iu[1].kind], iu[0])):
        if u.kind == "run":
            body = _render_run(u, summaries[i])
        elif u.kind == "study":
            body = _render_study(u, study_data[i], study_rows[i])
        elif u.kind == "bench":
            body = _render_bench(_read_json(u.files[0]) or {}, u.label)
        else:
            body = "".join(_render_file(f, str(f.relative_to(u.root))) for f in u.files)
        sections.append(f"<section id='{_anchor(i)}' class='{u.kind}'><h2>{_esc(u.label)} "
                        f"<small class='note'>({kinds[u.kind]})</small></h2>{body}</section>")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"
            f"<p class='note'>Generated {stamp} from {len(inputs)} input(s). FLOPs are multiply-adds. "
            "Intervals are 95%.</p>" + "".join(glance) + "".join(sections) + "</body></html>\n")


def write_report(inputs: Sequence[str | Path], out: str | Path, title: str = "effnet report") -> Path:
    text = build_report(inputs, title)
    atomic_write_text(out, text)
    return Path(out)
