"""Racing (successive halving) over candidates x seeds, so that more seeds fit in the same time.

Round 0 trains every candidate of a study's plan at the given budget and seeds. After each round
the survivors are the top ``1/eta`` by mean validation accuracy plus every candidate
indistinguishable from the best (the paired statistics of :mod:`effnet.search.study`); the next
round doubles the epochs and the seeds. The positive control (the base and the base at 4x) runs in
every round, so every round can say whether its budget resolves scaling at all. Each round is its
own study on the engine (``<name>-race<r>``), so a race resumes like any study; the survivors of a
round follow from the stored results, so a rerun rebuilds the same rounds.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, Sequence

from ...checks import check_int
from ...errors import EffnetError
from ..runner import StudyOptions
from ..study import Candidate, StudyConfig, analyse, run_study, trained_classes, write_json


def run_race(kind: str, config: StudyConfig, opts: StudyOptions, name: str,
             plan: Callable[[int | None], Sequence[Candidate]], *, rounds: int = 3, eta: int = 3, trainer=None,
             on_event: Callable | None = None) -> dict[str, Any]:
    """Race ``plan``'s candidates for ``rounds`` rounds; returns the last round's analysis and the
    training every candidate received (epochs x seeds, summed over rounds)."""
    check_int("racing rounds", rounds, 1)
    check_int("racing eta", eta, 2)
    alive: set[str] | None = None
    received: dict[str, int] = {}
    history = []
    analysis: dict[str, Any] = {}
    for r in range(rounds):
        cfg = dataclasses.replace(config, budget=config.budget.scaled(2**r), seeds=config.seeds * 2**r)

        def round_plan(num_classes, cfg=cfg, alive=alive):
            cands = list(plan(num_classes))
            return [c for c in cands if alive is None or c.key in alive or c.role in ("baseline", "control")]

        study = run_study(kind, cfg, opts, f"{name}-race{r}", round_plan, trainer=trainer, on_event=on_event)
        classes = getattr(trainer, "num_classes", None) or trained_classes(study)
        cands = round_plan(classes)
        analysis = analyse(study, cfg, cands, control=cfg.control_keys(), negative=cfg.negative_keys(),
                           control_kind=cfg.control)
        rows = {row["key"]: row for row in analysis["rows"]}
        for c in cands:
            received[c.key] = received.get(c.key, 0) + cfg.budget.amount()[0] * rows[c.key]["seeds_done"]
        contenders = [row for row in analysis["rows"] if row["role"] not in ("baseline", "control")]
        if any(row["seeds_done"] < cfg.seeds for row in analysis["rows"]):
            raise EffnetError(f"racing round {r} is not finished (some trials failed or run elsewhere); "
                              "rerun the same command to continue")
        ranked = sorted(contenders, key=lambda row: -row["mean"])
        keep = {row["key"] for row in ranked[:max(1, math.ceil(len(ranked) / eta))]}
        keep |= {row["key"] for row in contenders if row.get("indistinguishable_from_best")}
        amount, unit = cfg.budget.amount()
        history.append({"round": r, unit: amount, "seeds": cfg.seeds, "candidates": len(contenders),
                        "kept": sorted(keep), "verdict": analysis["verdict"]})
        if len(keep) == 1:
            break
        alive = keep
    summary = {"verdict": analysis["verdict"], "decided": analysis["decided"], "winner": analysis.get("winner"),
               "rounds": history, "training_received": {k: {f"{config.budget.amount()[1][:-1]}_seeds": v} for k, v in received.items()},
               "control": analysis.get("control"), "negative_control": analysis.get("negative_control"),
               "per_candidate": analysis["rows"]}
    write_json(Path(opts.out_dir) / "race.json", summary)
    return summary
