"""Integer thresholds equal to a monotone float function of an integer accumulator, found by bisection.

What follows a layer's accumulator up to the next quantizer (scale, alpha, bias, batch norm, then sign or an int8
requantization) is a chain of float32 operations, each weakly monotone in its input (round-to-nearest keeps
monotonicity), so the quantized output is a weakly monotone step function of the accumulator per channel: rising,
falling (a negative scale) or constant (a zero scale). Its L output levels are then exactly described by L - 1
integer thresholds per channel. This module finds them by bisection over the exact function itself, evaluated with
the same float32 operations PyTorch runs: no reasoning about rounding at a boundary, and exact however large the
accumulator range (about log2(range) evaluations per threshold; a sign needs one threshold, an int8 quantizer 255).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Steps", "fold_steps", "reached_levels"]


@dataclass(frozen=True, eq=False)
class Steps:
    """level(acc) = number of k with key(acc) >= thresholds[c, k], where key(acc) = -acc for descending channels.

    A threshold of `never` (larger than any key) marks a level the channel never reaches; one at the smallest key
    a level it always has.
    """
    thresholds: np.ndarray  # (channels, levels - 1) int64, non-decreasing along the last axis
    descending: np.ndarray  # (channels,) bool
    never: int

    def levels(self, accumulators: np.ndarray) -> np.ndarray:
        """The step function on accumulators of shape (..., channels): the reference for hardware comparators."""
        accumulators = np.asarray(accumulators, dtype=np.int64)
        keys = np.where(self.descending, -accumulators, accumulators)
        return (keys[..., None] >= self.thresholds).sum(axis=-1)


def fold_steps(levels_of: Callable[[np.ndarray], np.ndarray], channels: int, low: int, high: int, levels: int,
               *, stride: int = 1) -> Steps:
    """Thresholds of the weakly monotone step function `levels_of` over the accumulators low, low + stride, .., high.

    levels_of maps int64 accumulators of shape (n, channels), column c belonging to channel c, to output levels
    0..levels-1 of the same shape. Each channel's direction is read from its ends (falling when the level at
    `high` is below the level at `low`). Returns keys on the same lattice; `never` is the largest key + 1.
    """
    if levels < 2 or high < low or stride < 1 or (high - low) % stride:
        raise ValueError(f"need levels >= 2 and a lattice low..high by stride, not levels={levels}, "
                         f"low={low}, high={high}, stride={stride}")
    count = (high - low) // stride + 1
    at_low = np.asarray(levels_of(np.full((1, channels), low, dtype=np.int64)))[0]
    at_high = np.asarray(levels_of(np.full((1, channels), high, dtype=np.int64)))[0]
    descending = at_high < at_low

    def accumulator(index: np.ndarray) -> np.ndarray:
        """Lattice point `index` counted from the end where the channel's level is lowest."""
        return np.where(descending, high - stride * index, low + stride * index)

    # For each level k >= 1, the first lattice index whose level reaches k (count: never), by bisection.
    targets = np.arange(1, levels, dtype=np.int64)[:, None]  # (levels - 1, 1)
    first = np.zeros((levels - 1, channels), dtype=np.int64)
    last = np.full((levels - 1, channels), count, dtype=np.int64)
    while (first < last).any():
        middle = (first + last) // 2
        reached = np.asarray(levels_of(accumulator(np.minimum(middle, count - 1)))) >= targets
        open_ = first < last
        last = np.where(open_ & reached, middle, last)
        first = np.where(open_ & ~reached, middle + 1, first)

    # Keys: acc for rising channels, -acc for falling ones; both lattices start at their smallest key.
    smallest_key = np.where(descending, -high, low)
    never = max(high, -low) + 1
    keys = np.where(first < count, smallest_key + stride * first, never)
    return Steps(thresholds=np.ascontiguousarray(keys.T), descending=descending, never=never)


def reached_levels(steps: Steps, low: int, high: int) -> tuple[int, int]:
    """(first, last): the thresholds steps.thresholds[:, first:last] that matter. The levels no channel reaches
    are dropped: thresholds at the smallest key (always passed) below the lowest reachable level, and at `never`
    above the highest; at least one stays (the unit has at least one compare stage). The output code of level 0 of
    what is kept is then the quantizer's lowest code + first."""
    thresholds = steps.thresholds
    smallest_key = np.where(steps.descending, -high, low)[:, None]
    always = (thresholds <= smallest_key).all(axis=0)
    never = (thresholds >= steps.never).all(axis=0)
    first = int(np.argmin(always)) if not always.all() else thresholds.shape[1] - 1
    last = thresholds.shape[1] - int(np.argmin(never[::-1])) if not never.all() else first + 1
    return first, max(last, first + 1)
