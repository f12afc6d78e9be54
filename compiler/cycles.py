"""Cycle analysis of a mapped design (read-only): latency and the gap between images, exactly as co-simulation
measures them.

Components overlap (a matrix-vector unit emits its first output fold long before its last), and a width converter
that splits transfers back-pressures its producer within an image, so latencies do not simply add. Each component
states its own handshake rules (`handshake_model()`, next to its RTL); hbnn.hw.dataflow.chain_timing steps those
models together, transfer by transfer, with the source always valid and the sink always ready, as the undisturbed
co-simulation run streams.

The gaps between consecutive images' last outputs need not be constant from the first image: while the pipeline
fills, a fast stage runs ahead of a slow one, and the first gaps can be longer than the steady one. The gaps of a
deterministic pipeline fed regularly become periodic, so the estimate is a transient (the first gaps) followed by a
repeating period, usually one gap long: the initiation interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["StageCycles", "CycleEstimate", "estimate_cycles", "periodic_tail", "steady_gaps"]

MAX_PERIOD = 8  # images; a longer period would mean a pathological chain (the analysis says so)


@dataclass(frozen=True)
class StageCycles:
    node: str | None
    component: str
    latency: int  # the component's own, nothing stalled (see its `latency`)


@dataclass(frozen=True)
class CycleEstimate:
    stages: tuple[StageCycles, ...]
    latency: int  # cycles from image 0's first input handshake to its last output handshake, pipeline empty
    transient: tuple[int, ...]  # the first gaps between consecutive images' last output handshakes
    period: tuple[int, ...]  # the gaps after those, repeating

    @property
    def initiation_interval(self) -> float | int:
        """Cycles per image in the steady state: the period's mean (an integer when the period is one gap)."""
        total, count = sum(self.period), len(self.period)
        return total // count if total % count == 0 else total / count

    def gaps(self, images: int) -> list[int]:
        """The gaps the undisturbed co-simulation of `images` images measures (images - 1 of them)."""
        count = max(images - 1, 0)
        steady = count - len(self.transient)
        repeats = -(-max(steady, 0) // len(self.period))
        return (list(self.transient) + list(self.period) * repeats)[:count]

    def as_dict(self) -> dict:
        return {"latency": self.latency, "initiation_interval": self.initiation_interval,
                "gaps_transient": list(self.transient), "gaps_period": list(self.period),
                "stages": [stage.__dict__ for stage in self.stages]}

    @classmethod
    def from_dict(cls, entry: dict) -> CycleEstimate:
        return cls(tuple(StageCycles(**stage) for stage in entry.get("stages", [])), entry["latency"],
                   tuple(entry["gaps_transient"]), tuple(entry["gaps_period"]))


def periodic_tail(gaps: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(transient, period) with the shortest period that the last gaps repeat at least three times, or None."""
    for period in range(1, MAX_PERIOD + 1):
        if len(gaps) < 3 * period + 1:
            return None
        if all(gaps[i] == gaps[i - period] for i in range(len(gaps) - 2 * period, len(gaps))):
            start = len(gaps) - 2 * period
            while start > 0 and gaps[start - 1] == gaps[start - 1 + period]:
                start -= 1
            return tuple(gaps[:start]), tuple(gaps[start:start + period])
    return None


def steady_gaps(gaps: list[int], repeat_from: int, period: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(transient, period) for gaps known to repeat from index repeat_from every `period` gaps: the shortest period
    the repeating part has, and the shortest transient before it."""
    tail = tuple(gaps[repeat_from:repeat_from + period])
    shortest = next(d for d in range(1, period + 1) if period % d == 0 and tail == tail[d:] + tail[:d])
    start = repeat_from
    while start > 0 and gaps[start - 1] == gaps[start - 1 + shortest]:
        start -= 1
    return tuple(gaps[:start]), tuple(gaps[start:start + shortest])


def estimate_cycles(design) -> CycleEstimate:
    """design: a hbnn.compiler.map_to_hardware.MappedDesign, or a chain's Stage list (anything with .node and
    .component).

    Streams images through the stages' handshake models (one endless stream: nothing is stepped twice) until
    either the chain's state at an image's end repeats, which proves the period, or, once the pipeline has had time
    to fill twice over plus four images, the last gaps repeat three times. A whole CNN is hundreds of thousands of
    cycles per image, so the count matters."""
    from ..hw.dataflow import stream_images
    from ..hw.dataflow_graph import stream_graph_images

    stages = design.stages if hasattr(design, "stages") else design
    components = [stage.component for stage in stages]
    if getattr(design, "image_ends", ()):
        images = iter(design.image_ends)  # the FIFO sizing stepped them, up to a repeated state
    elif hasattr(design, "stages") and not design.is_chain:
        graph = design.accelerator()
        graph._MustUse__silence = True  # only its handshake models are stepped
        images = stream_graph_images(graph, stages[design.source.node].transfers_in,
                                     stages[design.sink.node].transfers_out, design.cycle_bound())
    else:
        images = stream_images(components)
    slowest = max(getattr(component, "interval", 1) for component in components)
    ends: list[int] = []
    for end in images:
        ends.append(end.cycle)
        gaps = [later - earlier for earlier, later in zip(ends, ends[1:])]
        if end.repeats is not None:
            if end.image - end.repeats > MAX_PERIOD:
                raise RuntimeError(f"the gaps between images repeat only every {end.image - end.repeats} images: "
                                   f"{gaps}")
            found = steady_gaps(gaps, end.repeats, end.image - end.repeats)
            break
        needed = 2 * math.ceil(ends[0] / max(slowest, 1)) + 4
        if len(ends) >= needed and (found := periodic_tail(gaps)) is not None:
            break
        if len(ends) >= needed + 3 * MAX_PERIOD + 2:
            raise RuntimeError(f"the gaps between images did not become periodic within {len(ends)} images: {gaps}")
    transient, period = found
    return CycleEstimate(tuple(StageCycles(stage.node, type(stage.component).__name__, stage.component.latency)
                               for stage in stages), ends[0], transient, period)
