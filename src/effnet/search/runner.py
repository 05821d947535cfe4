"""Helpers shared by the grid search and the scaling study: trainers, local worker processes."""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from ..arch import Network
from ..checks import check_int
from ..errors import EffnetError


class Trainer(Protocol):
    """Trains a description at a resolution with one seed; returns at least ``val_acc``.

    ``reporter.report(epoch, val_acc)`` after each epoch lets a pruner stop hopeless trials.
    An optional ``num_classes`` attribute sets the classifier size of every description.
    """

    def __call__(self, desc: Network, img_size: int, seed: int, reporter: Any) -> Mapping[str, Any]: ...


def with_classes(desc: Network, trainer: Any) -> Network:
    n = getattr(trainer, "num_classes", None)
    return desc if n is None or n == desc.num_classes else desc.replace(num_classes=n)


def timed_training(trainer: Trainer, desc: Network, img_size: int, seed: int, reporter: Any,
                   **options: Any) -> dict[str, Any]:
    """Run ``trainer`` (``options`` are passed on) and add ``trial_time_s`` (wall time of the whole call)."""
    start = time.perf_counter()
    out = dict(trainer(desc, img_size, seed, reporter, **options))
    if "val_acc" not in out:
        raise EffnetError("the trainer returned no 'val_acc'")
    out["trial_time_s"] = time.perf_counter() - start
    return out


@dataclass
class StudyOptions:
    """Where and how a study runs (not part of its identity)."""

    out_dir: str | Path
    storage: str | None = None
    study_name: str | None = None
    heartbeat_interval: int = 10
    grace_period: int = 60
    max_retry: int = 3
    n_trials: int | None = None
    workers: int = 1
    wait: bool = True
    storage_wait_s: float = 120.0
    progress: bool = True  # each running trial's steps on a terminal, one line per worker

    def check(self) -> "StudyOptions":
        check_int("workers", self.workers, 1)
        if self.n_trials is not None:
            check_int("number of trials", self.n_trials, 1)
        check_int("max retry", self.max_retry, 0)
        if self.study_name is not None and (not isinstance(self.study_name, str) or not self.study_name.strip()):
            raise EffnetError(f"study name must be a non-empty string, got {self.study_name!r}")
        return self



def _child(target: Callable[..., Any], args: tuple, threads: int, optuna_verbosity: int | None = None,
           index: int = 1) -> None:
    os.environ["EFFNET_WORKER_INDEX"] = str(index)  # a progress line of its own (effnet.train.quick)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # a trainer that does not use torch needs no thread setting
        pass
    if optuna_verbosity is not None:  # a spawned process starts with Optuna's default (INFO) logging
        import optuna

        optuna.logging.set_verbosity(optuna_verbosity)
    try:
        target(*args)
    except KeyboardInterrupt:
        raise SystemExit(130)


def run_local_workers(target: Callable[..., int], args: tuple, workers: int, *, local: Callable[[], int]) -> int:
    """Run ``local()`` here and ``target(*args)`` in ``workers - 1`` spawned processes (one study).

    CPU threads are split evenly. Returns the number of trials this process ran. A child that
    fails makes this raise after every worker has stopped.
    """
    check_int("workers", workers, 1)
    if workers == 1:
        return local()
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    verbosity = sys.modules["optuna"].logging.get_verbosity() if "optuna" in sys.modules else None
    children = [ctx.Process(target=_child, args=(target, args, threads, verbosity, i), daemon=False)
                for i in range(1, workers)]
    for c in children:
        c.start()
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    try:
        ran = local()
    finally:
        for c in children:
            c.join()
    bad = [c.exitcode for c in children if c.exitcode not in (0, None)]
    if bad:
        raise RuntimeError(f"{len(bad)} of {workers - 1} extra worker processes failed (exit codes {bad})")
    return ran
