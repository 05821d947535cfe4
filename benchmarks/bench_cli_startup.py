"""Wall time of ``effnet`` commands that should answer at once, for two source trees, interleaved.

    python benchmarks/bench_cli_startup.py --tree before=/tmp/before/src --tree after=src \
        --repeats 9 --out benchmarks/results/cli-startup

Each repetition runs every command once under every tree (``python -m effnet ...`` with the tree
first on ``PYTHONPATH``), in turn, so a change in machine load affects both alike. Reports the
median and the interquartile range of wall and CPU time per command and tree, the interpreter's own start-up
(``python -c pass``) for reference, the load average before and after, and the versions.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [
    ["--help"],
    ["train", "--help"],
    ["search", "scale", "--help"],
    ["info", "efficientnet_b0"],
    ["scale", "--base", "efficientnet_b0", "--phi", "0,1,2,3", "--out", "{tmp}/family"],
    ["search", "scale", "--list", "--data", "synthetic"],
    # a first run: the solved grid is not on disk yet (leading NAME=value items set the environment)
    ["EFFNET_PLAN_CACHE=off", "search", "scale", "--list", "--data", "synthetic"],
]


def _time(argv: list[str], src: str | None, bytecode: bool = True) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run. With ``bytecode`` the child may read and
    write ``__pycache__`` as Python does by default, whatever ``PYTHONDONTWRITEBYTECODE`` says here."""
    env = dict(os.environ)
    while argv and "=" in argv[0] and not argv[0].startswith("-"):
        name, value = argv[0].split("=", 1)
        env[name] = value
        argv = argv[1:]
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    if src is not None:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, *(["-m", "effnet", *argv] if src is not None else ["-c", "pass"])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr[-500:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", required=True, metavar="NAME=SRC", help="a source tree to time")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", required=True, help="path stem for .json and .md")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="compile every module on every run (PYTHONDONTWRITEBYTECODE=1), as some sandboxes do")
    args = ap.parse_args()
    bytecode = not args.no_bytecode_cache
    trees = dict(t.split("=", 1) for t in args.tree)
    load_before = os.getloadavg()
    times: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    cpu: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    base: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for argv in COMMANDS:  # untimed: fills __pycache__ where bytecode may be written
            for src in trees.values():
                _time([a.format(tmp=tmp) for a in argv], src, bytecode)
        for _ in range(args.repeats):
            base.append(_time([], None, bytecode)[0])
            for argv in COMMANDS:
                argv = [a.format(tmp=tmp) for a in argv]
                words = [a if not a.startswith(tmp) else "DIR" for a in argv]
                n_env = next(i for i, w in enumerate(words) if "=" not in w or w.startswith("-"))
                key = " ".join(words[:n_env] + ["effnet"] + words[n_env:])
                for name, src in trees.items():
                    wall, used = _time(argv, src, bytecode)
                    times[name].setdefault(key, []).append(wall)
                    cpu[name].setdefault(key, []).append(used)
    load_after = os.getloadavg()
    import torch

    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "load_average_before": load_before, "load_average_after": load_after, "repeats": args.repeats,
        "interpreter_start_s": _quartiles(base), "trees": trees, "bytecode_cache": bytecode,
        "seconds": {name: {k: _quartiles(v) for k, v in cmds.items()} for name, cmds in times.items()},
        "cpu_seconds": {name: {k: _quartiles(v) for k, v in cmds.items()} for name, cmds in cpu.items()},
        "raw": times, "raw_cpu": cpu,
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    names = list(trees)
    lines = [f"# effnet command start-up ({result['date']})", "",
             f"{args.repeats} runs per command and tree, interleaved; median (interquartile range) of wall time in "
             f"seconds, `python -m effnet ...` in a fresh interpreter. Python {result['machine']['python']}, torch "
             f"{result['machine']['torch']}, {result['machine']['cores']} cores; load average (1, 5, 15 min) "
             f"{', '.join(f'{x:.2f}' for x in load_before)} before and {', '.join(f'{x:.2f}' for x in load_after)} "
             f"after. The interpreter alone (`python -c pass`): {_fmt(result['interpreter_start_s'])}. "
             + ("Bytecode cache on (Python's default; one untimed run per command first)." if bytecode else
                "Bytecode cache off (PYTHONDONTWRITEBYTECODE=1): every module is compiled on every run."), "",
             "Wall time counts waiting for a core on a loaded machine; CPU time (user + system of the child "
             "process) is what the command itself costs.", "",
             "| command | " + " | ".join(f"{n} wall | {n} CPU" for n in names) + " |",
             "|---|" + "---|---|" * len(names)]
    for key in times[names[0]]:
        lines.append(f"| `{key}` | " + " | ".join(f"{_fmt(result['seconds'][n][key])} | {_fmt(result['cpu_seconds'][n][key])}"
                                                  for n in names) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _fmt(q) -> str:
    return f"{q[1]:.3f} ({q[0]:.3f}-{q[2]:.3f})"


if __name__ == "__main__":
    main()
