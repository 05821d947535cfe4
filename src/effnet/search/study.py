"""What every kind of study shares: the training budget, candidates x paired seeds, the scorer,
the run (on :mod:`effnet.search.engine`), and the paired analysis with the positive control.

A kind of study is then a planner (a list of :class:`Candidate`), and a report of its own tables
and plots on top of :func:`analyse`. Seeds are paired: seed ``k`` fixes initialisation and data
order for every candidate (and, with ``split_seeds``, the train/validation/test split too), so
candidates are compared on the same images of the same runs.
"""
from __future__ import annotations

import base64
import json
import statistics
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .. import machine
from ..arch import Network, cost
from ..arch.matching import match_flops
from ..checks import check_int
from ..data.spec import DataSpec
from ..errors import EffnetError
from ..fsutil import atomic_write_text
from ..weights.meta import MIN_IMAGE_SIZE
from .budget import Budget
from .engine import PlannedStudy, TrialSpec
from .runner import StudyOptions, run_local_workers, timed_training, with_classes
from .storage import normalise_url, open_storage

if TYPE_CHECKING:  # numpy and torch load on first use, so that `effnet search scale --list` starts without them
    import numpy as np

    from .training import Evaluator

CONTROL_RATIO = 4.0


@dataclass(frozen=True)
class StudyConfig:
    """The base network, the data, the training budget every candidate gets, the base resolution
    and the paired seeds (stored with the study: a study refuses to continue under other ones)."""

    base: Network
    data: DataSpec = field(default_factory=lambda: DataSpec("elpv"))
    budget: Budget = field(default_factory=Budget)
    img_size: int = 64
    seeds: int = 1
    split_seeds: bool = False
    bootstrap_draws: int = 2000

    def __post_init__(self) -> None:
        if isinstance(self.data, str):  # a source name alone: its default task and split
            object.__setattr__(self, "data", DataSpec(self.data))

    def check_budget(self) -> None:
        if not isinstance(self.base, Network):
            raise EffnetError("base must be a network description")
        if not isinstance(self.data, DataSpec) or not isinstance(self.budget, Budget):
            raise EffnetError("a study's data must be a DataSpec and its budget a Budget")
        self.data.check()
        self.budget.check()
        check_int("image size", self.img_size, MIN_IMAGE_SIZE)
        check_int("number of seeds", self.seeds, 1)
        check_int("bootstrap draws", self.bootstrap_draws, 100)

    def settings(self) -> dict[str, Any]:
        """What identifies the study, flat: the data and the budget under the keys studies have
        always stored them with, then the kind's own fields."""
        d: dict[str, Any] = {"data": self.data.source, "task": self.data.task,
                             "limit_per_class": self.data.limit_per_class, **self.budget.settings()}
        defaults = DataSpec(self.data.source)
        for name in ("seed", "val_fraction", "test_fraction", "skip_bad_images"):  # recorded when not the default
            if getattr(self.data, name) != getattr(defaults, name):
                d[f"data_{name}"] = getattr(self.data, name)
        for f in fields(self):
            if f.name in ("base", "data", "budget", "bootstrap_draws"):
                continue
            v = getattr(self, f.name)
            d[f.name] = asdict(v) if hasattr(v, "__dataclass_fields__") and not isinstance(v, Network) else v
        d = json.loads(json.dumps(d))
        d["base"] = self.base.to_dict()
        return d

    def trainer(self):
        return self.trainer_type()(self.data, self.budget, per_epoch=getattr(self, "prune", False),
                                   split_seeds=self.split_seeds)

    def trainer_type(self) -> type:
        from .training import QuickTrainer  # lazy: torch only when a trial trains

        return QuickTrainer

    def data_label(self) -> str:
        """The data source as measured: name, labelling and per-class cap."""
        return self.data.label()

    def budget_label(self) -> str:
        split = "train/val/test split re-drawn per seed" if self.split_seeds else "one train/val/test split"
        return f"{self.budget.label()}, {self.seeds} paired seed(s), {split}"


@dataclass(frozen=True)
class Candidate:
    """One network to train: a key, its description, the pixels it trains at, and facts to report.

    A control may train on ``budget_fraction`` of the study's budget, or with its training seeds
    moved by ``seed_offset`` (another initialisation and data order on the same images)."""

    key: str
    desc: Network
    img_size: int
    role: str = "candidate"  # "candidate", "reference", "baseline", "control"
    facts: Mapping[str, Any] = field(default_factory=dict)
    pretrained: bool = False  # start from the published ImageNet weights of ``desc.name``
    budget_fraction: float = 1.0
    seed_offset: int = 0


#: The positive controls a study may use: ``budget`` (the base at a quarter of the budget against the
#: base at the full budget: a difference of known direction that no scaling method produces) and
#: ``compound`` (the base against the base compound-scaled to 4x its multiply-adds; it assumes part
#: of what scaling studies test, and is kept to resume and compare studies made with it).
CONTROLS = ("budget", "compound")
#: The share of the budget the ``budget`` control's short run gets.
CONTROL_FRACTION = 0.25
#: How far the negative control's training seeds are moved from the base's.
TWIN_SEED_OFFSET = 1000


def _base_facts(base: Network, img_size: int, **extra: Any) -> dict[str, Any]:
    c = cost(base, img_size)
    return {"method": "baseline", "target_ratio": 1.0, "achieved_ratio": 1.0, "macs": c.macs, "params": c.params,
            "multiplier": 1.0, **extra}


def control_pair(base: Network, img_size: int) -> tuple[Candidate, Candidate]:
    """The ``compound`` positive control: the base, and the base compound-scaled (paper's
    coefficients) to 4x its multiply-adds (nearest rounding step, :func:`effnet.arch.matching.match_flops`)."""

    small = Candidate("base", base, img_size, "baseline", _base_facts(base, img_size))
    big = match_flops(base, "compound", CONTROL_RATIO, img_size=img_size, iterations=30)
    return small, Candidate("control-4x", big.desc, big.img_size, "control",
                            {"method": "compound", "target_ratio": CONTROL_RATIO, "achieved_ratio": big.ratio,
                             "macs": big.macs, "params": big.params, "multiplier": big.multiplier})


def budget_controls(base: Network, img_size: int) -> list[Candidate]:
    """The ``budget`` positive control's short run (the base on a quarter of the budget; the study's
    own base is the long run) and the negative control (the base again with other training seeds),
    which must come out indistinguishable from the base."""
    return [Candidate("base-quarter", base.replace(name=f"{base.name}-quarter-budget"), img_size, "control",
                      _base_facts(base, img_size, method="base, quarter budget", budget_fraction=CONTROL_FRACTION),
                      budget_fraction=CONTROL_FRACTION),
            Candidate("base-twin", base.replace(name=f"{base.name}-twin"), img_size, "control",
                      _base_facts(base, img_size, method="base, other seeds", seed_offset=TWIN_SEED_OFFSET),
                      seed_offset=TWIN_SEED_OFFSET)]


def control_description(kind: str, ratio: float | None = None) -> str:
    """The positive control in words, as a verdict names it."""
    if kind == "budget":
        return f"the base at the full budget against the base at {CONTROL_FRACTION:g} of it"
    return f"the base compound-scaled to {ratio:.2f}x multiply-adds against the base" if ratio else \
        "the base compound-scaled to 4x multiply-adds against the base"


def candidate_specs(candidates: Sequence[Candidate], seeds: int) -> list[TrialSpec]:
    specs = []
    for cand in candidates:
        info = {"resolution": cand.img_size, "description": cand.desc.to_dict(),
                **({"pretrained": True} if cand.pretrained else {}),
                **({"budget_fraction": cand.budget_fraction} if cand.budget_fraction != 1.0 else {}),
                **({"seed_offset": cand.seed_offset} if cand.seed_offset else {})}
        for seed in range(seeds):
            specs.append(TrialSpec(f"{cand.key}-s{seed}", {"candidate": cand.key, "seed": seed}, info))
    return specs


# ----- per-image predictions, compact ---------------------------------------------------------

def pack(values: Sequence[int]) -> str:
    """Class indices as base64 of unsigned bytes (or 16-bit words above 255 classes)."""
    import numpy as np

    arr = np.asarray(values, dtype=np.int64)
    dtype = np.uint8 if arr.size == 0 or arr.max() < 256 else np.uint16
    return ("u16:" if dtype == np.uint16 else "") + base64.b64encode(arr.astype(dtype).tobytes()).decode("ascii")


def unpack(text: str) -> np.ndarray:
    import numpy as np

    if text.startswith("u16:"):
        return np.frombuffer(base64.b64decode(text[4:]), dtype=np.uint16).astype(np.int64)
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).astype(np.int64)


class Scorer:
    """Trains one (candidate, seed) trial with the study's trainer; keeps per-image predictions."""

    def __init__(self, trainer: Evaluator) -> None:
        self.trainer = trainer

    def __call__(self, spec: TrialSpec, reporter) -> dict[str, Any]:
        desc = with_classes(Network.from_dict(spec.info["description"]), self.trainer)
        px = int(spec.info["resolution"])
        extra = {"pretrained": True} if spec.info.get("pretrained") else {}
        for key in ("budget_fraction", "seed_offset"):  # a control's own budget or seeds
            if key in spec.info:
                extra[key] = spec.info[key]
        out = timed_training(self.trainer, desc, px, int(spec.params["seed"]), reporter, **extra)
        c = cost(desc, px)
        result = {"value": float(out["val_acc"]), "params": c.params, "macs": c.macs, "resolution": px,
                  "num_classes": desc.num_classes}
        for k, v in out.items():
            if k.endswith(("_pred", "_target")):
                result[k] = pack(v)
            elif k == "recipe":  # the training decisions, with their reasons
                result[k] = v
            elif isinstance(v, (int, float, str, bool)) or v is None:
                result[k] = v
        return result


def open_study(kind: str, config: StudyConfig, opts: StudyOptions, name: str, candidates: Sequence[Candidate],
               pruner=None) -> PlannedStudy:
    """The one storage opener: the folder, the database, the settings check, the plan."""
    Path(opts.out_dir).mkdir(parents=True, exist_ok=True)
    storage = open_storage(normalise_url(opts.storage, opts.out_dir), heartbeat_interval=opts.heartbeat_interval,
                           grace_period=opts.grace_period, max_retry=opts.max_retry)
    study = PlannedStudy(storage, name, kind, config.settings(), candidate_specs(candidates, config.seeds),
                         pruner=pruner, max_retry=opts.max_retry, storage_wait_s=opts.storage_wait_s)
    study.check_existing()  # refuses a study made with other settings before any data is read
    return study


def run_study(kind: str, config: StudyConfig, opts: StudyOptions, name: str,
              plan: Callable[[int | None], Sequence[Candidate]], *, trainer: Evaluator | None = None, on_event=None,
              pruner_factory: Callable[[], Any] | None = None) -> PlannedStudy:
    """Run (or resume, or join) a study of ``plan(num_classes)`` x ``config.seeds``; returns it."""
    opts.check()
    study = open_study(kind, config, opts, name, plan(getattr(trainer, "num_classes", None) if trainer else None),
                       pruner_factory() if pruner_factory else None)
    if trainer is None:
        trainer = config.trainer().load(config.img_size)
        trainer.show_progress = opts.progress
        study = open_study(kind, config, opts, name, plan(trainer.num_classes),
                           pruner_factory() if pruner_factory else None)
    study.prepare()
    scorer = Scorer(trainer)
    run_local_workers(_worker, (kind, config, opts, name, plan, pruner_factory), opts.workers,
                      local=lambda: study.run(scorer, max_trials=opts.n_trials, wait=opts.wait, on_event=on_event))
    return study


def _worker(kind, config, opts, name, plan, pruner_factory) -> int:
    trainer = config.trainer().load(config.img_size)
    trainer.show_progress = opts.progress
    study = open_study(kind, config, opts, name, plan(trainer.num_classes),
                       pruner_factory() if pruner_factory else None).prepare()
    return study.run(Scorer(trainer), max_trials=opts.n_trials, wait=opts.wait)


# ----- analysis ----------------------------------------------------------------------------

def _scores(records: Sequence, split: str) -> list[np.ndarray] | None:
    """Per seed, per image 1/0 for ``split`` ("val" or "test"); ``None`` when predictions are missing."""
    out = []
    for r in records:
        pred, target = r.attrs.get(f"{split}_pred"), r.attrs.get(f"{split}_target")
        if pred is None or target is None:
            return None
        out.append((unpack(pred) == unpack(target)).astype(float))
    return out


def aligned_scores(cands: Sequence[Sequence], split: str) -> list[list[np.ndarray]] | None:
    """Per-image scores of every candidate, checked to be on the same images (same targets per seed)."""
    scores = [_scores(recs, split) for recs in cands]
    if any(s is None for s in scores):
        return None
    for k in range(len(cands[0])):
        targets = {cands[c][k].attrs.get(f"{split}_target") for c in range(len(cands))}
        if len(targets) != 1:
            raise EffnetError(f"seed {k}: candidates were scored on different {split} images; "
                              "a study needs one data split per seed")
    return scores


def analyse(study: PlannedStudy, config: StudyConfig, candidates: Sequence[Candidate],
            groups: Mapping[str, Sequence[str]] | None = None,
            control: tuple[str, str] = ("base", "control-4x"),
            chains: Mapping[str, Sequence[tuple[str, str]]] | None = None,
            negative: tuple[str, str] | None = None, control_kind: str = "compound") -> dict[str, Any]:
    """Per candidate: cost, training received, mean and 95% interval, paired differences to the best
    of its group and to the baseline, the indistinguishable set, test accuracy; the control's verdict;
    the verdict line.

    ``groups`` maps a label to the keys compared with each other (default: every candidate that is
    not the baseline or the control, in one group labelled ""). A winner of a group is named only
    when it passes every rule of :mod:`effnet.search.verdict` (control completed and separated, two
    or more candidates in its group, two or more seeds, alone after the indistinguishable set).
    ``chains`` (method -> successive (lower, higher) keys) adds the saturation test. ``control`` is the
    positive control's (smaller, bigger) pair, described by ``control_kind`` (:data:`CONTROLS`);
    ``negative`` the negative control's pair (the base and its twin), which must come out
    indistinguishable for a winner to be named.
    """
    import numpy as np

    from . import stats  # lazy: numpy only when analysing; `search scale --list` plans without it
    from .verdict import Design, decide  # lazy: as stats

    results = study.results()
    attempts = study.attempts()
    rows: dict[str, dict[str, Any]] = {}
    done_by_key: dict[str, list] = {}
    for cand in candidates:
        recs = [results.get(f"{cand.key}-s{k}") for k in range(config.seeds)]
        done = [r for r in recs if r is not None and r.state == "COMPLETE"]
        accs = [r.value for r in done]
        times = [r.attrs.get("train_time_s") for r in done if r.attrs.get("train_time_s") is not None]
        desc = cand.desc.replace(num_classes=int(done[0].attrs["num_classes"])) if done and done[0].attrs.get(
            "num_classes") else cand.desc
        c = cost(desc, cand.img_size)
        rows[cand.key] = {
            "key": cand.key, "role": cand.role, "resolution": cand.img_size, "params": c.params, "macs": c.macs,
            **dict(cand.facts), "seeds_done": len(done), "seeds": config.seeds, "run_acc": accs,
            "run_mean": statistics.fmean(accs) if accs else None,
            "run_std": statistics.stdev(accs) if len(accs) > 1 else None,
            "train_time_s": sum(times) if times else None,
            "epochs_trained": config.budget.epochs * len(done) if config.budget.steps is None else None,
            "steps_trained": sum(int(r.attrs.get("steps") or 0) for r in done),
            "attempts": sum(attempts.get(f"{cand.key}-s{k}", 0) for k in range(config.seeds)),
            "mean": None, "ci_low": None, "ci_high": None, "indistinguishable_from_best": None}
        if len(done) == config.seeds:
            done_by_key[cand.key] = done
    summary: dict[str, Any] = {"rows": list(rows.values()), "complete": len(done_by_key), "candidates": len(rows),
                               "draws": config.bootstrap_draws}
    if groups is None:
        groups = {"": [c.key for c in candidates if c.role not in ("baseline", "control")]}
    if not done_by_key:
        summary.update(verdict="No candidate has finished all its seeds yet; rerun the same command to continue.",
                       decided=False, best=None, winner=None, control=None, groups={})
        return summary
    keys = list(done_by_key)
    val = aligned_scores([done_by_key[k] for k in keys], "val")
    by_image = val is not None
    if not by_image and config.seeds < 2:
        # one accuracy from one run per candidate: there is nothing to estimate noise from
        for k in keys:
            rows[k]["mean"] = rows[k]["run_mean"]
        contenders = [k for members in groups.values() for k in members if k in done_by_key]
        leader = max(contenders, key=lambda k: rows[k]["mean"]) if contenders else None
        summary.update(verdict="Not decided: one seed and one accuracy per run (no per-image predictions), so no "
                               "interval can be computed; no winner is named. Use --seeds 3 or more.",
                       decided=False, best=leader, winner=None, control=None, groups={}, by_image=False,
                       indistinguishable=None, selection="chosen on validation accuracy")
        return summary
    scores = dict(zip(keys, val if by_image else [[np.array([r.value]) for r in done_by_key[k]] for k in keys]))
    design = Design(config.seeds, config.split_seeds, config.bootstrap_draws)
    # the compound control's size is its multiply-adds ratio; the budget control's two runs cost the same
    ratio = rows.get(control[1], {}).get("achieved_ratio") if control_kind == "compound" else None
    out = decide(keys, scores, design, roles={k: rows[k]["role"] for k in keys}, groups=groups,
                 control=control, control_ratio=ratio, by_image=by_image, chains=chains, negative=negative,
                 control_text=control_description(control_kind, ratio))
    for k in keys:
        rows[k].update(out["per_key"][k])
    test = aligned_scores([done_by_key[k] for k in keys], "test")
    if test is not None:
        tcmp = stats.compare(keys, test, draws=config.bootstrap_draws, seed=1, image_ids=design.image_ids(test))
        for i, k in enumerate(keys):
            rows[k].update(test_mean=tcmp.mean[i], test_ci_low=tcmp.ci[i][0], test_ci_high=tcmp.ci[i][1])
    n_img = sorted({int(np.size(s)) for k in keys for s in scores[k]})
    scope = (f"{config.seeds} paired seed(s) x {'/'.join(map(str, n_img))} validation images" if by_image
             else f"{config.seeds} paired seed(s), one accuracy per run (no per-image predictions)")
    scope += ("; each seed has its own train/validation/test split" if config.split_seeds
              else "; the seeds share one split, so each image counts once")
    if config.seeds == 1:
        scope += "; one seed: seed-to-seed noise is not covered"
    control_out = out["control"]
    for r in rows.values():
        r["control_separated"] = control_out["separated"]
    group_out = out["groups"]
    only = group_out.get("") or (next(iter(group_out.values())) if len(group_out) == 1 else None)
    summary.update(
        verdict=f"{out['verdict']} [{scope}]", decided=out["decided"], scope=scope, by_image=by_image,
        control=control_out, negative_control=out.get("negative_control"), groups=group_out,
        saturation=out.get("saturation"),
        best=only["best"] if only else None, winner=only["winner"] if only else None,
        indistinguishable=only["indistinguishable"] if only else None,
        selection=("chosen on validation images; test accuracy is reported separately and never used to choose"
                   if test is not None else "chosen on validation images (no test split was scored)"),
        predictions=_predictions(done_by_key, keys) if by_image else None,
    )
    return summary


def majority_rate(records: Sequence, split: str = "val") -> float | None:
    """Accuracy of always answering the most frequent class, over the scored ``split`` images of
    every record (what a network that learned nothing can reach)."""
    import numpy as np

    targets = [unpack(r.attrs[f"{split}_target"]) for r in records if r.attrs.get(f"{split}_target")]
    if not targets:
        return None
    allt = np.concatenate(targets)
    return float(np.bincount(allt).max() / allt.size)


def control_lines(analysis: Mapping[str, Any]) -> list[str]:
    """The controls, one line each and a blank line, for the top of a study's summary."""
    lines = [c["text"] for c in (analysis.get("control"), analysis.get("negative_control"))
             if isinstance(c, Mapping) and c.get("text")]
    return [*lines, ""] if lines else []


def _predictions(done_by_key: Mapping[str, Sequence], keys: Sequence[str]) -> dict[str, Any]:
    """Per-image predictions as stored with the trials (packed), so a summary can be re-analysed alone."""
    first = done_by_key[keys[0]]
    out: dict[str, Any] = {"candidates": {}}
    for split in ("val", "test"):
        if all(r.attrs.get(f"{split}_target") for r in first):
            out[f"{split}_target"] = [r.attrs[f"{split}_target"] for r in first]
    for k in keys:
        out["candidates"][k] = {f"{split}_pred": [r.attrs[f"{split}_pred"] for r in done_by_key[k]]
                                for split in ("val", "test") if f"{split}_target" in out}
    return out


def scores_from_predictions(predictions: Mapping[str, Any], split: str = "val") -> dict[str, list[np.ndarray]]:
    """Per candidate, per seed 1/0 per image, from :func:`_predictions`'s record in a summary."""
    targets = [unpack(t) for t in predictions[f"{split}_target"]]
    return {k: [(unpack(p) == t).astype(float) for p, t in zip(c[f"{split}_pred"], targets)]
            for k, c in predictions["candidates"].items()}


def run_record(study: PlannedStudy) -> dict[str, Any]:
    """When and where the study's complete trials ran: the span from the first start to the last
    finish, the summed trial time, and this machine (CPU, cores, torch). Written beside every
    summary, so a document quoting the study can say what it cost."""
    done = [r for r in study.records() if r.state == "COMPLETE" and r.started and r.finished]
    out: dict[str, Any] = {"trials": len(done), **machine.environment()}
    if done:
        out.update(machine.span([r.started for r in done], [r.finished for r in done]),
                   trial_s=sum(r.duration_s or 0.0 for r in done))
    return out


def write_json(path: str | Path, summary: Mapping[str, Any]) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(summary, indent=2, default=float) + "\n")
    return path


def trained_classes(study: PlannedStudy) -> int | None:
    """The classifier size the trials trained with (recorded by each trial)."""
    for r in study.records():
        if r.attrs.get("num_classes") is not None:
            return int(r.attrs["num_classes"])
    return None
