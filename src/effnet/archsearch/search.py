"""Architecture search for a baseline under a FLOPs target, as an Optuna study.

Every trial is one description from an :class:`~effnet.archsearch.space.ArchSpace`, trained (or
scored) by an *evaluator*, and rewarded by ``ACC(m) * (FLOPs(m) / T) ** w`` with FLOPs counted as
multiply-adds by the analytic :func:`effnet.arch.cost` at the search resolution. Trials keep their
description JSON, choice vector, MACs, parameters, accuracy and reward as user attributes, so any
storage Optuna supports (in memory, SQLite, PostgreSQL) holds the whole search.

Strategies (fixed per study):

``rl``     :class:`ControllerSampler`: a policy-gradient controller
           (:class:`~effnet.archsearch.controller.Controller`) whose state lives in the study.
``tpe``    Optuna's multivariate TPE on the reward.
``nsga2``  Optuna's NSGA-II on the two objectives (maximise accuracy, minimise MACs); its
           non-dominated trials are the Pareto front.
``random`` uniform sampling, the reference the others must beat.

Resuming and sharing: ``n_trials`` is the number of finished trials the *study* should hold, so
rerunning an interrupted search runs only the missing ones, and several processes pointed at the
same storage and study work through the total together (each may finish one trial past it).
A trial interrupted by Ctrl-C is marked failed and does not count.
"""
from __future__ import annotations

import json
import math
import random
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import optuna
import torch
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from ..arch import Network, cost
from ..checks import check_float, check_int, check_range
from ..fsutil import atomic_savefig, atomic_write_text
from ..weights.meta import MIN_IMAGE_SIZE
from ..search import stats
from .space import BASES, ArchSpace, reward
from .controller import Controller, ControllerConfig
from ..search.engine import KIND_ATTR, SETTINGS_ATTR, check_settings
from ..search.budget import SETTING_KEYS, Budget
from ..search.storage import normalise_url, open_storage as open_database
from ..search.study import pack, unpack
from ..search.tables import Column, fixed, millions, plain, to_csv, to_markdown

STRATEGIES = ("rl", "tpe", "nsga2", "random")
#: settings recorded since a later version, with the value studies made before then used
ADDED_SETTINGS = {"seed": 0, "batch_size": 32, "max_steps": None, "lr": None, "augment": "none"}
KIND = "arch-search"
CONTROLLER_ATTR = "effnet.arch_search.controller"
#: An evaluator scores one description; it returns at least ``{"accuracy": float in [0, 1]}``, and,
#: for the paired statistics of the report, ``val_correct`` (and ``test_correct``): per training
#: seed, 1/0 per image of the split, the same images in the same order for every description.
Evaluator = Callable[[Network], Mapping[str, Any]]
PER_IMAGE = ("val_correct", "test_correct")


@dataclass(frozen=True)
class ArchSearchSettings:
    """What defines a search; a study records them and refuses to continue under other ones."""

    target_macs: int
    base: str = "efficientnet_b0"
    strategy: str = "rl"
    w: float = -0.07
    img_size: int = 64
    num_classes: int = 2
    data: str = ""  # the data as measured, a label (the evaluator reads the data)
    budget: Budget = field(default_factory=lambda: Budget(epochs=1))
    seeds: int = 1  # training seeds per candidate; the reward uses their mean accuracy
    seed: int = 0  # the first training seed, which also draws the train/validation/test split
    include_base: bool = True
    population_size: int = 16  # NSGA-II generation size
    controller: ControllerConfig = field(default_factory=ControllerConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_macs", int(check_float("target MACs", self.target_macs, 0.0, strict=True)))
        if self.base not in BASES:
            raise ValueError(f"search base must be one of {', '.join(BASES)}, got {self.base!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        check_range("reward exponent w", self.w, -math.inf, 0.0)
        check_int("img_size", self.img_size, MIN_IMAGE_SIZE)
        for name in ("num_classes", "population_size"):
            check_int(name, getattr(self, name), 2)
        if isinstance(self.budget, Mapping):
            object.__setattr__(self, "budget", Budget.from_dict(self.budget))
        if not isinstance(self.budget, Budget):
            raise ValueError(f"budget must be a Budget, got {self.budget!r}")
        self.budget.check()
        check_int("number of seeds", self.seeds, 1)
        check_int("seed", self.seed, 0)
        if isinstance(self.controller, dict):
            object.__setattr__(self, "controller", ControllerConfig(**self.controller))

    def to_dict(self) -> dict[str, Any]:
        """Flat: the budget under the keys searches have always stored it with."""
        out = asdict(self)
        del out["budget"]
        return {**out, **self.budget.settings()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ArchSearchSettings":
        data = dict(data)
        budget = Budget.from_settings({**ADDED_SETTINGS, **data})
        for key in SETTING_KEYS.values():
            data.pop(key, None)
        return cls(**data, budget=budget)

    def space(self) -> ArchSpace:
        return ArchSpace(self.base, resolution=self.img_size, num_classes=self.num_classes,
                         name=f"{self.base}_search")

    @property
    def directions(self) -> list[str]:
        return ["maximize", "minimize"] if self.strategy == "nsga2" else ["maximize"]


# ----- the RL controller as an Optuna sampler --------------------------------------------

def finished_records(study: optuna.Study, space: ArchSpace) -> list[tuple[int, tuple[int, ...], float, float | None]]:
    """``(number, choices, reward, behaviour log-prob)`` of every complete trial with a reward."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if "reward" not in t.user_attrs:
            continue
        try:
            choices = space.from_values(t.params)
        except ValueError:
            continue  # a trial from outside the space (e.g. added by hand) teaches the policy nothing
        out.append((t.number, choices, float(t.user_attrs["reward"]), t.user_attrs.get("policy_log_prob")))
    return out


def load_controller(study: optuna.Study, space: ArchSpace, config: ControllerConfig) -> Controller:
    """The controller stored in ``study``, or a fresh (uniform) one."""
    state = study.user_attrs.get(CONTROLLER_ATTR)
    if state is None:
        return Controller(space.sizes, config)
    ctrl = Controller.from_state_dict(json.loads(state))
    if ctrl.sizes != space.sizes:
        raise ValueError("the study's controller was made for another search space")
    return ctrl


def study_controller(study: optuna.Study, space: ArchSpace, config: ControllerConfig | None = None,
                     *, save: bool = True) -> Controller:
    """The study's controller after learning from every complete trial it has not yet seen.

    With ``save`` the result is stored back (last writer wins; see :class:`ControllerSampler`).
    """
    ctrl = load_controller(study, space, config or ControllerConfig())
    if ctrl.learn(finished_records(study, space)) or CONTROLLER_ATTR not in study.user_attrs:
        if save:
            study.set_user_attr(CONTROLLER_ATTR, json.dumps(ctrl.state_dict()))
    return ctrl


class ControllerSampler(optuna.samplers.BaseSampler):
    """Samples whole architectures from the policy-gradient controller kept in the study.

    Before each trial it loads the controller from the study's user attributes, learns from the
    complete trials it has not yet consumed, stores the result back and samples the trial's
    architecture. Concurrency: the stored state is last-writer-wins. Because the set of consumed
    trials is part of that state, a worker whose write is overwritten loses no data: the trials it
    learnt from are not in the surviving state and the next reader learns from them; every
    complete trial enters the surviving lineage exactly once. Samples can be stale by the trials
    in flight on other workers; the clipped importance ratio in :meth:`Controller.update` accounts
    for that.
    """

    def __init__(self, space: ArchSpace, config: ControllerConfig | None = None, seed: int = 0) -> None:
        self.space = space
        self.config = config or ControllerConfig()
        self.seed = int(seed)
        self._fallback = optuna.samplers.RandomSampler(seed=seed)
        self._sampled: dict[int, tuple[tuple[int, ...], float]] = {}
        self.controller: Controller | None = None

    def infer_relative_search_space(self, study, trial) -> dict[str, CategoricalDistribution]:
        return {d.name: CategoricalDistribution(d.choices) for d in self.space.decisions}

    def sample_relative(self, study, trial: FrozenTrial, search_space) -> dict[str, Any]:
        if not search_space:
            return {}
        ctrl = study_controller(study, self.space, self.config)
        self.controller = ctrl
        gen = torch.Generator().manual_seed(random.Random(f"{self.seed}:{trial.number}").getrandbits(63))
        choices, log_prob = ctrl.sample(gen)
        self._sampled[trial.number] = (choices, log_prob)
        return self.space.values(choices)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def behaviour_log_prob(self, number: int, choices: Sequence[int]) -> float | None:
        """log pi(choices) of the policy that sampled trial ``number``, if it sampled these choices."""
        sampled = self._sampled.pop(number, None)
        if sampled is None or sampled[0] != tuple(choices):
            return None  # an enqueued or retried trial: learnt from as if on-policy
        return sampled[1]


def make_sampler(settings: ArchSearchSettings, seed: int = 0) -> optuna.samplers.BaseSampler:
    if settings.strategy == "rl":
        return ControllerSampler(settings.space(), settings.controller, seed)
    if settings.strategy == "tpe":
        # constant_liar keeps concurrent workers from proposing the same point
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if settings.strategy == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=settings.population_size)
    return optuna.samplers.RandomSampler(seed=seed)


# ----- studies ---------------------------------------------------------------------------

def open_storage(storage: str | Path | optuna.storages.BaseStorage | None) -> optuna.storages.BaseStorage:
    """In-memory storage for ``None``; otherwise a database URL or SQLite file path, opened with
    heartbeats and retry of abandoned trials (:func:`effnet.search.storage.open_storage`)."""
    if storage is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    return open_database(normalise_url(storage, "."))


def open_study(settings: ArchSearchSettings, *, storage=None, study_name: str | None = None,
               seed: int = 0) -> optuna.Study:
    """Create the study, or load it and check it was made with the same settings."""
    from optuna.exceptions import DuplicatedStudyError
    from optuna.study import StudyDirection

    storage = open_storage(storage)
    name = study_name or f"arch-{settings.base}-{settings.strategy}"
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"study name must be a non-empty string, got {name!r}")
    wanted = json.loads(json.dumps(settings.to_dict()))
    directions = [StudyDirection.MAXIMIZE if d == "maximize" else StudyDirection.MINIMIZE for d in settings.directions]
    check_settings(storage, name, KIND, wanted, directions=settings.directions, adopt_unmarked_empty=False,
                   added=ADDED_SETTINGS)
    try:
        study_id = storage.create_new_study(directions, name)
        created = True
    except DuplicatedStudyError:
        study_id = storage.get_study_id_from_name(name)
        created = False
    if created:
        storage.set_study_user_attr(study_id, KIND_ATTR, KIND)
        storage.set_study_user_attr(study_id, SETTINGS_ATTR, wanted)
    # the seed moves with the study's length so a resumed run does not repeat the first proposals
    n_before = len(storage.get_all_trials(study_id, deepcopy=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = make_sampler(settings, seed + n_before)
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    if created and settings.include_base:
        space = settings.space()
        study.enqueue_trial(space.values(space.base_choices()), user_attrs={"is_base": True})
    return study


def pack_correct(per_seed: Sequence[Sequence[Any]], seeds: int) -> str:
    """Per-seed 1/0 vectors as one attribute: :func:`effnet.search.study.pack` of each, space-separated."""
    import numpy as np

    if isinstance(per_seed, (str, bytes)) or len(per_seed) != seeds:
        raise ValueError(f"evaluator returned per-image results for {len(per_seed)} seed(s); expected {seeds}")
    packed = []
    for v in per_seed:
        arr = np.asarray(v).ravel()
        if arr.size == 0 or not np.all((arr == 0) | (arr == 1)):
            raise ValueError("evaluator returned per-image results that are not a non-empty list of 1/0")
        packed.append(pack(arr.astype(np.int64)))
    return " ".join(packed)


def unpack_correct(text: str) -> list[Any]:
    """The per-seed 1/0 vectors (floats) stored by :func:`pack_correct`."""
    return [unpack(part).astype(float) for part in text.split()]


def count_finished(study: optuna.Study) -> int:
    """Complete trials plus trials the evaluator failed.

    Interrupted trials (Ctrl-C) and abandoned ones (a killed worker, failed by the storage once
    its heartbeat goes stale and queued again) do not count."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        if t.state == TrialState.COMPLETE or t.user_attrs.get("error"):
            n += 1
    return n


def run_arch_search(settings: ArchSearchSettings, evaluate: Evaluator, *, n_trials: int,
                    storage=None, study_name: str | None = None, seed: int = 0,
                    on_trial: Callable[[FrozenTrial], None] | None = None) -> optuna.Study:
    """Run (or continue) the search until the study holds ``n_trials`` finished trials.

    ``evaluate`` raising ValueError or RuntimeError fails that trial (the message is kept in the
    trial's ``error`` attribute) and the search goes on.
    """
    check_int("number of trials", n_trials, 1)
    study = open_study(settings, storage=storage, study_name=study_name, seed=seed)
    space = settings.space()

    def objective(trial: optuna.Trial):
        for key in ("error", "interrupted"):  # a retried trial arrives with its predecessor's attributes
            if trial.user_attrs.get(key):
                trial.set_user_attr(key, None)
        choices = space.from_values({d.name: trial.suggest_categorical(d.name, d.choices) for d in space.decisions})
        desc = space.decode(choices)
        c = cost(desc)
        trial.set_user_attr("choices", list(choices))
        trial.set_user_attr("code", space.code(choices))
        trial.set_user_attr("description", desc.to_json(indent=None))
        trial.set_user_attr("macs", c.macs)
        trial.set_user_attr("params", c.params)
        if isinstance(study.sampler, ControllerSampler):
            trial.set_user_attr("policy_log_prob", study.sampler.behaviour_log_prob(trial.number, choices))
        try:
            metrics = dict(evaluate(desc))
            acc = float(metrics.pop("accuracy"))
            if not (math.isfinite(acc) and 0.0 <= acc <= 1.0):
                raise ValueError(f"evaluator returned accuracy {acc!r}; expected a number in [0, 1]")
            per_image = {k: pack_correct(metrics.pop(k), settings.seeds) for k in PER_IMAGE if k in metrics}
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except (ValueError, RuntimeError) as exc:
            trial.set_user_attr("error", str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            raise
        r = reward(acc, c.macs, settings.target_macs, settings.w)
        trial.set_user_attr("accuracy", acc)
        trial.set_user_attr("reward", r)
        for k, v in per_image.items():
            trial.set_user_attr(k, v)
        for k, v in metrics.items():
            if isinstance(v, (int, float, str, bool)) and k not in ("macs", "params"):
                trial.set_user_attr(k, v)
        return (acc, c.macs) if settings.strategy == "nsga2" else r

    def stop_at_total(st: optuna.Study, trial: FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(trial)
        if count_finished(st) >= n_trials:
            st.stop()

    if count_finished(study) < n_trials:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, callbacks=[stop_at_total], catch=(ValueError, RuntimeError),
                           gc_after_trial=False)
    if settings.strategy == "rl":
        study_controller(study, space, settings.controller)  # learn from the last trials too
    return study


# ----- evaluators ------------------------------------------------------------------------

class SyntheticAccuracy:
    """A cheap, deterministic stand-in for training, for testing and comparing strategies.

    Each decision has a hidden preferred choice and a weight; the accuracy is
    ``floor + span * (weighted share of decisions at their preferred choice) + noise``, the noise
    being a fixed function of the architecture (the same architecture always scores the same).
    """

    def __init__(self, space: ArchSpace, seed: int = 0, noise: float = 0.01, floor: float = 0.3,
                 span: float = 0.6) -> None:
        rng = random.Random(f"synthetic-task:{seed}")
        self.space = space
        self.seed = seed
        self.noise, self.floor, self.span = noise, floor, span
        self.preferred = tuple(rng.randrange(n) for n in space.sizes)
        self.weights = tuple(rng.uniform(0.5, 1.5) for _ in space.sizes)

    def accuracy(self, choices: Sequence[int]) -> float:
        choices = tuple(choices)
        total = sum(self.weights)
        share = sum(w for w, c, p in zip(self.weights, choices, self.preferred) if c == p) / total
        jitter = random.Random(f"{self.seed}:{choices}").gauss(0.0, self.noise)
        return min(1.0, max(0.0, self.floor + self.span * share + jitter))

    def __call__(self, desc: Network) -> dict[str, float]:
        return {"accuracy": self.accuracy(self.space.encode(desc))}


# ----- results ---------------------------------------------------------------------------

def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points ``(macs, accuracy)`` that no other point beats on both
    (fewer or equal MACs and higher or equal accuracy, one strictly), in increasing MACs.

    Written out because Optuna's own front (``study.best_trials``) exists only for
    multi-objective studies, and the RL and TPE studies optimise the single reward.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: number, state, accuracy, MACs, params, reward, Pareto flag, architecture."""
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE and "reward" in t.user_attrs]
    front = {done[i].number for i in pareto_front([(t.user_attrs["macs"], t.user_attrs["accuracy"]) for t in done])}
    rows = []
    for t in trials:
        a = t.user_attrs
        rows.append({
            "trial": t.number,
            "state": t.state.name.lower() + (" (interrupted)" if a.get("interrupted") else ""),
            "accuracy": a.get("accuracy"),
            "macs": a.get("macs"),
            "params": a.get("params"),
            "reward": a.get("reward"),
            "pareto": t.number in front,
            "base": bool(a.get("is_base")),
            "train_time_s": a.get("train_time_s"),
            "architecture": a.get("code", ""),
            "error": a.get("error", ""),
        })
    return rows


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The complete trial with the highest reward."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if "reward" in t.user_attrs]
    if not done:
        raise ValueError(f"study {study.study_name!r} has no complete trials yet")
    return max(done, key=lambda t: (t.user_attrs["reward"], -t.number))


def best_description(study: optuna.Study, name: str | None = None) -> Network:
    t = best_trial(study)
    desc = Network.from_json(t.user_attrs["description"])
    return desc.replace(name=name or f"{study.study_name}-best")


def analyse_search(study: optuna.Study, settings: ArchSearchSettings, *, top: int = 10,
                   draws: int = 2000) -> dict[str, Any]:
    """Paired statistics of the ``top`` candidates by reward (and the base network).

    Per candidate: validation accuracy with its 95% interval (two-level bootstrap over seeds and
    images), the paired difference in accuracy to the best-reward candidate, the reward with the
    interval its accuracy implies (the MACs factor ``(MACs / T) ** w`` is exact), and whether its
    reward is indistinguishable from the best (simultaneous bound, :func:`effnet.search.stats.compare_scaled`).
    The choice is made on validation images; test accuracy is reported beside it and never used to
    choose. A winner is named only when it alone is left after the indistinguishable set is taken;
    otherwise the verdict names the set and its cheapest member as a pick by cost.
    """
    check_int("number of top candidates", top, 1)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if "reward" in t.user_attrs]
    if not done:
        raise ValueError(f"study {study.study_name!r} has no complete trials yet")
    ranked = sorted(done, key=lambda t: (-t.user_attrs["reward"], t.number))
    chosen = ranked[:top] + [t for t in ranked[top:] if t.user_attrs.get("is_base")]
    rows = [{"trial": t.number, "base": bool(t.user_attrs.get("is_base")), "architecture": t.user_attrs.get("code", ""),
             "macs": t.user_attrs["macs"], "params": t.user_attrs["params"],
             "macs_factor": (t.user_attrs["macs"] / settings.target_macs) ** settings.w,
             "accuracy": t.user_attrs["accuracy"], "reward": t.user_attrs["reward"]} for t in chosen]
    summary: dict[str, Any] = {
        "study": study.study_name, "strategy": settings.strategy, "complete_trials": len(done), "compared": len(rows),
        "seeds": settings.seeds, "draws": draws, "best": chosen[0].number, "winner": None, "pick": None,
        "indistinguishable": None, "decided": False, "candidates": rows,
        "selection": "chosen on validation images; test accuracy is reported separately and never used to choose"}
    if any("val_correct" not in t.user_attrs for t in chosen):
        summary["verdict"] = (f"Not decided: the trials carry no per-image predictions, so no interval can be computed; "
                              f"trial {chosen[0].number} has the highest reward ({rows[0]['reward']:.4f}, a point "
                              "estimate) and no winner is named.")
        return summary
    names = [str(r["trial"]) for r in rows]
    val = [unpack_correct(t.user_attrs["val_correct"]) for t in chosen]
    factors = [r["macs_factor"] for r in rows]
    # one set of draws for every figure: the reward is the accuracy times a known factor per candidate
    d = stats.draw(stats.matrices(val), draws, 0)
    rew = stats.compare_draws(names, d.scaled(np.asarray(factors, dtype=float)), unscaled=d.mats)
    acc = stats.compare_draws(names, d)
    best = rew.best
    for i, r in enumerate(rows):
        # the best was chosen on these very images: its differences use the simultaneous bound only
        gap = acc.mean[i] - acc.mean[best]
        r.update(accuracy=acc.mean[i], accuracy_ci_low=acc.ci[i][0], accuracy_ci_high=acc.ci[i][1],
                 accuracy_diff_to_best=gap, accuracy_diff_to_best_ci_low=gap - acc.range_bound,
                 accuracy_diff_to_best_ci_high=gap + acc.range_bound,
                 reward=rew.mean[i], reward_ci_low=rew.ci[i][0], reward_ci_high=rew.ci[i][1],
                 reward_diff_to_best=rew.diff_to_best[i], reward_diff_to_best_ci_low=rew.diff_to_best_ci[i][0],
                 reward_diff_to_best_ci_high=rew.diff_to_best_ci[i][1],
                 indistinguishable_from_best=rew.indistinguishable[i], is_best=i == best)
    test = None
    if all("test_correct" in t.user_attrs for t in chosen):
        test = stats.compare(names, [unpack_correct(t.user_attrs["test_correct"]) for t in chosen], draws=draws, seed=1)
        for i, r in enumerate(rows):
            r.update(test_accuracy=test.mean[i], test_ci_low=test.ci[i][0], test_ci_high=test.ci[i][1])
    same = [i for i in range(len(rows)) if rew.indistinguishable[i]]
    pick = min(same, key=lambda i: (rows[i]["macs"], -rows[i]["reward"]))
    scope = (f"{len(rows)} candidates (the top {min(top, len(done))} of {len(done)} complete trials by reward"
             f"{' and the base' if len(rows) > min(top, len(done)) else ''}), {settings.seeds} paired seed(s) x "
             f"{'/'.join(str(n) for n in sorted(set(rew.images)))} validation images, {draws} bootstrap draws"
             + ("; one seed: seed-to-seed noise is not covered" if settings.seeds == 1 else ""))
    b = rows[best]
    tested = (f"; its test accuracy {b['test_accuracy']:.4f} (95% CI {b['test_ci_low']:.4f} to {b['test_ci_high']:.4f}) "
              "is not used to choose" if test is not None else "")
    decided = rew.winner is not None and settings.seeds >= 2
    if rew.winner is not None and not decided:
        verdict = (f"Not decided: one seed, so seed-to-seed noise is not estimated; trial {b['trial']} has the best "
                   f"reward, {b['reward']:.4f} (95% CI {b['reward_ci_low']:.4f} to {b['reward_ci_high']:.4f}, images "
                   "only), and no winner is named.")
    elif decided:
        verdict = (f"Trial {b['trial']} has the best reward, {b['reward']:.4f} (95% CI {b['reward_ci_low']:.4f} to "
                   f"{b['reward_ci_high']:.4f}), separated from the other {len(rows) - 1} candidate(s); validation "
                   f"accuracy {b['accuracy']:.4f} (95% CI {b['accuracy_ci_low']:.4f} to {b['accuracy_ci_high']:.4f})"
                   f"{tested}.")
    else:
        p = rows[pick]
        verdict = (f"Not decided: {len(same)} of {len(rows)} candidates have rewards indistinguishable from the best "
                   f"(trials {', '.join(str(rows[i]['trial']) for i in same)}); no winner is named. The cheapest of "
                   f"them, trial {p['trial']} ({p['macs'] / 1e6:.1f}M MACs, reward {p['reward']:.4f}), is a pick by "
                   "cost among candidates that cannot be told apart, not a winner.")
    summary.update(verdict=f"{verdict} [{scope}]", scope=scope, decided=decided,
                   best=b["trial"], winner=b["trial"] if decided else None, pick=rows[pick]["trial"],
                   indistinguishable=[rows[i]["trial"] for i in same], range_bound=rew.range_bound)
    return summary


def _with_intervals(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` plus each ``X_ci_low``/``X_ci_high`` pair as one ``X_ci`` text, for the Markdown table."""
    out = dict(row)
    for key in list(row):
        if key.endswith("_ci_low") and row[key] is not None:
            stem = key[: -len("_ci_low")]
            signed = "+" if "diff" in stem else ""
            out[f"{stem}_ci"] = f"{row[key]:{signed}.4f} to {row[stem + '_ci_high']:{signed}.4f}"
    return out


def _yes(v: Any) -> str:
    return "yes" if v else ""


#: The trial table: CSV keeps full precision, Markdown is formatted for reading.
COLUMNS = (
    Column("trial", "trial"),
    Column("state", "state"),
    Column("accuracy", "val. accuracy", fixed(4)),
    Column("macs", "MACs (M mult-adds)", millions),
    Column("params", "params (M)", millions),
    Column("reward", "reward", fixed(4)),
    Column("pareto", "Pareto", _yes),
    Column("base", "base", _yes),
    Column("train_time_s", "train s", fixed(1)),
    Column("architecture", "architecture (per stage)", plain),
    Column("error", "error", plain),
)


#: The top candidates' paired statistics (:func:`analyse_search`).
TOP_COLUMNS = (
    Column("trial", "trial"),
    Column("base", "base", _yes),
    Column("macs", "MACs (M mult-adds)", millions),
    Column("accuracy", "val. accuracy", fixed(4)),
    Column("accuracy_ci", "95% CI", plain),
    Column("accuracy_diff_to_best", "acc. - best's", lambda v: "" if v is None else f"{v:+.4f}"),
    Column("accuracy_diff_to_best_ci", "95% CI", plain),
    Column("reward", "reward", fixed(4)),
    Column("reward_ci", "95% CI", plain),
    Column("indistinguishable_from_best", "reward same as best",
           lambda v: {None: "", True: "yes", False: "no"}[v]),
    Column("test_accuracy", "test accuracy (not used to choose)", fixed(4)),
    Column("test_ci", "95% CI", plain),
    Column("architecture", "architecture (per stage)", plain),
)


def plot_accuracy_vs_macs(rows: list[dict[str, Any]], path: str | Path, *, target_macs: float,
                          title: str = "") -> None:
    """Accuracy against MACs for every complete trial, the Pareto front, the target and the best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["reward"] is not None]
    if not done:
        raise ValueError("no complete trials to plot")
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    sc = ax.scatter([r["macs"] / 1e6 for r in done], [r["accuracy"] for r in done], c=[r["trial"] for r in done],
                    cmap="viridis", s=22, zorder=2)
    fig.colorbar(sc, ax=ax, label="trial")
    front = sorted((r for r in done if r["pareto"]), key=lambda r: r["macs"])
    ax.step([r["macs"] / 1e6 for r in front], [r["accuracy"] for r in front], where="post", color="tab:red",
            lw=1.2, label="Pareto front", zorder=1)
    best = max(done, key=lambda r: r["reward"])
    ax.scatter([best["macs"] / 1e6], [best["accuracy"]], marker="*", s=220, color="tab:orange",
               edgecolor="k", zorder=3, label=f"best reward (trial {best['trial']})")
    for r in done:
        if r["base"]:
            ax.scatter([r["macs"] / 1e6], [r["accuracy"]], marker="s", s=60, facecolor="none", edgecolor="k",
                       zorder=3, label="base network")
    ax.axvline(target_macs / 1e6, color="gray", ls="--", lw=1, label=f"target T = {target_macs / 1e6:g}M")
    ax.set_xlabel("MACs (millions of multiply-adds)")
    ax.set_ylabel("validation accuracy")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def write_outputs(study: optuna.Study, out_dir: str | Path, settings: ArchSearchSettings,
                  summary: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """``best.json`` (the highest-reward description, for ``effnet train``/``effnet scale``),
    ``search.json`` (:func:`analyse_search`, or ``summary`` when given), ``trials.csv``, ``trials.md``
    (the verdict first, then the top candidates' statistics, then every trial) and
    ``accuracy_vs_macs.png`` in ``out_dir``."""
    out = Path(out_dir)
    rows = trial_rows(study)
    summary = summary if summary is not None else analyse_search(study, settings)
    paths = {"best": out / "best.json", "csv": out / "trials.csv", "markdown": out / "trials.md",
             "plot": out / "accuracy_vs_macs.png", "summary": out / "search.json"}
    atomic_write_text(paths["summary"], json.dumps(summary, indent=2) + "\n")
    desc = best_description(study)
    atomic_write_text(paths["best"], desc.to_json() + "\n")
    atomic_write_text(paths["csv"], to_csv(rows, COLUMNS))
    n_done = sum(r["reward"] is not None for r in rows)
    top = (f"Top {summary['compared']} candidates by reward, paired statistics ({summary['selection']}); "
           "'acc. - best's' is the paired difference in validation accuracy to the best-reward candidate, and "
           "'reward same as best' uses a simultaneous 95% bound over the candidates compared.\n\n"
           + to_markdown([_with_intervals(r) for r in summary["candidates"]], TOP_COLUMNS) + "\nEvery trial:\n\n")
    header = (f"Architecture search `{study.study_name}`: strategy {settings.strategy}, base {settings.base}, "
              f"{settings.img_size} px, target T = {settings.target_macs} MACs (multiply-adds), w = {settings.w}, "
              f"data {settings.data or 'n/a'}, {settings.budget.label()} per trial; "
              f"{n_done} complete trial(s), accuracy the mean of {settings.seeds} seed(s) each.\n\n")
    atomic_write_text(paths["markdown"], summary["verdict"] + "\n\n" + header + top + to_markdown(rows, COLUMNS))
    plot_accuracy_vs_macs(rows, paths["plot"], target_macs=settings.target_macs,
                          title=f"{study.study_name}: {settings.strategy}, {settings.img_size} px, {n_done} trials")
    return paths
