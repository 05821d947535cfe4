"""Where studies live: an Optuna ``RDBStorage`` on a SQLite file or any database URL.

A SQLite file in the output folder is the default. Any SQLAlchemy URL works as well
(``postgresql+psycopg2://user:password@host/db``), so workers on many machines can share one study.

Two details matter for correctness with several workers:

* **Heartbeats.** Every storage is opened with ``heartbeat_interval`` and ``grace_period``: a running
  trial whose worker stops recording heartbeats (SIGKILL, a lost machine) is failed by the next
  worker that looks, and Optuna's ``RetryHeartbeatStaleTrialCallback`` queues it again.
* **SQLite transactions.** Optuna hands out a waiting trial with ``SELECT ... FOR UPDATE`` and a
  state check. PostgreSQL honours the row lock; SQLite ignores ``FOR UPDATE`` and Python's sqlite3
  module starts a transaction only at the first write, so two processes could both read a trial as
  waiting. On SQLite every transaction here therefore starts with ``BEGIN IMMEDIATE`` (the recipe
  in SQLAlchemy's pysqlite documentation), which takes the database write lock up front and makes
  the read-check-write atomic. The file uses SQLite's write-ahead log.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from ..checks import check_int
from ..errors import EffnetError

DEFAULT_DB_NAME = "study.db"


def default_storage_url(out_dir: str | Path) -> str:
    """The SQLite file ``study.db`` in ``out_dir``."""
    return sqlite_url(Path(out_dir) / DEFAULT_DB_NAME)


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def normalise_url(url: str | Path | None, out_dir: str | Path) -> str:
    """A database URL; ``None`` means the default SQLite file, a plain path means a SQLite file."""
    if url is None or str(url) == "":
        return default_storage_url(out_dir)
    text = str(url)
    if "://" not in text:
        return sqlite_url(text)
    return text


def redact(url: str) -> str:
    """The URL without its password, for messages and reports."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password we could hide reliably
        return url.split("@")[-1] if "@" in url else url


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Wait up to a minute for another worker's write lock instead of failing at once.
        return {"connect_args": {"timeout": 60}}
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    return {"pool_pre_ping": True}


def _use_immediate_transactions(engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, connection_record):  # noqa: ANN001
        dbapi_connection.isolation_level = None  # let the "begin" event below start transactions
        # Write-ahead log: readers do not block the writer, and a commit needs no full-file sync.
        # A killed process loses nothing committed; only a power cut can drop the last commits.
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made before the listeners existed are dropped


def check_reachable(url: str) -> None:
    """Connect once; a one-line ``OSError`` if the database cannot be reached."""
    try:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        make_url(url)
    except Exception as exc:
        raise EffnetError(f"not a database URL: {url!r} ({_first_line(exc)})") from None
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1] if "///" in url else ""
        if path and path != ":memory:":
            parent = Path(path).parent
            if not parent.is_dir():
                raise OSError(f"cannot open study storage {redact(url)}: folder {parent} does not exist")
    try:
        engine = create_engine(url, **_engine_kwargs(url))
    except ImportError as exc:
        raise OSError(f"cannot open study storage {redact(url)}: database driver missing ({_first_line(exc)})") from None
    except Exception as exc:
        raise EffnetError(f"cannot use study storage {redact(url)}: {_first_line(exc)}") from None
    try:
        with engine.connect():
            pass
    except Exception as exc:
        raise OSError(f"cannot reach study storage {redact(url)}: {_first_line(exc)}") from None
    finally:
        engine.dispose()


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = 10,
    grace_period: int = 60,
    max_retry: int = 3,
    attempts: int = 4,
):
    """An ``optuna.storages.RDBStorage`` with heartbeats and retry of stale trials.

    ``heartbeat_interval`` and ``grace_period`` are whole seconds (Optuna's units). A trial whose
    heartbeat is older than ``grace_period`` counts as abandoned and is queued again, at most
    ``max_retry`` times. Unreachable databases raise a one-line ``OSError``.
    """
    check_int("heartbeat interval (seconds)", heartbeat_interval, 1)
    check_int("grace period (seconds)", grace_period, 1)
    if grace_period <= heartbeat_interval:
        raise EffnetError(f"grace period ({grace_period} s) must be longer than the heartbeat interval ({heartbeat_interval} s)")
    check_int("max retry", max_retry, 0)
    check_reachable(url)

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import SQLAlchemyError

    class Storage(RDBStorage):
        """``RDBStorage`` whose heartbeat survives a database outage.

        Optuna records heartbeats on a thread that ends at the first error; this keeps it beating
        (the next beat retries). An outage longer than the grace period makes the trial stale
        anyway, and it is then retried like any abandoned trial.
        """

        def record_heartbeat(self, trial_id: int) -> None:
            try:
                super().record_heartbeat(trial_id)
            except (SQLAlchemyError, optuna.exceptions.StorageInternalError):
                pass

    last: BaseException | None = None
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = Storage(
                    url,
                    engine_kwargs=_engine_kwargs(url),
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
                )
        except (SQLAlchemyError, RuntimeError) as exc:
            # Workers that start together on an empty database race to create Optuna's tables;
            # the loser sees an integrity or "already exists" error and simply tries again.
            last = exc
            time.sleep(0.5 * (attempt + 1))
            continue
        if url.startswith("sqlite"):
            _use_immediate_transactions(storage.engine)
        return storage
    raise OSError(f"cannot open study storage {redact(url)}: {_first_line(last)}")
