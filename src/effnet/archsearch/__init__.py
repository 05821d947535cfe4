"""The architecture search (the paper's Section 4): a baseline found under a multiply-add target.

Built on the study core of :mod:`effnet.search` (engine, storage, statistics, recipes):
:mod:`.space` is the factorised search space around a base network and the paper's reward
``ACC * (FLOPS / T) ** w``; :mod:`.controller` the reinforcement-learning policy;
:mod:`.search` the search itself (RL, TPE, NSGA-II or random sampling as Optuna samplers) and its
outputs; :mod:`.compare` strategies against each other over several search seeds.
"""
