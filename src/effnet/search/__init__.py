"""Studies: the core every kind of study is built on, and the kinds (:mod:`effnet.search.kinds`).

The core: the engine (:mod:`effnet.search.engine`, Optuna's public API) with persistent storage
(a SQLite file by default, any database URL for many workers), so trials survive crashes and
interrupted studies resume where they stopped; the study itself (:mod:`effnet.search.study`:
config, candidates x paired seeds, the run, the paired analysis); the training budget
(:mod:`effnet.search.budget`); the evaluators (:mod:`effnet.search.training`); the statistics
(:mod:`effnet.search.stats`, :mod:`effnet.search.verdict`); the typed results the report reads
(:mod:`effnet.search.results`); tables and plots. A kind of study (grid search, scaling,
transfer, proxy fidelity, racing) is one module in :mod:`effnet.search.kinds`: its config, its
candidates and its report. The architecture search is its own package, :mod:`effnet.archsearch`,
on the same core. Submodules load on first use; ``effnet.search`` itself imports neither torch
nor Optuna.
"""
from __future__ import annotations

from ..lazy import lazy_getattr

_LAZY = {
    "Coefficients": "kinds.grid",
    "ScaleSearchConfig": "kinds.grid",
    "grid_candidates": "kinds.grid",
    "run_scale_search": "kinds.grid",
    "scaled_candidate": "kinds.grid",
    "ScalingStudyConfig": "kinds.scaling",
    "match_flops": "kinds.scaling",
    "plan_scaling_study": "kinds.scaling",
    "run_scaling_study": "kinds.scaling",
    "PlannedStudy": "engine",
    "TrialSpec": "engine",
    "check_settings": "engine",
    "StudyConfig": "study",
    "Candidate": "study",
    "compare": "stats",
    "StudyOptions": "runner",
    "QuickTrainer": "training",
    "Budget": "budget",
    "PROXY_RECIPES": "recipes",
    "open_storage": "storage",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
