"""Transfer (the paper's Table 5 and Figure 6, in small): ImageNet initialisation against training
from scratch, for networks of several sizes, on one data set.

Planner: every model x initialisation (``imagenet``: the published weights with a new classifier;
``scratch``: the same network from random weights) x paired seed, as trials keyed (model, init,
seed) in one resumable study. Each run takes the recipe :func:`effnet.train.recipe.decide` gives
it: the fine-tune regime for ImageNet weights (with the BatchNorm mode following the images'
statistics, as ``effnet finetune`` does), the short from-scratch regime otherwise; the decisions
are recorded with every trial. Every run of seed ``k`` sees the same images in the same order and
starts its new classifier the same way (at zero), whatever its model and initialisation.

Scorer: :class:`TransferTrainer` (``quick_train`` with per-image predictions). Report: test top-1
of every candidate with a 95% two-level bootstrap interval (seeds, then test images), the paired
difference ImageNet minus scratch per model and over all models, the paired difference between
consecutive model sizes within each initialisation, and one figure. Nothing is selected, so every
number is on test images; validation accuracy is kept in the JSON only.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from ...arch import Network, get_network
from ...errors import EffnetError
from ...fsutil import atomic_write_text
from ...train import quick_train
from ...train.recipe import input_statistics
from ...weights.meta import Preprocessing
from ...weights.pretrained import OFFLINE_WEIGHTS
from .. import plots
from ..runner import StudyOptions
from ..stats import independent_splits, paired_difference
from ..storage import redact
from ..study import (Candidate, StudyConfig, aligned_scores, analyse, majority_rate, run_record, run_study,
                     trained_classes, write_json)
from ..tables import Column, fixed, millions, plain, public_row, to_markdown
from ..training import QuickTrainer, trial_result

KIND = "transfer study"
INITS = ("imagenet", "scratch")
DEFAULT_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def label(model: str) -> str:
    """``efficientnet_lite0`` -> ``Lite0``."""
    short = model.removeprefix("efficientnet_")
    return short[:1].upper() + short[1:]


def offline_numerics(model: str) -> tuple[tuple[float, ...], tuple[float, ...], str | None]:
    """Mean, std and padding convention of the published weights of ``model``; an error when none load offline."""
    if model not in OFFLINE_WEIGHTS:
        raise EffnetError(f"{model} has no ImageNet weights available offline, which the imagenet initialisation "
                          f"needs; offline weights: {', '.join(OFFLINE_WEIGHTS)}")
    _, prep, numerics = OFFLINE_WEIGHTS[model]()
    return tuple(prep.mean), tuple(prep.std), numerics.padding


@dataclass
class TransferTrainer(QuickTrainer):
    """``quick_train`` with the recipe it decides; ``pretrained=True`` fine-tunes the published weights.

    Every candidate reads the data with the pretrained weights' normalisation (``mean``, ``std``),
    so all of them see the same pixels, and a network from scratch takes the weights' ``padding``
    convention, so both initialisations train the same network.
    """

    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    padding: str | None = None

    def preprocessing(self, img_size: int):
        return Preprocessing(resolution=img_size, mean=tuple(self.mean), std=tuple(self.std))

    def __call__(self, desc: Network, img_size: int, seed: int, reporter: Any = None, pretrained: bool = False
                 ) -> dict[str, Any]:
        splits = self.splits(img_size, seed)
        stats = None
        if pretrained:
            sample = splits.val if len(splits.val) else splits.train
            stats = input_statistics(sample, self.mean, self.std)
        b = self.budget
        length = b.train_options(len(splits.train))  # epochs and step cap (the recipe is the run's own)
        out = quick_train(desc.replace(num_classes=splits.num_classes), splits, img_size=img_size,
                          epochs=length["epochs"], batch_size=b.batch_size, lr=b.lr, seed=seed,
                          progress=self.progress_label(desc, seed),
                          max_steps=length["max_steps"], predictions=True, input_stats=stats,
                          **({"pretrained": "true"} if pretrained else {"padding": self.padding}))
        return {**trial_result(out), "recipe": out["recipe"]}


@dataclass(frozen=True)
class TransferStudyConfig(StudyConfig):
    """Models, the fine-tuning resolution and the budget; ``base`` is the first model's description."""

    base: Network | None = None
    img_size: int = 128
    models: tuple[str, ...] = DEFAULT_MODELS

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.models:
            raise EffnetError("give at least one model")
        if self.base is None:
            object.__setattr__(self, "base", get_network(self.models[0]))

    def check(self) -> None:
        self.check_budget()
        if len(set(self.models)) != len(self.models):
            raise EffnetError("models must be distinct")
        numerics = {offline_numerics(get_network(m).name) for m in self.models}
        if len(numerics) > 1:
            raise EffnetError("the models' pretrained weights expect different input normalisations or padding; "
                              "compare models that share them")

    def trainer_type(self):
        mean, std, padding = offline_numerics(self.models[0])
        return partial(TransferTrainer, mean=mean, std=std, padding=padding)

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out.pop("recipe")  # each run's recipe is decided by the run (recorded per trial)
        return out

    def budget_label(self) -> str:
        split = "train/val/test split re-drawn per seed" if self.split_seeds else "one train/val/test split"
        return (f"{self.budget.epochs} epoch(s) at {self.img_size} px, recipe decided per run (ImageNet weights: "
                f"fine-tune regime; scratch: short regime), batch {self.budget.batch_size}, {self.seeds} paired seed(s), "
                f"{split}")

    def candidates(self, num_classes: int | None = None) -> list[Candidate]:
        out = []
        for model in self.models:
            desc = get_network(model)
            desc = desc if num_classes is None else desc.replace(num_classes=num_classes)
            for init in INITS:
                out.append(Candidate(f"{model}-{init}", desc, self.img_size, "candidate",
                                     {"model": model, "label": label(model), "init": init,
                                      "native_resolution": desc.resolution}, pretrained=init == "imagenet"))
        return out


def run_transfer_study(config: TransferStudyConfig, opts: StudyOptions, *, trainer=None,
                       on_event: Callable | None = None) -> dict[str, Any]:
    """Run (or resume, or join) the transfer study and write its report; returns the summary."""
    config.check()
    name = opts.study_name or "transfer-study"
    study = run_study(KIND, config, opts, name, config.candidates, trainer=trainer, on_event=on_event)
    return write_report(study, config, opts.out_dir, num_classes=getattr(trainer, "num_classes", None))


# ----- analysis ----------------------------------------------------------------------------

def _signed(d: dict[str, float]) -> str:
    return f"{100 * d['diff']:+.1f} points (95% CI {100 * d['ci_low']:+.1f} to {100 * d['ci_high']:+.1f})"


def _concat(parts: Sequence[Sequence], split_seeds: bool = False) -> tuple[list, list]:
    """Per seed, the images of several candidates side by side (a pooled paired comparison), and the
    ids of those images: every model scored the same images, so each image keeps one id however
    many models scored it (seeds with their own splits keep theirs apart)."""
    import numpy as np

    seeds = len(parts[0])
    offset = np.cumsum([0] + [np.size(parts[0][k]) for k in range(seeds)]) if split_seeds else np.zeros(seeds + 1, int)
    scores = [np.concatenate([p[k] for p in parts]) for k in range(seeds)]
    ids = [np.tile(offset[k] + np.arange(np.size(parts[0][k])), len(parts)) for k in range(seeds)]
    return scores, ids


def compare_inits(scores: dict[str, list], rows: dict[str, dict], models: Sequence[str], draws: int,
                  split_seeds: bool = False) -> dict[str, Any]:
    """Paired differences on per-image scores ``scores[key][seed]``: ImageNet minus scratch per model and
    pooled, and each model minus the next smaller one (by multiply-adds) within each initialisation."""
    first = scores[f"{models[0]}-imagenet"]
    ids = independent_splits([len(s) for s in first]) if split_seeds else None
    per_model = {m: paired_difference(scores[f"{m}-imagenet"], scores[f"{m}-scratch"], draws=draws, seed=10 + i,
                                      image_ids=ids) for i, m in enumerate(models)}
    a, pooled_ids = _concat([scores[f"{m}-imagenet"] for m in models], split_seeds)
    b, _ = _concat([scores[f"{m}-scratch"] for m in models], split_seeds)
    pooled = paired_difference(a, b, draws=draws, seed=9, image_ids=pooled_ids)
    by_size = sorted(models, key=lambda m: rows[f"{m}-scratch"]["macs"])
    bigger = []
    for init in INITS:
        for j, (small, big) in enumerate(zip(by_size, by_size[1:])):
            d = paired_difference(scores[f"{big}-{init}"], scores[f"{small}-{init}"], draws=draws,
                                  seed=20 + j + 10 * INITS.index(init), image_ids=ids)
            bigger.append({"init": init, "bigger": big, "smaller": small, **d})
    return {"per_model": per_model, "pooled": pooled, "bigger_vs_smaller": bigger}


def verdict_line(cmp: dict[str, Any], models: Sequence[str]) -> str:
    per = cmp["per_model"]
    detail = "; ".join(f"{label(m)} {_signed(per[m])}" for m in models)
    above = [m for m in models if per[m]["ci_low"] > 0]
    below = [m for m in models if per[m]["ci_high"] < 0]
    if len(above) == len(models):
        head = "ImageNet initialisation beats training from scratch for every model"
    elif len(below) == len(models):
        head = "Training from scratch beats ImageNet initialisation for every model"
    elif not above and not below:
        head = "ImageNet initialisation and training from scratch cannot be told apart for any model"
    else:
        head = (f"Mixed: ImageNet initialisation is ahead for {', '.join(map(label, above)) or 'none'}, behind for "
                f"{', '.join(map(label, below)) or 'none'}, and cannot be told apart from scratch for the rest")
    return f"{head}: {_signed(cmp['pooled'])} over all models ({detail})"


ROW_COLUMNS = [
    Column("label", "model", plain), Column("init", "init", plain), Column("resolution", "px", plain),
    Column("native_resolution", "native px", plain), Column("params", "params (M)", millions),
    Column("macs", "FLOPs (M mult-adds)", millions), Column("seeds_text", "seeds", plain),
    Column("regime", "recipe regime", plain), Column("test_text", "test top-1 [95% CI]", plain),
    Column("time_s", "train s (mean)", fixed(1)),
]


def _recipe_of(recs) -> dict[str, Any] | None:
    for r in recs:
        if r is not None and isinstance(r.attrs.get("recipe"), dict):
            return {k: v.get("value") for k, v in r.attrs["recipe"].items() if isinstance(v, dict)}
    return None


def write_report(study, config: TransferStudyConfig, out_dir: str | Path, *, num_classes: int | None = None
                 ) -> dict[str, Any]:
    """``transfer.md``, ``transfer.json`` and ``transfer.png`` in ``out_dir``; returns the summary."""

    out = Path(out_dir)
    cands = config.candidates(num_classes or trained_classes(study) or config.base.num_classes)
    analysis = analyse(study, config, cands)
    rows = {r["key"]: r for r in analysis["rows"]}
    results = study.results()
    done = {}
    for c in cands:
        recs = [results.get(f"{c.key}-s{k}") for k in range(config.seeds)]
        row = rows[c.key]
        decisions = _recipe_of(recs)
        row.update(regime=(decisions or {}).get("regime"), recipe=decisions,
                   seeds_text=f"{row['seeds_done']}/{config.seeds}",
                   time_s=row["train_time_s"] / row["seeds_done"] if row.get("train_time_s") else None,
                   val_mean=row.get("mean"), val_ci_low=row.get("ci_low"), val_ci_high=row.get("ci_high"))
        if row["seeds_done"] == config.seeds:
            done[c.key] = recs
    split, cmp, majority = "test", None, None
    if len(done) == len(cands):
        keys = list(done)
        scores = aligned_scores([done[k] for k in keys], "test")
        if scores is None:
            raise EffnetError("the trials kept no per-image test predictions; the data needs a test split")
        cmp = compare_inits(dict(zip(keys, scores)), rows, config.models, config.bootstrap_draws,
                            split_seeds=config.split_seeds)
        majority = majority_rate(done[keys[0]], "test")
        n_img = sorted({int(s.size) for s in scores[0]})
        scope = f"{config.seeds} paired seed(s) x {'/'.join(map(str, n_img))} test images"
        if config.seeds == 1:
            scope += "; one seed: seed-to-seed noise is not covered"
        verdict = f"{verdict_line(cmp, config.models)}. [{scope}]"
    else:
        p = study.progress()
        verdict = (f"Not finished: {len(done)} of {len(cands)} candidates have all {config.seeds} seed(s) "
                   f"({p['complete']} trials complete); rerun the same command to continue.")
    for r in rows.values():
        r["test_text"] = ("" if r.get("test_mean") is None or cmp is None else
                          f"{r['test_mean']:.4f} [{r['test_ci_low']:.4f}, {r['test_ci_high']:.4f}]")
    native = ", ".join(f"{label(m)} {get_network(m).resolution}" for m in config.models)
    what = (f"{', '.join(map(label, config.models))} on {config.data_label()}, {config.budget_label()}; fine-tuned "
            f"at {config.img_size} px (native resolutions: {native}); test top-1 with 95% two-level bootstrap "
            f"intervals (seeds, then test images, {config.bootstrap_draws} draws); FLOPs are multiply-adds at "
            f"{config.img_size} px")
    ordered = [rows[c.key] for c in cands]
    series = {init: [{**r, "acc": r.get("test_mean") if cmp else None, "ci_low": r.get("test_ci_low"),
                      "ci_high": r.get("test_ci_high")} for r in ordered if r["init"] == init] for init in INITS}
    named = {("ImageNet-initialised" if k == "imagenet" else "from scratch"): v for k, v in series.items()}
    title = f"Transfer to {config.data.source}: ImageNet weights vs scratch"
    if len(config.models) == 1:  # one network two ways: side by side, not apart on a cost axis
        plots.arms_side_by_side({k: v[0] for k, v in named.items() if v}, out / "transfer.png",
                                reference=majority, reference_label="majority class",
                                ylabel=f"{label(config.models[0])}: test top-1 accuracy", title=title, note=what)
    else:
        plots.accuracy_vs_cost(named, out / "transfer.png", reference=majority, reference_label="majority class",
                               ylabel="test top-1 accuracy", title=title, note=what)
    summary = {"verdict": verdict, "study": study.name, "storage": redact(study.storage.url), "kind": KIND,
               "measured": what, "progress": study.progress(), "finished": cmp is not None,
               "fine_tuning_resolution": config.img_size, "majority_class_accuracy": majority,
               "imagenet_minus_scratch": cmp and {"pooled": cmp["pooled"], **cmp["per_model"]},
               "bigger_minus_smaller": cmp and cmp["bigger_vs_smaller"],
               "selection": f"nothing is selected; every accuracy is on {split} images",
               "per_candidate": [public_row(r) for r in ordered],
               "settings": {k: v for k, v in config.settings().items() if k != "base"},
               "run": run_record(study), "predictions": analysis.get("predictions")}
    write_json(out / "transfer.json", summary)
    atomic_write_text(out / "transfer.md", report_markdown(summary, ordered))
    return summary


def report_markdown(summary: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    lines = [summary["verdict"], "", f"# Transfer study: {summary['study']}", "", f"Measured: {summary['measured']}.",
             "", f"Selection: {summary['selection']}.", ""]
    if summary["majority_class_accuracy"] is not None:
        lines += [f"Majority-class accuracy on the test images: {summary['majority_class_accuracy']:.4f}.", ""]
    lines += ["![test accuracy vs FLOPs and parameters](transfer.png)", "", to_markdown(rows, ROW_COLUMNS)]
    diffs = summary["imagenet_minus_scratch"]
    if diffs:
        lines += ["## ImageNet minus scratch (test top-1, paired)", ""]
        lines += [f"- {'all models' if k == 'pooled' else label(k)}: {_signed(d)}" for k, d in diffs.items()]
        lines += ["", "## Bigger minus smaller model, within each initialisation (test top-1, paired)", ""]
        if not summary["bigger_minus_smaller"]:
            lines.append("One model: no sizes to compare.")
        lines += [f"- {d['init']}: {label(d['bigger'])} - {label(d['smaller'])}: {_signed(d)}"
                  f"{' (bigger is better)' if d['separated'] else ' (cannot be told apart)' if d['ci_high'] >= 0 else ' (smaller is better)'}"
                  for d in summary["bigger_minus_smaller"]]
    lines += ["", "## Recipe decided per run", ""]
    for r in rows:
        if r.get("recipe"):
            lines.append(f"- {r['label']} {r['init']}: " + ", ".join(f"{k} {v}" for k, v in r["recipe"].items()))
    return "\n".join(lines) + "\n"


__all__ = ["TransferStudyConfig", "TransferTrainer", "run_transfer_study", "write_report", "compare_inits",
           "verdict_line", "write_json"]
