"""Two worker processes share one grid-search study on a real PostgreSQL server on loopback.

The server comes from ``scripts/ensure_postgres.sh`` (installs Debian's postgresql with apt-get when
missing, starts a private cluster on 127.0.0.1, creates the test role and database; idempotent).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ensure_postgres.sh"

WORKER = textwrap.dedent('''
    import os, sys, time
    from effnet.arch import get_network
    from effnet.search.scale_search import ScaleSearchConfig, run_scale_search
    from effnet.search.runner import StudyOptions

    out, log, url, name = sys.argv[1:5]

    class Slow:
        num_classes = 3
        def __call__(self, desc, img_size, seed, reporter):
            with open(log, "a") as f:
                f.write(f"{desc.name} {seed} {os.getpid()}\\n")
            time.sleep(0.2)
            return {"val_acc": 0.5 + img_size / 1000}

    cfg = ScaleSearchConfig(get_network("efficientnet_b0"), data="synthetic", img_size=32, budget_epochs=1,
                            grid_step=0.1, tolerance=0.05, max_coefficient=1.4)
    run_scale_search(cfg, StudyOptions(out, storage=url, study_name=name, heartbeat_interval=1, grace_period=3),
                     trainer=Slow())
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


def test_two_workers_share_one_postgres_study_and_run_every_point_exactly_once(postgres_url, tmp_path):
    import optuna

    from effnet.search.scale_search import grid_candidates

    name = f"shared-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "log.txt"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    workers = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"out{i}"), str(log), postgres_url, name],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err.decode()[-3000:]
    runs = [tuple(line.split()[:2]) for line in log.read_text().splitlines()]
    expected = len(grid_candidates(0.1, 0.05, max_coefficient=1.4))
    assert len(runs) == len(set(runs)) == expected  # every grid point ran exactly once
    assert len({line.split()[2] for line in log.read_text().splitlines()}) == 2  # both workers took trials
    trials = optuna.load_study(study_name=name, storage=postgres_url).trials
    assert len(trials) == expected and all(t.state.name == "COMPLETE" for t in trials)
    # both workers wrote the same, complete report
    assert (tmp_path / "out0" / "trials.csv").read_text() == (tmp_path / "out1" / "trials.csv").read_text()
