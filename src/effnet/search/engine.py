"""The study engine: a planned set of keyed trials run by any number of workers with ``study.optimize``.

Every study of effnet (the coefficient grid search, the scaling study, racing rounds, the proxy
check) is a list of trials known up front, each with a unique key (a candidate and a seed). This
module runs such a list on Optuna's public API and nothing else:

* **One settings check** (:func:`check_settings`): a study stores its kind and settings; a study
  made with other settings is refused with one line, and nothing stored is touched. The
  architecture search uses the same check.
* **Enqueue once.** The worker that creates the study (creation is atomic: the name is a unique row)
  queues one trial per key with ``study.enqueue_trial`` and then marks the study ready; other
  workers wait for the mark (or, if the creator died in that window, queue the missing keys).
* **Run with ``study.optimize``.** Optuna pops a waiting trial atomically, runs its heartbeat
  thread, fails trials whose heartbeat went stale and queues their retry with
  ``RetryHeartbeatStaleTrialCallback``. When the queue runs dry between one worker's look and its
  ``ask`` (two workers racing for the last trial), Optuna creates a new, keyless trial: it is
  marked *spare*, pruned at once, and ignored everywhere.
* **Ctrl-C or an error** fails the trial (``optimize`` does that) and the objective first queues
  its retry with the same callback; an interrupted trial's retry does not use up a retry.
* **Never counted twice.** Results are read per key from COMPLETE trials; a copy of a key that is
  already complete is pruned without running. A worker whose trial was failed as stale while it
  was still running (a suspended machine) has its result refused by the storage; the retry counts.
* **Storage faults.** When the database goes away, the worker waits with a bounded exponential
  back-off and carries on when it returns, or stops with one line after ``storage_wait_s``. The
  trial it was running is failed as stale by whoever looks next and retried, so nothing finished is
  lost and nothing is counted twice.
"""
from __future__ import annotations

import json
import math
import os
import socket
import time
import warnings
from datetime import timezone
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..checks import check_int, optional
from ..errors import EffnetError
from .storage import redact

KIND_ATTR = "effnet.kind"
SETTINGS_ATTR = "effnet.settings"
READY_ATTR = "effnet.trials"
KEY_ATTR = "effnet.key"
PARAMS_ATTR = "effnet.params"
ERROR_ATTR = "effnet.error"
WORKER_ATTR = "effnet.worker"
DUPLICATE_ATTR = "effnet.duplicate_of"
SPARE_ATTR = "effnet.spare"
RESULT_ATTR = "effnet.result"
INTERRUPTED_ATTR = "effnet.interrupted"


@dataclass(frozen=True)
class TrialSpec:
    """One planned trial: a unique key, the parameters that define it, and facts stored with it."""

    key: str
    params: Mapping[str, Any]
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialRecord:
    """A finished or pending trial as read back from storage."""

    number: int
    key: str | None
    state: str
    value: float | None
    params: dict[str, Any]
    attrs: dict[str, Any]
    intermediate: dict[int, float]
    retry_of: list[int]
    duration_s: float | None
    started: str | None = None  # UTC, ISO 8601
    finished: str | None = None


def _iso(when) -> str | None:
    """Optuna's naive local datetimes as UTC ISO 8601 text."""
    if when is None:
        return None
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, sort_keys=True))


def _settings_diff(stored: Any, wanted: Any) -> list[str]:
    if not isinstance(stored, dict) or not isinstance(wanted, dict):
        return ["settings"]
    out = []
    for k in sorted(set(stored) | set(wanted)):
        if stored.get(k) != wanted.get(k):
            a, b = stored.get(k, "(none)"), wanted.get(k, "(none)")
            if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
                out.append(f"{k} differs")
            else:
                out.append(f"{k} {a} (stored) vs {b} (asked)")
    return out


def check_settings(storage, name: str, kind: str, settings: Mapping[str, Any], *,
                   directions: Sequence[str] = ("maximize",), adopt_unmarked_empty: bool = True,
                   added: Mapping[str, Any] | None = None) -> bool:
    """Whether study ``name`` exists; a one-line error if it holds another kind or other settings.

    Only reads: a refused study is left exactly as it was. An empty study without effnet's marks
    is adopted when ``adopt_unmarked_empty`` (its creator stopped before marking it). ``added``
    holds settings recorded only by later versions, with the value older studies were made with.
    """
    settings = jsonable(dict(settings))
    where = f"study {name!r} in {redact(getattr(storage, 'url', 'memory'))}"
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return False
    # Trials first, then the marks: a creating worker marks the study before it queues trials, so
    # read in this order a study with trials and no mark is truly not effnet's (read the other way,
    # another worker's marks and first trials can land between the two reads).
    has_trials = storage.get_n_trials(study_id) > 0
    attrs = storage.get_study_user_attrs(study_id)
    found = attrs.get(KIND_ATTR)
    if found is None:
        if (has_trials and READY_ATTR not in attrs) or not adopt_unmarked_empty:
            raise EffnetError(f"{where} exists and was not made by effnet; use another --study name")
        return True
    if found != kind:
        raise EffnetError(f"{where} holds a {found} study, not a {kind} study; use another --study name")
    stored = attrs.get(SETTINGS_ATTR)
    if isinstance(stored, dict) and added:
        stored = {**jsonable(dict(added)), **stored}
    if stored is not None and stored != settings:
        diff = "; ".join(_settings_diff(stored, settings))
        raise EffnetError(f"{where} was created with other settings ({diff}); "
                          "rerun with the same settings or use another --study name")
    if [d.name.lower() for d in storage.get_study_directions(study_id)] != list(directions):
        raise EffnetError(f"{where} does not optimise {', '.join(directions)}")
    return True


def _storage_errors() -> tuple[type[BaseException], ...]:
    """What a database that went away raises: Optuna wraps SQLAlchemy's errors in its own."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import SQLAlchemyError

    return (StorageInternalError, SQLAlchemyError)


def _storage_fault(exc: BaseException) -> BaseException | None:
    """The database error behind ``exc``, if any, following its chain.

    When the database goes away while Optuna records a trial's end, Optuna's own clean-up can fail
    in turn and raise an unrelated error (an unbound local in ``_run_trial``) whose context is the
    database error; this finds it there too.
    """
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, _storage_errors()):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


class _Backoff:
    """Bounded exponential back-off: 0.5 s doubling to 8 s, for at most ``limit_s`` in one outage."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s, self.start, self.delay = limit_s, None, 0.5

    def reset(self) -> None:
        self.start, self.delay = None, 0.5

    def wait(self) -> bool:
        now = time.monotonic()
        if self.start is None:
            self.start = now
        if now - self.start >= self.limit_s:
            return False
        time.sleep(min(self.delay, max(0.0, self.limit_s - (now - self.start))))
        self.delay = min(self.delay * 2, 8.0)
        return True


class Reporter:
    """Handed to a scorer: per-epoch values to Optuna (``trial.report``) and pruning when enabled."""

    def __init__(self, trial, prune: bool) -> None:
        self._trial, self._prune = trial, prune
        self.number = trial.number
        self.last: tuple[int, float] | None = None

    def report(self, step: int, value: float) -> None:
        """Store ``value`` at ``step``; raise ``optuna.TrialPruned`` if the pruner gives up on it."""
        import optuna

        value = float(value)
        self._trial.report(value, int(step))
        self.last = (int(step), value)
        if self._prune and self._trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} with value {value:.4f}")


Scorer = Callable[[TrialSpec, Reporter], Mapping[str, Any]]


class _Refused(Exception):
    pass


class PlannedStudy:
    """A fixed set of keyed trials in one Optuna study, run by cooperating workers.

    ``settings`` (JSON-compatible) describe everything that defines the trials; a study created with
    other settings is refused with a one-line error, and nothing stored is touched.
    """

    def __init__(self, storage, name: str, kind: str, settings: Mapping[str, Any], specs: Sequence[TrialSpec], *,
                 pruner=None, max_retry: int = 3, setup_wait_s: float = 30.0, storage_wait_s: float = 120.0) -> None:
        if not isinstance(name, str) or not name.strip():
            raise EffnetError(f"study name must be a non-empty string, got {name!r}")
        keys = [s.key for s in specs]
        if not keys:
            raise EffnetError("a study needs at least one trial")
        if len(set(keys)) != len(keys):
            raise EffnetError("trial keys must be unique")
        self.storage, self.name, self.kind = storage, name, kind
        self.settings = jsonable(dict(settings))
        self.specs = {s.key: s for s in specs}
        self.pruner, self.max_retry = pruner, max_retry
        self.setup_wait_s, self.storage_wait_s = setup_wait_s, storage_wait_s
        self.grace_period = getattr(storage, "grace_period", None) or 60
        self.heartbeat_interval = storage.get_heartbeat_interval() or 10
        self._study = None
        self._study_id: int | None = None
        self._current: int | None = None

    def describe(self) -> str:
        return f"study {self.name!r} in {redact(self.storage.url)}"

    def check_existing(self) -> bool:
        return check_settings(self.storage, self.name, self.kind, self.settings)

    # ----- setup ---------------------------------------------------------------------
    def prepare(self) -> "PlannedStudy":
        """Create the study and enqueue every trial once, or join an existing one."""
        import optuna
        from optuna.exceptions import DuplicatedStudyError

        self.check_existing()
        created = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                study = optuna.create_study(storage=self.storage, study_name=self.name, direction="maximize",
                                            sampler=optuna.samplers.RandomSampler(seed=0), pruner=self.pruner)
                created = True
            except DuplicatedStudyError:
                study = optuna.load_study(study_name=self.name, storage=self.storage,
                                          sampler=optuna.samplers.RandomSampler(seed=0), pruner=self.pruner)
        self._study = study
        self._study_id = self.storage.get_study_id_from_name(self.name)
        if created:
            study.set_user_attr(KIND_ATTR, self.kind)
            study.set_user_attr(SETTINGS_ATTR, self.settings)
            self._enqueue(self.specs.values())
            study.set_user_attr(READY_ATTR, len(self.specs))
        else:
            self._wait_until_ready()
        self._check_keys()
        return self

    def _enqueue(self, specs) -> None:
        for spec in specs:
            self._study.enqueue_trial({}, user_attrs={KEY_ATTR: spec.key, PARAMS_ATTR: jsonable(dict(spec.params)),
                                                      **jsonable(dict(spec.info))})

    def _all(self, states=None):
        return self.storage.get_all_trials(self._study_id, deepcopy=False, states=states)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.setup_wait_s
        while READY_ATTR not in self._study.user_attrs:
            if time.monotonic() >= deadline:
                # The creating worker stopped between creating the study and queueing all its trials
                # (a window of well under a second). Finish its work: queue the keys that are missing.
                self.check_existing()
                if KIND_ATTR not in self._study.user_attrs:
                    self._study.set_user_attr(KIND_ATTR, self.kind)
                    self._study.set_user_attr(SETTINGS_ATTR, self.settings)
                present = {t.user_attrs.get(KEY_ATTR) for t in self._all()}
                self._enqueue([s for k, s in self.specs.items() if k not in present])
                self._study.set_user_attr(READY_ATTR, len(self.specs))
                return
            time.sleep(0.2)

    def _check_keys(self) -> None:
        stored = {t.user_attrs.get(KEY_ATTR) for t in self._all()} - {None}
        extra = sorted(str(k) for k in stored - set(self.specs))
        if extra:
            raise EffnetError(f"{self.describe()} holds trials this plan does not have ({', '.join(extra[:3])}); "
                              "use another --study name")

    # ----- running -------------------------------------------------------------------
    def _trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    def _requeue(self, number: int, *, counted: bool) -> None:
        """Queue a copy of trial ``number``: with Optuna's retry callback (which counts it against
        ``max_retry``), or, for an interruption that is not the trial's fault, as a plain copy."""
        import optuna
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        frozen = self.storage.get_trial(self._trial_id(number))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if counted:
                RetryHeartbeatStaleTrialCallback(max_retry=self.max_retry)(self._study, frozen)
            else:
                self._study.add_trial(optuna.trial.create_trial(
                    state=optuna.trial.TrialState.WAITING, params=frozen.params, distributions=frozen.distributions,
                    user_attrs=frozen.user_attrs, system_attrs=frozen.system_attrs))

    def _objective(self, scorer: Scorer, on_event):
        import optuna
        from optuna.trial import TrialState

        def objective(trial) -> float:
            key = trial.user_attrs.get(KEY_ATTR)
            if key is None:
                # Created by ask() because another worker took the last waiting trial first.
                trial.set_user_attr(SPARE_ATTR, True)
                self._study.stop()
                raise optuna.TrialPruned("spare trial: the queue was empty")
            spec = self.specs[key]
            self._current = trial.number
            done = [t.number for t in self._all((TrialState.COMPLETE,)) if t.user_attrs.get(KEY_ATTR) == key]
            if done:
                trial.set_user_attr(DUPLICATE_ATTR, done[0])
                raise optuna.TrialPruned(f"key {key} already complete in trial {done[0]}")
            for k in (ERROR_ATTR, INTERRUPTED_ATTR):  # a retry arrives with its predecessor's attributes
                if trial.user_attrs.get(k) is not None:
                    trial.set_user_attr(k, None)
            # which trial this is and who runs it, in one commit (a retry copies its predecessor's attributes)
            trial.set_user_attr(WORKER_ATTR, [trial.number, f"{socket.gethostname()}:{os.getpid()}"])
            if on_event:
                on_event("start", trial.number, spec, None)
            reporter = Reporter(trial, self.pruner is not None)
            try:
                result = dict(scorer(spec, reporter))
            except optuna.TrialPruned:
                raise
            except BaseException as exc:  # noqa: BLE001 - Ctrl-C too: the trial must be queued again
                if isinstance(exc, _storage_errors()):
                    raise  # the database is away: the trial goes stale and is retried from there
                interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
                trial.set_user_attr(INTERRUPTED_ATTR if interrupted else ERROR_ATTR,
                                    True if interrupted else f"{exc.__class__.__name__}: {exc}".strip()[:500])
                self._requeue(trial.number, counted=not interrupted)
                if on_event:
                    on_event("fail", trial.number, spec, None)
                raise
            value = result.pop("value", None)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                trial.set_user_attr(ERROR_ATTR, f"scorer returned no finite 'value': {value!r}")
                self._requeue(trial.number, counted=True)
                raise EffnetError(f"trial {trial.number}: the scorer returned no finite 'value' ({value!r})")
            if self.storage.get_trial(self._trial_id(trial.number)).state != TrialState.RUNNING:
                raise _Refused()  # failed as stale meanwhile: its retry's result is the one that counts
            if result:  # one attribute holding every figure: one database commit, not one per figure
                trial.set_user_attr(RESULT_ATTR, jsonable(result))
            return float(value)

        return objective

    def _fail_orphans(self) -> None:
        """Fail (and queue again) running trials that never reached the objective.

        A worker killed between Optuna's ``ask`` and the start of its heartbeat thread leaves a
        running trial with no heartbeat, which Optuna's stale check never sees.
        """
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        now = time.time()
        for t in self._all((TrialState.RUNNING,)):
            started = t.user_attrs.get(WORKER_ATTR)
            if (isinstance(started, list) and started and started[0] == t.number) or t.datetime_start is None:
                continue
            if now - t.datetime_start.timestamp() > 2 * self.grace_period:
                try:
                    if self.storage.set_trial_state_values(self._trial_id(t.number), state=TrialState.FAIL):
                        self._requeue(t.number, counted=True)
                except UpdateFinishedTrialError:
                    pass

    def run(self, scorer: Scorer, *, max_trials: int | None = None, wait: bool = True,
            on_event: Callable[[str, int, TrialSpec, Any], None] | None = None, poll_s: float | None = None) -> int:
        """Run trials until none is waiting (and, with ``wait``, none is running elsewhere).

        Returns how many trials this worker ran. ``max_trials`` stops it after that many.
        """
        import optuna
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        if self._study is None:
            self.prepare()
        optional(check_int, "number of trials", max_trials, 1)
        poll = poll_s if poll_s is not None else max(0.5, self.heartbeat_interval / 2)
        objective = self._objective(scorer, on_event)
        ran = 0

        def after(study, frozen) -> None:
            nonlocal ran
            key = frozen.user_attrs.get(KEY_ATTR)
            if key is None or frozen.user_attrs.get(DUPLICATE_ATTR) is not None:
                return
            ran += 1
            if on_event:
                on_event(frozen.state.name.lower(), frozen.number, self.specs[key], frozen)

        backoff = _Backoff(self.storage_wait_s)
        lost: int | None = None  # the trial running here when the database went away
        while max_trials is None or ran < max_trials:
            try:
                if lost is not None:
                    self._recover(lost)
                    lost = None
                if not self._all((TrialState.WAITING,)):
                    with warnings.catch_warnings():  # (optimize does this itself before each trial)
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        optuna.storages.fail_stale_trials(self._study)
                    self._fail_orphans()
                    if self._all((TrialState.WAITING,)):
                        continue
                    if not wait or not self._all((TrialState.RUNNING,)):
                        break
                    time.sleep(poll)
                    continue
                self._current = None
                self._study.optimize(objective, n_trials=1, callbacks=[after])
                backoff.reset()
            except (_Refused, UpdateFinishedTrialError):
                if on_event:
                    on_event("refused", -1, None, None)
            except Exception as exc:  # noqa: BLE001 - sorted below; anything else is raised again
                fault = _storage_fault(exc)
                if fault is not None:
                    lost = self._current if self._current is not None else lost
                    if not backoff.wait():
                        raise OSError(f"lost the study storage {redact(self.storage.url)} for more than "
                                      f"{self.storage_wait_s:g} s ({_first_line(fault)}); rerun the same command to "
                                      "resume (finished trials are kept)") from None
                elif isinstance(exc, ValueError) and str(exc).startswith("Cannot tell a"):
                    if on_event:  # failed as stale while running here: the retry's result counts
                        on_event("refused", -1, None, None)
                else:
                    raise
        return ran

    def _recover(self, number: int) -> None:
        """After an outage: if the trial that was running here ended FAIL (Optuna recorded the
        database error once it was back), queue it again unless its key is complete or queued."""
        from optuna.trial import TrialState

        frozen = self.storage.get_trial(self._trial_id(number))
        key = frozen.user_attrs.get(KEY_ATTR)
        if frozen.state != TrialState.FAIL or key is None:
            return  # still RUNNING: it goes stale and Optuna's retry callback queues it
        live = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
        if not any(t.user_attrs.get(KEY_ATTR) == key for t in self._all(live)):
            self._requeue(number, counted=False)

    # ----- reading back --------------------------------------------------------------
    def records(self) -> list[TrialRecord]:
        if self._study_id is None:
            self._study_id = self.storage.get_study_id_from_name(self.name)
        out = []
        for t in sorted(self._all(), key=lambda t: t.number):
            if t.user_attrs.get(SPARE_ATTR):
                continue
            attrs = {k: v for k, v in t.user_attrs.items() if not k.startswith("effnet.")}
            if t.state.name in ("COMPLETE", "PRUNED"):
                attrs.update(t.user_attrs.get(RESULT_ATTR) or {})
            for k in (ERROR_ATTR, DUPLICATE_ATTR):
                if t.user_attrs.get(k) is not None and not (k == ERROR_ATTR and t.state.name == "COMPLETE"):
                    attrs[k.split(".", 1)[1]] = t.user_attrs[k]
            started = t.user_attrs.get(WORKER_ATTR)
            if isinstance(started, list) and len(started) == 2:
                attrs["worker"] = started[1]
            duration = t.duration.total_seconds() if t.duration is not None else None
            out.append(TrialRecord(
                number=t.number, key=t.user_attrs.get(KEY_ATTR), state=t.state.name,
                value=t.value if t.values else None, params=dict(t.user_attrs.get(PARAMS_ATTR) or {}), attrs=attrs,
                intermediate=dict(t.intermediate_values),
                retry_of=list(t.system_attrs.get("retry_history", [])), duration_s=duration,
                started=_iso(t.datetime_start), finished=_iso(t.datetime_complete),
            ))
        return out

    def results(self) -> dict[str, TrialRecord]:
        """The one record that counts per key: its COMPLETE trial, else its latest attempt."""
        best: dict[str, TrialRecord] = {}
        for r in self.records():
            if r.key is None or r.attrs.get("duplicate_of") is not None:
                continue
            cur = best.get(r.key)
            if cur is None or (cur.state != "COMPLETE" and (r.state == "COMPLETE" or r.number > cur.number)):
                best[r.key] = r
        return best

    def attempts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records():
            if r.key is not None and r.attrs.get("duplicate_of") is None:
                out[r.key] = out.get(r.key, 0) + 1
        return out

    def progress(self) -> dict[str, int]:
        """Keys complete, pruned, failed (no retry left), running and waiting."""
        counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
        for r in self.results().values():
            counts[{"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed",
                    "RUNNING": "running", "WAITING": "waiting"}[r.state]] += 1
        return counts


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
