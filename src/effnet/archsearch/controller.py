"""A reinforcement-learning controller over a factorised search space.

The policy is one vector of logits per decision (independent categoricals: the factorised form of
MnasNet's space, without the recurrent network that MnasNet runs over the same decisions). It is
trained by REINFORCE with an exponential-moving-average baseline. A trial sampled by an older
policy (another worker's, or one sampled before updates that arrived in the meantime) is weighted
by the importance ratio pi_now(a) / pi_then(a), clipped to ``1 +- clip`` as in PPO; for an
on-policy trial the ratio is 1 and the update is plain REINFORCE.

The whole state (logits, Adam moments, baseline, update count, the trials already learnt from)
is a JSON-able dict, so it can live in a study's user attributes (see
:mod:`effnet.archsearch.search`). Learning from trials is a fold: :meth:`Controller.learn`
takes the finished trials not yet in ``consumed``, in trial-number order.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch

STATE_VERSION = 1


@dataclass(frozen=True)
class ControllerConfig:
    """Learning settings. ``lr`` is Adam's step size on the logits."""

    lr: float = 0.05
    baseline_decay: float = 0.9
    clip: float = 0.2
    entropy_weight: float = 1e-3

    def __post_init__(self) -> None:
        for name, value, low, high in (("lr", self.lr, 0.0, math.inf), ("baseline_decay", self.baseline_decay, 0.0, 1.0),
                                       ("clip", self.clip, 0.0, 1.0), ("entropy_weight", self.entropy_weight, 0.0, math.inf)):
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value < high):
                raise ValueError(f"controller {name} must be in [{low}, {high}), got {value!r}")


class Controller:
    """Policy over ``sizes[i]`` choices for decision ``i``, with its optimiser and baseline."""

    def __init__(self, sizes: Sequence[int], config: ControllerConfig | None = None) -> None:
        sizes = tuple(int(n) for n in sizes)
        if not sizes or any(n < 1 for n in sizes):
            raise ValueError(f"controller decision sizes must be positive, got {sizes!r}")
        self.sizes = sizes
        self.config = config or ControllerConfig()
        self._offsets = [0]
        for n in sizes:
            self._offsets.append(self._offsets[-1] + n)
        # Uniform policy at the start: every architecture equally likely.
        self.logits = torch.nn.Parameter(torch.zeros(self._offsets[-1], dtype=torch.float64))
        self.optimizer = torch.optim.Adam([self.logits], lr=self.config.lr)
        self.baseline: float | None = None
        self.updates = 0
        self.consumed: set[int] = set()

    # ----- policy ----------------------------------------------------------------------
    def _log_probs(self) -> list[torch.Tensor]:
        return [torch.log_softmax(self.logits[a:b], dim=0) for a, b in zip(self._offsets, self._offsets[1:])]

    def _check(self, choices: Sequence[int]) -> tuple[int, ...]:
        choices = tuple(int(c) for c in choices)
        if len(choices) != len(self.sizes) or any(not 0 <= c < n for c, n in zip(choices, self.sizes)):
            raise ValueError(f"choice vector {choices!r} does not fit decision sizes {self.sizes!r}")
        return choices

    def log_prob(self, choices: Sequence[int]) -> float:
        """log pi(choices) under the current policy."""
        choices = self._check(choices)
        with torch.no_grad():
            return float(sum(lp[c] for lp, c in zip(self._log_probs(), choices)))

    def probabilities(self) -> list[list[float]]:
        """The current choice probabilities of every decision."""
        with torch.no_grad():
            return [lp.exp().tolist() for lp in self._log_probs()]

    def entropy(self) -> float:
        """Entropy of the whole policy in nats (the sum over the independent decisions)."""
        with torch.no_grad():
            return float(sum(-(lp.exp() * lp).sum() for lp in self._log_probs()))

    def sample(self, generator: torch.Generator | None = None) -> tuple[tuple[int, ...], float]:
        """A choice vector drawn from the policy and its log-probability."""
        with torch.no_grad():
            lps = self._log_probs()
            choices = tuple(int(torch.multinomial(lp.exp(), 1, generator=generator)) for lp in lps)
            return choices, float(sum(lp[c] for lp, c in zip(lps, choices)))

    def greedy(self) -> tuple[int, ...]:
        """The most likely choice vector."""
        with torch.no_grad():
            return tuple(int(lp.argmax()) for lp in self._log_probs())

    # ----- learning --------------------------------------------------------------------
    def update(self, choices: Sequence[int], reward: float, behaviour_log_prob: float | None = None) -> float:
        """One policy-gradient step on one trial; returns the advantage used."""
        choices = self._check(choices)
        reward = float(reward)
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward!r}")
        if self.baseline is None:
            self.baseline = reward  # the first trial only sets the baseline
            self.updates += 1
            return 0.0
        advantage = reward - self.baseline
        lps = self._log_probs()
        log_prob = sum(lp[c] for lp, c in zip(lps, choices))
        old = log_prob.detach() if behaviour_log_prob is None else torch.tensor(float(behaviour_log_prob), dtype=log_prob.dtype)
        ratio = torch.exp(log_prob - old)
        eps = self.config.clip
        surrogate = torch.minimum(ratio * advantage, ratio.clamp(1 - eps, 1 + eps) * advantage)
        entropy = sum(-(lp.exp() * lp).sum() for lp in lps)
        loss = -surrogate - self.config.entropy_weight * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        decay = self.config.baseline_decay
        self.baseline = decay * self.baseline + (1 - decay) * reward
        self.updates += 1
        return advantage

    def learn(self, trials: Sequence[tuple[int, Sequence[int], float, float | None]]) -> int:
        """Fold finished trials ``(number, choices, reward, behaviour_log_prob)`` not yet consumed.

        Trials are taken in number order; each is learnt from once. Returns how many were new.
        """
        new = sorted((t for t in trials if t[0] not in self.consumed), key=lambda t: t[0])
        for number, choices, reward, behaviour in new:
            self.update(choices, reward, behaviour)
            self.consumed.add(int(number))
        return len(new)

    # ----- state -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue, as plain JSON-able values."""
        opt = self.optimizer.state_dict()
        opt_state = {}
        for key, st in opt["state"].items():
            opt_state[str(key)] = {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in st.items()}
        return {
            "version": STATE_VERSION,
            "sizes": list(self.sizes),
            "config": asdict(self.config),
            "logits": self.logits.detach().tolist(),
            "optimizer": {"state": opt_state, "param_groups": opt["param_groups"]},
            "baseline": self.baseline,
            "updates": self.updates,
            "consumed": _ranges(self.consumed),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "Controller":
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError("controller state is missing or of another version")
        ctrl = cls(state["sizes"], ControllerConfig(**state["config"]))
        with torch.no_grad():
            ctrl.logits.copy_(torch.tensor(state["logits"], dtype=torch.float64))
        opt = state["optimizer"]
        ctrl.optimizer.load_state_dict({
            "state": {int(k): {n: (torch.tensor(v, dtype=torch.float64) if isinstance(v, list) else torch.tensor(v))
                               for n, v in st.items()} for k, st in opt["state"].items()},
            "param_groups": opt["param_groups"],
        })
        ctrl.baseline = state["baseline"]
        ctrl.updates = int(state["updates"])
        ctrl.consumed = _unranges(state["consumed"])
        return ctrl


def _ranges(numbers: set[int]) -> list[list[int]]:
    """Sorted integers as inclusive ``[first, last]`` runs, to keep the stored state short."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return runs


def _unranges(runs: list[list[int]]) -> set[int]:
    return {n for a, b in runs for n in range(int(a), int(b) + 1)}
