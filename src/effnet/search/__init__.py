"""Search: the compound-scaling coefficient grid search, scaling studies and architecture search.

Each is a study of trials on one engine (:mod:`effnet.search.engine`, Optuna's public API) with
persistent storage (a SQLite file by default, any database URL for many workers), so trials survive
crashes and interrupted studies resume where they stopped. A kind of study is a planner (its
candidates), the shared scorer and paired analysis (:mod:`effnet.search.study`,
:mod:`effnet.search.stats`), and its own report.
Submodules load on first use; ``effnet.search`` itself imports neither torch nor Optuna.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "Coefficients": "scale_search",
    "ScaleSearchConfig": "scale_search",
    "grid_candidates": "scale_search",
    "run_scale_search": "scale_search",
    "scaled_candidate": "scale_search",
    "ScalingStudyConfig": "scaling_study",
    "match_flops": "scaling_study",
    "plan_scaling_study": "scaling_study",
    "run_scaling_study": "scaling_study",
    "PlannedStudy": "engine",
    "TrialSpec": "engine",
    "check_settings": "engine",
    "StudyConfig": "study",
    "Candidate": "study",
    "compare": "stats",
    "StudyOptions": "runner",
    "QuickTrainer": "training",
    "PROXY_RECIPES": "recipes",
    "open_storage": "storage",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
