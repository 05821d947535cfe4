"""A study of keyed trials known up front, run by any number of workers on Optuna storage.

The grid search and the scaling study both evaluate a fixed list of trials (grid points, or
(method, ratio, seed)). Each has a unique key. The rules that make the study survive crashes and
share work safely:

* **Enqueue once.** The worker that creates the study (creation is atomic: the study name is a
  unique row) adds one WAITING trial per key, then marks the study ready. Other workers wait for
  the mark. Nobody else adds trials, except the retry rules below, which add one successor for a
  trial only in the worker that just failed that trial.
* **Pull atomically.** A worker takes a WAITING trial by switching it to RUNNING; Optuna's storage
  does that under a row lock with a state check (see :mod:`effnet.search.storage` for SQLite), so
  two workers never take the same trial. A worker never creates a trial of its own.
* **Heartbeats and retry.** A running trial records a heartbeat. The heartbeat row is written just
  *before* the trial is taken, so there is no moment at which a running trial has none. A trial
  whose worker died goes stale after the grace period; the next worker that looks fails it and
  Optuna's ``RetryHeartbeatStaleTrialCallback`` queues a copy. Ctrl-C or an exception fails the
  trial and queues the copy at once.
* **Never counted twice.** Results are read per key from COMPLETE trials. A worker whose trial was
  failed as stale while it was still running (a suspended machine) finds its result refused by
  the storage; the retry's result is the one that counts.
"""
from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..errors import EffnetError
from .storage import redact

KIND_ATTR = "effnet.kind"
SETTINGS_ATTR = "effnet.settings"
READY_ATTR = "effnet.trials"
KEY_ATTR = "effnet.key"
ERROR_ATTR = "effnet.error"
WORKER_ATTR = "effnet.worker"
DUPLICATE_ATTR = "effnet.duplicate_of"
RESULT_ATTR = "effnet.result"

#: Study-level problems: the one-line error the command prints.
StudyError = EffnetError


@dataclass(frozen=True)
class TrialSpec:
    """One planned trial: a unique key, its Optuna params, and extra facts stored with it."""

    key: str
    params: Mapping[str, Any]
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialRecord:
    """A finished or pending trial as read back from storage."""

    number: int
    key: str
    state: str
    value: float | None
    params: dict[str, Any]
    attrs: dict[str, Any]
    intermediate: dict[int, float]
    retry_of: list[int]
    duration_s: float | None


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, sort_keys=True))


def _distributions(specs: Sequence[TrialSpec]):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    values: dict[str, list[Any]] = {}
    for spec in specs:
        for name, v in spec.params.items():
            values.setdefault(name, []).append(v)
    dists = {}
    for name, vs in values.items():
        if all(isinstance(v, bool) or isinstance(v, str) for v in vs):
            dists[name] = CategoricalDistribution(sorted(set(vs), key=str))
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in vs):
            dists[name] = IntDistribution(min(vs), max(vs))
        else:
            dists[name] = FloatDistribution(float(min(vs)), float(max(vs)))
    return dists


def _settings_diff(stored: Any, wanted: Any) -> list[str]:
    if not isinstance(stored, dict) or not isinstance(wanted, dict):
        return ["settings"]
    keys = sorted(set(stored) | set(wanted))
    out = []
    for k in keys:
        if stored.get(k) != wanted.get(k):
            a, b = stored.get(k, "(none)"), wanted.get(k, "(none)")
            if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
                out.append(f"{k} differs")
            else:
                out.append(f"{k} {a} (stored) vs {b} (asked)")
    return out


def check_existing(storage, name: str, kind: str, settings: Mapping[str, Any]) -> bool:
    """Whether study ``name`` exists; a one-line error if it holds another kind or other settings.

    Only reads: a refused study is left exactly as it was.
    """
    import optuna

    settings = _jsonable(dict(settings))
    where = f"study {name!r} in {redact(storage.url)}"
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return False
    attrs = storage.get_study_user_attrs(study_id)
    found = attrs.get(KIND_ATTR)
    if found is None:
        if storage.get_n_trials(study_id) and READY_ATTR not in attrs:
            raise EffnetError(f"{where} exists and was not made by effnet; use another --study name")
        return True
    if found != kind:
        raise EffnetError(f"{where} holds a {found} study, not a {kind} study; use another --study name")
    stored = attrs.get(SETTINGS_ATTR)
    if stored is not None and stored != settings:
        diff = "; ".join(_settings_diff(stored, settings))
        raise EffnetError(f"{where} was created with other settings ({diff}); "
                          "rerun with the same settings or use another --study name")
    if list(storage.get_study_directions(study_id)) != [optuna.study.StudyDirection.MAXIMIZE]:
        raise EffnetError(f"{where} is not a maximising single-objective study")
    return True


class _Heartbeat:
    """Records a trial's heartbeat every ``interval`` seconds on a background thread.

    Optuna keeps its own heartbeat thread in a private module used only by ``Study.optimize``;
    this worker pulls trials itself (so that it never creates one), hence the few lines here.
    """

    def __init__(self, storage, trial_id: int, interval: float) -> None:
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{trial_id}", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception:  # a transient database error must not kill the trial; the next beat retries
                pass

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Reporter:
    """Handed to the objective: per-step intermediate values, and pruning when enabled."""

    def __init__(self, study, storage, trial_id: int, number: int, pruner) -> None:
        self._study, self._storage, self._trial_id, self._pruner = study, storage, trial_id, pruner
        self.number = number
        self.last: tuple[int, float] | None = None

    def report(self, step: int, value: float) -> None:
        """Store ``value`` at ``step``; raise ``optuna.TrialPruned`` if the pruner gives up on it."""
        import optuna

        value = float(value)
        self._storage.set_trial_intermediate_value(self._trial_id, int(step), value)
        self.last = (int(step), value)
        if self._pruner is not None and self._pruner.prune(self._study, self._storage.get_trial(self._trial_id)):
            raise optuna.TrialPruned(f"pruned at step {step} with value {value:.4f}")


Objective = Callable[[TrialSpec, Reporter], Mapping[str, Any]]


class KeyedStudy:
    """A fixed set of keyed trials in one Optuna study, run by cooperating workers.

    ``settings`` (JSON-compatible) describe everything that defines the trials; a study created with
    other settings is refused with a one-line error, and nothing stored is touched.
    """

    def __init__(
        self,
        storage,
        name: str,
        kind: str,
        settings: Mapping[str, Any],
        specs: Sequence[TrialSpec],
        *,
        pruner=None,
        max_retry: int = 3,
        setup_wait_s: float = 30.0,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise EffnetError(f"study name must be a non-empty string, got {name!r}")
        keys = [s.key for s in specs]
        if not keys:
            raise EffnetError("a study needs at least one trial")
        if len(set(keys)) != len(keys):
            raise EffnetError("trial keys must be unique")
        self.storage = storage
        self.name = name
        self.kind = kind
        self.settings = _jsonable(dict(settings))
        self.specs = {s.key: s for s in specs}
        self.pruner = pruner
        self.max_retry = max_retry
        self.setup_wait_s = setup_wait_s
        self.heartbeat_interval = storage.get_heartbeat_interval() or 10
        self._study = None
        self._study_id: int | None = None

    # ----- setup ---------------------------------------------------------------------
    def describe(self) -> str:
        return f"study {self.name!r} in {redact(self.storage.url)}"

    def check_existing(self) -> bool:
        """Read-only check of an existing study's kind and settings. Returns whether it exists."""
        return check_existing(self.storage, self.name, self.kind, self.settings)

    def prepare(self) -> "KeyedStudy":
        """Create the study and enqueue every trial once, or join an existing one."""
        import optuna
        from optuna.exceptions import DuplicatedStudyError

        self.check_existing()
        created = False
        try:
            study_id = self.storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], self.name)
            created = True
        except DuplicatedStudyError:
            study_id = self.storage.get_study_id_from_name(self.name)
        self._study_id = study_id
        if created:
            self.storage.set_study_user_attr(study_id, KIND_ATTR, self.kind)
            self.storage.set_study_user_attr(study_id, SETTINGS_ATTR, self.settings)
        self._study = optuna.load_study(study_name=self.name, storage=self.storage, pruner=self.pruner)
        if created:
            self._enqueue(self.specs.values())
            self.storage.set_study_user_attr(study_id, READY_ATTR, len(self.specs))
        else:
            self._wait_until_ready()
        self._check_keys()
        return self

    def _enqueue(self, specs) -> None:
        import optuna

        dists = _distributions(list(self.specs.values()))
        for spec in specs:
            self._study.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState.WAITING,
                params=dict(spec.params),
                distributions={k: dists[k] for k in spec.params},
                user_attrs={KEY_ATTR: spec.key, **_jsonable(dict(spec.info))},
            ))

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.setup_wait_s
        while True:
            attrs = self.storage.get_study_user_attrs(self._study_id)
            if READY_ATTR in attrs:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        # The creating worker stopped between creating the study and queueing all its trials
        # (a window of well under a second). Finish its work: queue the keys that are missing.
        self.check_existing()
        attrs = self.storage.get_study_user_attrs(self._study_id)
        if KIND_ATTR not in attrs:
            self.storage.set_study_user_attr(self._study_id, KIND_ATTR, self.kind)
            self.storage.set_study_user_attr(self._study_id, SETTINGS_ATTR, self.settings)
        present = {t.user_attrs.get(KEY_ATTR) for t in self.storage.get_all_trials(self._study_id, deepcopy=False)}
        self._enqueue([s for k, s in self.specs.items() if k not in present])
        self.storage.set_study_user_attr(self._study_id, READY_ATTR, len(self.specs))

    def _check_keys(self) -> None:
        stored = {t.user_attrs.get(KEY_ATTR) for t in self.storage.get_all_trials(self._study_id, deepcopy=False)}
        extra = sorted(str(k) for k in stored - set(self.specs))
        if extra:
            raise EffnetError(f"{self.describe()} holds trials this plan does not have ({', '.join(extra[:3])}); "
                              "use another --study name")

    # ----- running -------------------------------------------------------------------
    def _pop(self):
        """Take one WAITING trial (atomically); ``None`` when there is none."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        waiting = self.storage.get_all_trials(self._study_id, deepcopy=False, states=(TrialState.WAITING,))
        for frozen in sorted(waiting, key=lambda t: t.number):
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self._study_id, frozen.number)
            # Heartbeat first: if this worker dies right after taking the trial, the trial already
            # has a heartbeat that will go stale. On a WAITING trial the row is harmless.
            self.storage.record_heartbeat(trial_id)
            try:
                if self.storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                    return trial_id, self.storage.get_trial(trial_id)
            except UpdateFinishedTrialError:
                continue
        return None

    def fail_stale(self) -> None:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self._study)

    def _requeue(self, frozen, *, counted: bool) -> None:
        """Queue a WAITING copy of a failed trial, as Optuna's retry callback does for stale ones.

        ``counted`` retries (errors) stop after ``max_retry``; an interruption (Ctrl-C) is not the
        trial's fault and is always queued again.
        """
        import optuna

        history = list(frozen.system_attrs.get("retry_history", [])) + [frozen.number]
        if counted and len(history) > self.max_retry:
            return
        system_attrs = {**frozen.system_attrs, "failed_trial": frozen.system_attrs.get("failed_trial", frozen.number),
                        "retry_history": history}
        self._study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING, params=frozen.params, distributions=frozen.distributions,
            user_attrs=frozen.user_attrs, system_attrs=system_attrs,
        ))

    def _fail_and_requeue(self, trial_id: int, message: str, *, counted: bool = True) -> None:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            self.storage.set_trial_user_attr(trial_id, ERROR_ATTR, message[:500])
            failed = self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            return  # already failed as stale by another worker, which queued the retry
        if failed:
            self._requeue(self.storage.get_trial(trial_id), counted=counted)

    def _run_one(self, trial_id: int, frozen, objective: Objective, on_event) -> str:
        import optuna
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        key = frozen.user_attrs.get(KEY_ATTR)
        spec = self.specs.get(key)
        if spec is None:  # cannot happen after _check_keys; keep the study consistent anyway
            self._fail_and_requeue(trial_id, f"unknown key {key!r}")
            return "FAIL"
        done = [t for t in self.storage.get_all_trials(self._study_id, deepcopy=False, states=(TrialState.COMPLETE,))
                if t.user_attrs.get(KEY_ATTR) == key]
        if done:
            # A second copy of a finished key (only possible after an interrupted setup was
            # completed by two workers at once): mark it and move on without running it.
            self.storage.set_trial_user_attr(trial_id, DUPLICATE_ATTR, done[0].number)
            self.storage.set_trial_state_values(trial_id, state=TrialState.PRUNED)
            return "DUPLICATE"
        self.storage.set_trial_user_attr(trial_id, WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")
        reporter = Reporter(self._study, self.storage, trial_id, frozen.number, self.pruner)
        if on_event:
            on_event("start", frozen.number, spec, None)
        state, values, result = TrialState.COMPLETE, None, None
        try:
            with _Heartbeat(self.storage, trial_id, self.heartbeat_interval):
                try:
                    result = dict(objective(spec, reporter))
                except optuna.TrialPruned:
                    state = TrialState.PRUNED
                    values = [reporter.last[1]] if reporter.last else None
        except BaseException as exc:  # noqa: BLE001 - Ctrl-C too: the trial must be queued again
            interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
            self._fail_and_requeue(trial_id, f"{exc.__class__.__name__}: {exc}".strip(), counted=not interrupted)
            if on_event:
                on_event("fail", frozen.number, spec, None)
            raise
        if state == TrialState.COMPLETE:
            value = result.pop("value", None)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                self._fail_and_requeue(trial_id, f"objective returned no finite 'value': {value!r}")
                raise EffnetError(f"trial {frozen.number}: objective returned no finite 'value' ({value!r})")
            values = [float(value)]
        try:
            if result:  # one attribute holding every figure: one database commit, not one per figure
                self.storage.set_trial_user_attr(trial_id, RESULT_ATTR, _jsonable(result))
            self.storage.set_trial_state_values(trial_id, state=state, values=values)
        except UpdateFinishedTrialError:
            # Failed as stale while this worker was still running it; its retry's result counts.
            if on_event:
                on_event("refused", frozen.number, spec, None)
            return "REFUSED"
        if on_event:
            on_event(state.name.lower(), frozen.number, spec, self.storage.get_trial(trial_id))
        return state.name

    def run(
        self,
        objective: Objective,
        *,
        max_trials: int | None = None,
        wait: bool = True,
        on_event: Callable[[str, int, TrialSpec, Any], None] | None = None,
        poll_s: float | None = None,
    ) -> int:
        """Run trials until none is waiting (and, with ``wait``, none is running elsewhere).

        Returns how many trials this worker ran. ``max_trials`` stops it after that many.
        """
        from optuna.trial import TrialState

        if self._study is None:
            self.prepare()
        if max_trials is not None and (isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1):
            raise EffnetError(f"number of trials must be an integer >= 1, got {max_trials!r}")
        poll = poll_s if poll_s is not None else max(0.5, self.heartbeat_interval / 2)
        ran = 0
        while max_trials is None or ran < max_trials:
            self.fail_stale()
            popped = self._pop()
            if popped is None:
                running = self.storage.get_all_trials(self._study_id, deepcopy=False, states=(TrialState.RUNNING,))
                if not running or not wait:
                    break
                time.sleep(poll)
                continue
            outcome = self._run_one(*popped, objective, on_event)
            if outcome != "DUPLICATE":
                ran += 1
        return ran

    # ----- reading back --------------------------------------------------------------
    def records(self) -> list[TrialRecord]:
        if self._study_id is None:
            self._study_id = self.storage.get_study_id_from_name(self.name)
        out = []
        for t in sorted(self.storage.get_all_trials(self._study_id, deepcopy=False), key=lambda t: t.number):
            attrs = {k: v for k, v in t.user_attrs.items() if not k.startswith("effnet.")}
            if t.state.name == "COMPLETE" or t.state.name == "PRUNED":
                attrs.update(t.user_attrs.get(RESULT_ATTR) or {})
            for k in (ERROR_ATTR, WORKER_ATTR, DUPLICATE_ATTR):
                if t.user_attrs.get(k) is not None and not (k == ERROR_ATTR and t.state.name == "COMPLETE"):
                    attrs[k.split(".", 1)[1]] = t.user_attrs[k]
            duration = t.duration.total_seconds() if t.duration is not None else None
            out.append(TrialRecord(
                number=t.number, key=t.user_attrs.get(KEY_ATTR), state=t.state.name,
                value=t.value if t.values else None, params=dict(t.params), attrs=attrs,
                intermediate=dict(t.intermediate_values),
                retry_of=list(t.system_attrs.get("retry_history", [])), duration_s=duration,
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

    def progress(self) -> dict[str, int]:
        """Keys complete, pruned, failed (no retry left), running and waiting."""
        counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
        for r in self.results().values():
            counts[{"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed",
                    "RUNNING": "running", "WAITING": "waiting"}[r.state]] += 1
        return counts
