"""Bypass FIFO depths from the cycle analysis: how deep each FIFO on a fork/join's short branch must be for the
graph to stream as if it were unbounded (no deadlock, no lost throughput).

A FIFO's input ready is `memory level < depth - 1` (hbnn.hw.stream_fifo), from state alone. Step the graph's
handshake models (hbnn.hw.dataflow_graph.schedule_graph) with the FIFOs unbounded, and let M be the most
transfers any FIFO's memory holds at the start of a cycle: a FIFO of depth M + 2 is then ready in every cycle of
that run, so the bounded graph makes exactly the same handshakes. `bypass_depths` steps the images given and
checks that: the depths are exact for that run, not an estimate. `steady_bypass_depths` streams images until the
unbounded graph's state at an image's end repeats an earlier image's: from then on every cycle repeats, so the
largest level seen is the largest there will ever be, and the depths hold for any number of images. Only the short
branch of each join may be unbounded: with both unbounded, nothing back-pressures the fork, and a design whose join
feeds a slower layer fills both without end. `first_arrivals` tells the branches apart. FINN sizes these FIFOs by
simulating its RTL; the handshake models here are cycle-exact twins of the RTL (tests/hw), so no RTL run is needed.
"""
from __future__ import annotations

from collections.abc import Sequence

from .dataflow import ImageEnd
from .dataflow_graph import DataflowGraph, schedule_graph, stream_graph_images
from .stream_fifo import StreamFifo, StreamFifoHandshake

__all__ = ["bypass_depths", "steady_bypass_depths", "first_arrivals", "UNBOUNDED"]

UNBOUNDED = 1 << 40  # a FIFO depth no schedule can fill


def bypass_depths(graph: DataflowGraph, fifos: Sequence[int], transfers_in: int, transfers_out: int, images: int,
                  cycles: int) -> dict[int, int]:
    """{node: depth} for the StreamFifo nodes `fifos` of the graph, over `images` images streamed undisturbed
    (transfers_in and transfers_out per image at the graph's source and sink), within `cycles` cycles."""
    for node in fifos:
        if not isinstance(graph.nodes[node], StreamFifo):
            raise TypeError(f"node {node} is a {type(graph.nodes[node]).__name__}, not a StreamFifo")
    unbounded = dict.fromkeys(fifos, UNBOUNDED)
    free = _schedule(graph, unbounded, transfers_in * images, transfers_out * images, cycles)
    if len(free[0].outputs) < transfers_out * images:
        raise RuntimeError(f"the graph gave {len(free[0].outputs)} of {transfers_out * images} output transfers in "
                           f"{cycles} cycles with unbounded FIFOs: it deadlocks for another reason")
    depths = {node: level + 2 for node, level in free[1].items()}
    sized = _schedule(graph, depths, transfers_in * images, transfers_out * images, cycles)
    if sized[0] != free[0]:
        raise AssertionError("FIFOs of the computed depths changed the schedule: the sizing rule is wrong")
    return depths


class _WatchedFifo(StreamFifoHandshake):
    """A FIFO's model that remembers the most transfers its memory held at the start of any cycle (its level
    changes only on its own clock edges, so the cycle analysis may let it sleep)."""

    RECORDS = ("most",)

    def __init__(self, *, depth: int):
        super().__init__(depth=depth)
        self.most = 0

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        super().clock(in_valid, out_ready)
        if self._inner_level > self.most:
            self.most = self._inner_level


def _schedule(graph: DataflowGraph, depths: dict[int, int], transfers: int, outputs: int, cycles: int):
    models = graph.handshake_models()
    for node, depth in depths.items():
        models[node] = _WatchedFifo(depth=depth)
    run = schedule_graph(models, graph.edges, graph.source, graph.sink, transfers, cycles, outputs=outputs)
    return run, {node: models[node].most for node in depths}


def steady_bypass_depths(graph: DataflowGraph, fifos: Sequence[int], transfers_in: int, transfers_out: int,
                         bound: int, max_images: int = 64) -> tuple[dict[int, int], tuple[ImageEnd, ...]]:
    """({node: depth} for the StreamFifo nodes `fifos` of the graph, streaming undisturbed, for every number of
    images (see the module's docstring); the image ends of that stream up to the first repeated state, which the
    graph with FIFOs of those depths makes too). `bound`: cycles within which any one image comes out."""
    for node in fifos:
        if not isinstance(graph.nodes[node], StreamFifo):
            raise TypeError(f"node {node} is a {type(graph.nodes[node]).__name__}, not a StreamFifo")
    models = graph.handshake_models()
    for node in fifos:
        models[node] = _WatchedFifo(depth=UNBOUNDED)
    ends = []
    for end in stream_graph_images(graph, transfers_in, transfers_out, bound, models=models):
        ends.append(end)
        most = {node: models[node].most for node in fifos}
        if end.repeats is not None:
            return {node: level + 2 for node, level in most.items()}, tuple(ends)
        if end.image >= max_images:
            raise RuntimeError(f"the graph's state did not repeat within {max_images} images: its bypass FIFOs "
                               f"keep filling (levels so far {most})")
    raise AssertionError("unreachable: the image stream has no end")


def first_arrivals(graph: DataflowGraph, fifos: Sequence[int], transfers_in: int, transfers_out: int,
                   bound: int) -> dict[int, int]:
    """{node: the cycle of its first write} for the StreamFifo nodes `fifos`, all unbounded, over the first image:
    a join's short branch is the input whose FIFO is written first (the other branch is still computing)."""
    models = graph.handshake_models()
    for node in fifos:
        models[node] = StreamFifoHandshake(depth=UNBOUNDED)
    first: dict[int, int] = {}

    def probe(cycle):
        for node in fifos:
            if node not in first and (models[node].memory_level or models[node].valid):
                first[node] = cycle

    next(stream_graph_images(graph, transfers_in, transfers_out, bound, models=models, probe=probe))
    return first
