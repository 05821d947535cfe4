"""Kinds of study, one module each, built on the core of :mod:`effnet.search`.

- :mod:`.grid`: the compound-scaling coefficient grid search (alpha, beta, gamma at phi = 1);
- :mod:`.scaling`: width, depth, resolution alone against compound scaling (the paper's Figures 3 and 8);
- :mod:`.transfer`: ImageNet weights fine-tuned against training from scratch;
- :mod:`.proxy`: whether a cheap budget ranks candidates as a larger one does;
- :mod:`.racing`: candidates dropped as soon as the paired statistics separate them.

A new kind is one module here: a config (a :class:`effnet.search.study.StudyConfig`), a planner
that returns :class:`effnet.search.study.Candidate` objects, and a report on top of
:func:`effnet.search.study.analyse`; then a command in :mod:`effnet.cli`.
"""
