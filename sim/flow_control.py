"""What the test bench does around the design: random gaps and stalls, and when it gives up.

Both engines (the C++ driver in stream_driver.cpp and the cocotb bench in bench.py) draw two numbers per cycle from
SplitMix64, input first, and compare them with the integer thresholds below, so the same seed gives the same
valid/ready pattern, and therefore the same handshake cycles, in both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FlowControl", "CycleBudget", "SplitMix64", "cycle_budget"]

_MASK = (1 << 64) - 1


class SplitMix64:
    """Steele, Lea and Flood's splitmix64, as stream_driver.cpp implements it."""

    def __init__(self, seed: int):
        self.state = seed & _MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)


def _probability_threshold(name: str, probability: float) -> int:
    if not 0.0 <= probability < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), not {probability!r}")
    return int(probability * (1 << 64))


@dataclass(frozen=True)
class FlowControl:
    """Each cycle, with probability `input_gaps` the producer withholds its next transfer, and with probability
    `output_stalls` the consumer refuses the output. Both 0 gives the undisturbed timing the cycle model predicts."""
    input_gaps: float = 0.0
    output_stalls: float = 0.0
    seed: int = 0

    def __post_init__(self):
        self.thresholds  # validates
        if not isinstance(self.seed, int) or not 0 <= self.seed <= _MASK:
            raise ValueError(f"seed must be an integer in 0..2**64-1, not {self.seed!r}")

    @property
    def thresholds(self) -> tuple[int, int]:
        """(gap, stall): a draw below the threshold means a gap / a stall."""
        return (_probability_threshold("input_gaps", self.input_gaps),
                _probability_threshold("output_stalls", self.output_stalls))

    @property
    def disturbed(self) -> bool:
        return self.input_gaps > 0 or self.output_stalls > 0


@dataclass(frozen=True)
class CycleBudget:
    """A run ends with an error after `max_cycles` cycles, or after `idle_cycles` cycles without any handshake."""
    max_cycles: int
    idle_cycles: int


def cycle_budget(latency: int, interval: int, images: int, transfers_per_image: int,
                 flow: FlowControl) -> CycleBudget:
    """A generous budget from the analytical cycle model: twice the undisturbed time, stretched by the expected
    slow-down of random gaps and stalls, plus a margin. A design that meets its model never comes near it."""
    slowdown = 1.0 / ((1.0 - flow.input_gaps) * (1.0 - flow.output_stalls))
    per_image = max(interval, transfers_per_image)
    idle = math.ceil(2 * (latency + per_image) * slowdown) + 1000
    total = math.ceil(2 * (latency + images * per_image) * slowdown) + 1000
    return CycleBudget(max_cycles=total, idle_cycles=idle)
