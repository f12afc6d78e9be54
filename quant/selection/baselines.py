"""The baselines MixBin (Bamba et al., WACV 2024) compares with: random, front-, rear-binarized, iterative
greedy search (their eq. 5) and pseudo-random (MixBin's choice with some layers swapped for random ones).

Each binarizes candidate layers (first and last layer excluded) in its own order until the budget is met, and is
deterministic for a given seed.
"""

from __future__ import annotations

import random
import time
from typing import Sequence

from .budgets import Budget, fits
from .context import SelectionContext
from .mixbin import mixbin_grad
from .result import Selection, binarize_until_within

__all__ = ["front_binarized", "iterative_greedy", "pseudo_random", "random_selection", "rear_binarized"]


def random_selection(context: SelectionContext, budget: Budget, *, seed: int = 0) -> Selection:
    """Candidates in a random order drawn from `seed`."""
    start = time.perf_counter()
    order = shuffled(context.candidates, random.Random(seed))
    return _in_order("random", order, context, budget, start, details={"seed": seed})


def front_binarized(context: SelectionContext, budget: Budget, *, seed: int = 0) -> Selection:
    """Candidates in forward order: the layers nearest the input first."""
    return _in_order("front", context.candidates, context, budget, time.perf_counter())


def rear_binarized(context: SelectionContext, budget: Budget, *, seed: int = 0) -> Selection:
    """Candidates in reverse order: the layers nearest the output first."""
    return _in_order("rear", context.candidates[::-1], context, budget, time.perf_counter())


def iterative_greedy(context: SelectionContext, budget: Budget, *, seed: int = 0) -> Selection:
    """MixBin's eq. 5: one layer per step, the one whose binarization, added to those taken so far, gives the
    lowest calibration loss; stop when the plan fits. About k x candidates loss evaluations for k steps.

    scores holds, for each layer taken, the loss of the plan it completed. `seed` is unused (deterministic).
    """
    start = time.perf_counter()
    binarize_until_within(context.candidates, context.full_precision, budget, method="iterative")  # reachable?
    taken: list[str] = []
    losses: dict[str, float] = {}
    evaluations = 0
    while not fits(budget, context.plan_with(taken)):
        remaining = [name for name in context.candidates if name not in taken]
        trials = {name: context.loss_with([*taken, name]) for name in remaining}
        evaluations += len(trials)
        best = min(remaining, key=trials.__getitem__)  # ties: the earliest layer
        taken.append(best)
        losses[best] = trials[best]
    layers, taken = binarize_until_within(taken, context.full_precision, budget, method="iterative")
    return Selection("iterative", layers, time.perf_counter() - start, scores=losses, order=taken,
                     details={"loss_evaluations": evaluations})


def pseudo_random(context: SelectionContext, budget: Budget, *, seed: int = 0, swap: float = 0.3) -> Selection:
    """MixBin-grad's selection with round(swap x its size) of its layers, drawn at random, replaced by as many
    random candidates it left out (fewer if fewer were left out; round() halves to even).

    A swap can make the plan costlier (a small layer out, a large one in): then further random candidates are
    binarized until it fits, first among those MixBin left out, the swapped-out ones only last.
    """
    if isinstance(swap, bool) or not isinstance(swap, (int, float)) or not 0 <= swap <= 1:
        raise ValueError(f"swap must be a fraction in [0, 1], not {swap!r}")
    start = time.perf_counter()
    chosen = mixbin_grad(context, budget).order
    rng = random.Random(seed)
    left_out = [name for name in context.candidates if name not in chosen]
    count = min(round(swap * len(chosen)), len(left_out))
    dropped = rng.sample(chosen, count)
    added = rng.sample(left_out, count)
    swapped = [name for name in chosen if name not in dropped] + added
    reserve = shuffled([name for name in left_out if name not in added], rng) + shuffled(dropped, rng)
    layers, extra = binarize_until_within(reserve, context.plan_with(swapped), budget, method="pseudo-random")
    return Selection("pseudo-random", layers, time.perf_counter() - start, order=swapped + extra,
                     details={"swap": swap, "mixbin": list(chosen), "dropped": dropped, "added": added,
                              "extra": extra, "seed": seed})


def shuffled(names: Sequence[str], rng: random.Random) -> list[str]:
    names = list(names)
    rng.shuffle(names)
    return names


def _in_order(method: str, order: Sequence[str], context: SelectionContext, budget: Budget,
              start: float, details: dict | None = None) -> Selection:
    layers, taken = binarize_until_within(order, context.full_precision, budget, method=method)
    return Selection(method, layers, time.perf_counter() - start, order=taken, details=dict(details or {}))
