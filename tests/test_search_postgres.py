"""Two worker processes share one grid-search study on a real PostgreSQL server on loopback.

The server comes from ``scripts/ensure_postgres.sh`` (installs Debian's postgresql with apt-get when
missing, starts a private cluster on 127.0.0.1, creates the test role and database; idempotent).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ensure_postgres.sh"

WORKER = textwrap.dedent('''
    import os, sys, time
    from effnet.arch import get_network
    from effnet.search.budget import Budget
    from effnet.search.kinds.grid import ScaleSearchConfig, run_scale_search
    from effnet.search.runner import StudyOptions

    out, log, url, name = sys.argv[1:5]

    sleep = float(sys.argv[5]) if len(sys.argv) > 5 else 0.2

    class Slow:
        num_classes = 3
        def __call__(self, desc, img_size, seed, reporter, **control):
            with open(log, "a") as f:
                f.write(f"start {desc.name} {seed} {os.getpid()}\\n")
            time.sleep(sleep)
            with open(log, "a") as f:
                f.write(f"done {desc.name} {seed} {os.getpid()}\\n")
            return {"val_acc": 0.5 + img_size / 1000}

    cfg = ScaleSearchConfig(get_network("efficientnet_b0"), data="synthetic", img_size=32, budget=Budget(1),
                            grid_step=0.1, tolerance=0.05, max_coefficient=1.4)
    run_scale_search(cfg, StudyOptions(out, storage=url, study_name=name, heartbeat_interval=1, grace_period=3,
                                       storage_wait_s=90), trainer=Slow())
''')


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory) -> str:
    url_file = tmp_path_factory.mktemp("pg") / "url"
    env = {**os.environ, "EFFNET_PG_URL_FILE": str(url_file)}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"scripts/ensure_postgres.sh failed: {proc.stderr.strip()}"
    assert proc.stdout == ""  # silent on success
    return url_file.read_text().strip()


def test_ensure_postgres_is_idempotent(postgres_url, tmp_path):
    env = {**os.environ, "EFFNET_PG_URL_FILE": str(tmp_path / "url")}
    again = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""
    assert (tmp_path / "url").read_text().strip() == postgres_url


def _expected() -> int:
    from effnet.arch import get_network
    from effnet.search.budget import Budget
    from effnet.search.kinds.grid import ScaleSearchConfig

    return len(ScaleSearchConfig(get_network("efficientnet_b0"), data="synthetic", img_size=32, budget=Budget(1),
                                 grid_step=0.1, tolerance=0.05, max_coefficient=1.4).plan(3))


def _worker(tmp_path: Path, i: int, log: Path, url: str, name: str, sleep: float = 0.2) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / f"out{i}"), str(log), url, name, str(sleep)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _keyed(url: str, name: str):
    """The study's trials that belong to the plan (a keyless 'spare' trial, made when two workers race
    for the last queued trial, is pruned at once and carries no result)."""
    import optuna

    trials = optuna.load_study(study_name=name, storage=url).trials
    spare = [t for t in trials if "effnet.key" not in t.user_attrs]
    assert all(t.state.name == "PRUNED" and t.user_attrs.get("effnet.spare") for t in spare)
    return [t for t in trials if "effnet.key" in t.user_attrs]


def test_two_workers_share_one_postgres_study_and_run_every_point_exactly_once(postgres_url, tmp_path):
    name = f"shared-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "log.txt"
    workers = [_worker(tmp_path, i, log, postgres_url, name) for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err.decode()[-3000:]
    runs = [tuple(line.split()[1:3]) for line in log.read_text().splitlines() if line.startswith("start")]
    expected = _expected()
    assert len(runs) == len(set(runs)) == expected  # every candidate ran exactly once
    assert len({line.split()[3] for line in log.read_text().splitlines()}) == 2  # both workers took trials
    trials = _keyed(postgres_url, name)
    assert len(trials) == expected and all(t.state.name == "COMPLETE" for t in trials)
    # both workers wrote the same, complete report
    assert (tmp_path / "out0" / "trials.csv").read_text() == (tmp_path / "out1" / "trials.csv").read_text()


def test_workers_ride_out_a_postgres_restart_and_nothing_is_lost_or_counted_twice(tmp_path):
    """A private server (own folder and port: the shared one is never stopped) goes away for a few
    seconds while a worker is mid-study; the worker backs off, carries on, and the study completes
    with every candidate complete exactly once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pg_dir = Path(f"/tmp/effnet-pgfault-{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "EFFNET_PG_DIR": str(pg_dir), "EFFNET_PG_PORT": str(port),
           "EFFNET_PG_URL_FILE": str(tmp_path / "url")}

    def script(*args: str) -> None:
        proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr

    script()
    try:
        url = (tmp_path / "url").read_text().strip()
        name = "outage"
        log = tmp_path / "log.txt"
        worker = _worker(tmp_path, 0, log, url, name, sleep=0.5)
        deadline = time.monotonic() + 240
        while sum(line.startswith("done") for line in log.read_text().splitlines()) < 2 if log.exists() else True:
            assert worker.poll() is None and time.monotonic() < deadline, "worker stopped before the outage"
            time.sleep(0.1)
        finished = {(t.user_attrs["description"]["name"], str(t.user_attrs["effnet.params"]["seed"]))
                     for t in _keyed(url, name) if t.state.name == "COMPLETE"}
        script("stop")
        time.sleep(4)
        script()
        _, err = worker.communicate(timeout=300)
        text = err.decode()
        if worker.returncode != 0:  # allowed: one line, then a rerun resumes
            assert "lost the study storage" in text and "Traceback" not in text, text[-3000:]
            rerun = _worker(tmp_path, 1, log, url, name, sleep=0.0)
            _, err = rerun.communicate(timeout=300)
            assert rerun.returncode == 0, err.decode()[-3000:]
        trials = _keyed(url, name)
        complete = [t.user_attrs["effnet.key"] for t in trials if t.state.name == "COMPLETE"]
        assert len(complete) == len(set(complete)) == _expected()  # every candidate once, none twice
        starts = [tuple(line.split()[1:3]) for line in log.read_text().splitlines() if line.startswith("start")]
        assert finished and all(starts.count(f) == 1 for f in finished)  # finished before the outage: never rerun
    finally:
        script("stop")
        subprocess.run(["rm", "-rf", str(pg_dir)], check=False)
