"""From per-image scores to a verdict: the rules every planned study follows (docs/statistics.md).

:func:`decide` is pure: it takes per-image correctness (candidate, seed, image) and the study's
design, and returns every figure a report prints, all from one set of bootstrap draws. A winner is
named only when all of these hold, and the verdict says first which did not:

* the positive control completed and came out separated (a missing control is a failed control);
* where the study has one, the negative control (the base twice, with different training seeds)
  completed and came out indistinguishable (separated, the intervals understate the noise);
* the winner's group has at least two candidates;
* at least two seeds estimated the seed-to-seed noise;
* the winner alone is left after the candidates indistinguishable from the best (simultaneous
  bound) are taken.

An undecided group says what it would take: the smallest difference this budget resolves (the
simultaneous half-width) and about how many seeds or images would resolve the gap from the leader
to the runner-up, from the seed and image parts of the bootstrap variance.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from . import stats


@dataclass(frozen=True)
class Design:
    """How the scores were made: seeds, whether each seed had a split of its own, draws."""

    seeds: int
    split_seeds: bool = False
    draws: int = stats.DEFAULT_DRAWS

    def image_ids(self, scores: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray] | None:
        """Seeds with their own splits score different images; otherwise one split serves every seed."""
        if not self.split_seeds:
            return None
        return stats.independent_splits([np.size(s) for s in scores[0]])


def _draws(keys: Sequence[str], scores: Mapping[str, Sequence[np.ndarray]], design: Design, seed: int) -> stats.Draws:
    mats = stats.matrices([scores[k] for k in keys])
    return stats.draw(mats, design.draws, seed, design.image_ids([scores[k] for k in keys]))


def _need_text(need: Mapping[str, int | None], what: str) -> str:
    parts = []
    if need.get("seeds"):
        parts.append(f"about {need['seeds']} seeds")
    if need.get("images"):
        parts.append(f"about {need['images']:,} {what} images")
    if parts:
        return " or ".join(parts)
    if need.get("both_times"):
        return f"about {need['both_times']} times the seeds and the {what} images together"
    return "an unknown amount more (no variance was measured)"


def control_verdict(d: stats.Draws, keys: Sequence[str], small: str, big: str, ratio: float | None) -> dict[str, Any]:
    """Is ``big`` (the control of known direction) better than ``small``? From the study's draws."""
    if small not in keys or big not in keys:
        missing = [k for k in (small, big) if k not in keys]
        return {"big": big, "small": small, "ratio": ratio, "missing": missing, "separated": False,
                "diff": None, "ci_low": None, "ci_high": None}
    w = np.zeros(len(keys))
    w[keys.index(big)], w[keys.index(small)] = 1.0, -1.0
    sp, p = stats.contrast_interval(d, w)
    need = sp.needed(sp.estimate, d.seeds, d.images) if sp.estimate > 0 else {}
    return {"big": big, "small": small, "ratio": ratio, "missing": [], "diff": sp.estimate, "ci_low": sp.low,
            "ci_high": sp.high, "half_width": (sp.high - sp.low) / 2, "p": p, "separated": bool(sp.low > 0),
            "seeds_to_resolve": need.get("seeds"), "images_to_resolve": need.get("images"),
            "both_times_to_resolve": need.get("both_times")}


def negative_verdict(d: stats.Draws, keys: Sequence[str], a: str, b: str) -> dict[str, Any]:
    """Are ``a`` and ``b`` (the same network, trained with different seeds) indistinguishable, as
    they must be? ``passed`` when the interval of their difference contains 0."""
    if a not in keys or b not in keys:
        return {"a": a, "b": b, "missing": [k for k in (a, b) if k not in keys], "passed": False,
                "diff": None, "ci_low": None, "ci_high": None}
    w = np.zeros(len(keys))
    w[keys.index(b)], w[keys.index(a)] = 1.0, -1.0
    sp, p = stats.contrast_interval(d, w)
    return {"a": a, "b": b, "missing": [], "diff": sp.estimate, "ci_low": sp.low, "ci_high": sp.high,
            "half_width": (sp.high - sp.low) / 2, "p": p, "passed": bool(sp.low <= 0 <= sp.high)}


def saturation(d: stats.Draws, keys: Sequence[str], chains: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, Any]:
    """Figure 3 as a test. ``chains[method]`` lists successive steps ``(lower, higher)`` (1x -> 2x,
    2x -> 4x, ...). Each step's gain is a paired difference on the study's draws, Holm-corrected over
    every step of every method. A method "saturates" at a step only when the step before it gained
    (separated, adjusted p < 0.05) and this step's interval contains 0."""
    tests = []
    for method, steps in chains.items():
        for lower, higher in steps:
            if lower not in keys or higher not in keys:
                tests.append({"method": method, "lower": lower, "higher": higher, "missing": True})
                continue
            w = np.zeros(len(keys))
            w[keys.index(higher)], w[keys.index(lower)] = 1.0, -1.0
            sp, p = stats.contrast_interval(d, w)
            tests.append({"method": method, "lower": lower, "higher": higher, "missing": False, "gain": sp.estimate,
                          "ci_low": sp.low, "ci_high": sp.high, "p": p})
    done = [t for t in tests if not t["missing"]]
    for t, p in zip(done, stats.holm([t["p"] for t in done]) if done else []):
        t["p_holm"] = p
        t["gained"] = bool(p < stats.ALPHA and t["gain"] > 0)
        t["lost"] = bool(p < stats.ALPHA and t["gain"] < 0)
        t["flat"] = bool(t["ci_low"] <= 0 <= t["ci_high"])
    out: dict[str, Any] = {"steps": tests, "methods": {}}
    for method in chains:
        mine = [t for t in tests if t["method"] == method]
        where = None
        for prev, cur in zip(mine, mine[1:]):
            if not prev["missing"] and not cur["missing"] and prev["gained"] and cur["flat"]:
                where = cur["higher"]
                break
        if any(t["missing"] for t in mine):
            text = "not tested (a step is missing)"
        elif where:
            text = f"saturates: gains up to {_lower_of(mine, where)}, then nothing separated at {where}"
        elif all(t["gained"] for t in mine):
            text = "still gaining at every step"
        elif not any(t["gained"] for t in mine):
            text = ("loses at " + ", ".join(t["higher"] for t in mine if t["lost"]) if any(t["lost"] for t in mine)
                    else "no step separated from 0")
        else:
            text = "no saturation shown (no separated gain followed by a step indistinguishable from 0)"
        out["methods"][method] = {"saturates_at": where, "text": text}
    return out


def positive_text(ctrl: Mapping[str, Any], what: str | None = None) -> str:
    """The positive control in one line, as every report prints it first."""
    name = f" ({what})" if what else ""
    if ctrl.get("missing"):
        return f"Positive control{name}: missing ({', '.join(ctrl['missing'])}); no winner can be named."
    return (f"Positive control{name}: {ctrl['big']} minus {ctrl['small']} = {ctrl['diff']:+.4f} (95% CI "
            f"{ctrl['ci_low']:+.4f} to {ctrl['ci_high']:+.4f}): "
            + ("separated: this budget resolves a difference of this size." if ctrl["separated"] else
               "not separated: this data and budget cannot resolve differences of this size."))


def negative_text(neg: Mapping[str, Any]) -> str:
    """The negative control in one line."""
    if neg.get("missing"):
        return f"Negative control: missing ({', '.join(neg['missing'])}); no winner can be named."
    return (f"Negative control (the base twice, other training seeds): {neg['b']} minus {neg['a']} = "
            f"{neg['diff']:+.4f} (95% CI {neg['ci_low']:+.4f} to {neg['ci_high']:+.4f}): "
            + ("indistinguishable, as it must be." if neg["passed"] else
               "SEPARATED: the intervals understate the noise between runs."))


def _lower_of(steps: Sequence[Mapping[str, Any]], higher: str) -> str:
    return next(t["lower"] for t in steps if t["higher"] == higher)


def decide(keys: Sequence[str], scores: Mapping[str, Sequence[np.ndarray]], design: Design, *,
           roles: Mapping[str, str], groups: Mapping[str, Sequence[str]], control: tuple[str, str] | None,
           control_ratio: float | None = None, by_image: bool = True, what: str = "validation",
           chains: Mapping[str, Sequence[tuple[str, str]]] | None = None,
           negative: tuple[str, str] | None = None, control_text: str | None = None) -> dict[str, Any]:
    """Every figure and the verdict for complete candidates ``keys`` with per-seed scores ``scores``.

    ``roles[key]`` is "baseline", "control", "candidate" or "reference"; the baseline (named before
    any data) gets Holm-corrected p-values against it. ``control`` is the (small, big) pair of the
    positive control, or None where the study has none (then no winner is ever named);
    ``control_text`` names it in the verdict. ``negative`` is the negative control's pair (the same
    network twice), or None where the study has none.
    """
    keys = list(keys)
    d = _draws(keys, scores, design, seed=0)
    base = next((i for i, k in enumerate(keys) if roles.get(k) == "baseline"), None)
    allcmp = stats.compare_draws(keys, d, baseline=base)
    per_key = {k: {f: v for f, v in allcmp.row(i).items() if "best" not in f} for i, k in enumerate(keys)}
    ctrl = (control_verdict(d, keys, control[0], control[1], control_ratio) if control is not None
            else {"missing": ["control"], "separated": False, "diff": None, "ci_low": None, "ci_high": None,
                  "big": None, "small": None, "ratio": None})
    neg = negative_verdict(d, keys, *negative) if negative is not None else None
    if neg is not None:
        neg["text"] = negative_text(neg)
    ctrl["text"] = positive_text(ctrl, control_text)
    seeds_ok = design.seeds >= 2
    group_out: dict[str, Any] = {}
    lines: list[str] = []
    decided_all = bool(groups)
    for label, members in groups.items():
        members = [k for k in members if k in keys]
        if not members:
            decided_all = False
            continue
        g = stats.compare_draws(members, d.subset([keys.index(k) for k in members]))
        for i, k in enumerate(members):
            per_key[k].update({f: v for f, v in g.row(i).items() if "best" in f or "resolve" in f}, group=label)
        indist = [k for k, f in zip(members, g.indistinguishable) if f]
        reasons = []
        if not ctrl["separated"]:
            reasons.append("the positive control " + ("did not complete" if ctrl["missing"] else "is not separated"))
        if neg is not None and not neg["passed"]:
            reasons.append("the negative control " + ("did not complete" if neg["missing"] else "is separated"))
        if len(members) < 2:
            reasons.append("one candidate in the group")
        if not seeds_ok:
            reasons.append("one seed (seed-to-seed noise not estimated)")
        if g.winner is None and len(members) > 1:
            reasons.append(f"{len(indist)} of {len(members)} indistinguishable from the best")
        winner = members[g.winner] if g.winner is not None and not reasons else None
        runner = max((i for i in range(len(members)) if i != g.best), key=lambda i: g.mean[i], default=None)
        need = g.needed(runner) if runner is not None else {}
        group_out[label] = {"best": members[g.best], "winner": winner, "indistinguishable": indist,
                            "range_bound": g.range_bound, "compared": len(members), "reasons": reasons,
                            "runner_up": members[runner] if runner is not None else None,
                            "gap_to_runner_up": -g.diff_to_best[runner] if runner is not None else None,
                            "seeds_to_resolve": need.get("seeds"), "images_to_resolve": need.get("images"),
                            "both_times_to_resolve": need.get("both_times")}
        where = f"{label}: " if label else ""
        if winner is not None:
            w = per_key[winner]
            lines.append(f"{where}winner {winner} (accuracy {w['mean']:.4f}, 95% CI {w['ci_low']:.4f} to "
                         f"{w['ci_high']:.4f}), separated from the {len(members) - 1} other(s)")
        else:
            decided_all = False
            own = [r for r in reasons if not r.startswith(("the positive control", "the negative control",
                                                           "one seed"))]  # said first
            detail = f"{where}best {members[g.best]}" + (f" ({'; '.join(own)})" if own else "")
            if runner is not None and members[runner] in indist:
                resolves = (f"this budget resolves differences above {g.range_bound:.3f}" if g.range_bound < 1
                            else "this budget resolves no difference at all (the simultaneous bound exceeds the "
                                 "whole accuracy scale)")
                more = ("at least three seeds first (with two, the training noise rests on one degree of freedom)"
                        if design.seeds == 2 else _need_text(need, what))
                detail += f"; {resolves}; the gap to {members[runner]} ({-g.diff_to_best[runner]:.3f}) would need {more}"
            lines.append(detail)
    first = []
    if ctrl["missing"]:
        first.append("Not decided: the positive control " + (
            "is missing" if control is None else f"did not complete ({', '.join(ctrl['missing'])})")
            + "; a missing control is a failed control and no winner is named.")
    elif not ctrl["separated"]:
        ratio = f" at {ctrl['ratio']:.2f}x multiply-adds" if ctrl.get("ratio") else ""
        if ctrl["diff"] > 0:
            need = "resolving it would need " + _need_text(
                {"seeds": ctrl.get("seeds_to_resolve"), "images": ctrl.get("images_to_resolve"),
                 "both_times": ctrl.get("both_times_to_resolve")}, what)
        else:
            need = "its estimate is not in the expected direction"
        named = f" ({control_text})" if control_text else ""
        first.append(f"Not decided: this data and budget cannot resolve differences of this size: the control "
                     f"{ctrl['big']}{ratio}{named} is not separated from {ctrl['small']} (difference "
                     f"{ctrl['diff']:+.4f}, 95% CI {ctrl['ci_low']:+.4f} to {ctrl['ci_high']:+.4f}; {need}); "
                     "no winner is named.")
    if neg is not None and not first:
        if neg["missing"]:
            first.append(f"Not decided: the negative control did not complete ({', '.join(neg['missing'])}); "
                         "no winner is named.")
        elif not neg["passed"]:
            first.append(f"Not decided: the negative control is separated: {neg['b']} (the same network as "
                         f"{neg['a']}, other training seeds) differs from it by {neg['diff']:+.4f} (95% CI "
                         f"{neg['ci_low']:+.4f} to {neg['ci_high']:+.4f}), so these intervals understate the noise "
                         "between runs; no winner is named.")
    if not seeds_ok and not first:
        first.append("Not decided: one seed, so seed-to-seed noise is not estimated; no winner is named.")
    if decided_all and not first:
        text = "; ".join(lines)
        verdict = text[:1].upper() + text[1:] + "."
    else:
        verdict = " ".join(first) if first else "Not decided:"
        if lines:
            verdict += " " + "; ".join(lines) + "."
    out = {"verdict": verdict, "decided": decided_all and not first, "control": ctrl, "negative_control": neg,
           "groups": group_out,
           "per_key": per_key, "draws": design.draws, "seeds": design.seeds, "images": d.images,
           "by_image": by_image}
    if chains:
        out["saturation"] = saturation(d, keys, chains)
    return out
