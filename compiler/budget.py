"""Does a mapped design fit its board? DSP slices (exact), block RAM and the lanes' LUTs (estimates), per layer.

The compiler calls `check_board` before it writes anything: a design over the board's DSPs, block RAM or LUTs is
an error that names the resource, the layer that costs most of it and what to change, not a build that fails later in
Vivado. DSPs are the int8 multiply lanes (one DSP48 each). Block RAM is hw.memory_style.memory_block_ram36 of
every memory deeper than LUT_DEPTH words (a ROM counted split in depth, as Yosys maps it): weight ROMs, threshold
stages, FIFOs and sliding-window line buffers. LUTs are the
lanes' share only (cost_model's per-lane coefficients), the term the folding pass budgets: routing, control, ROMs in
LUTs and the rest come on top, so a design can pass here and still not fit after synthesis (`hbnn report` says).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..boards import Board
from ..hw.memory_style import memory_block_ram36
from ..hw.add_join import AddJoin
from ..hw.mvau import Mvau
from ..hw.pool import WindowReduce
from ..hw.threshold import MultiThreshold as ThresholdUnit
from .check import GraphError
from .cost_model import LANE_LUTS, _memories

__all__ = ["NodeResources", "layer_groups", "node_resources", "check_board", "BoardBudgetError"]



class BoardBudgetError(GraphError):
    """The design does not fit the board; the message names the resource and the layer that costs most."""


@dataclass(frozen=True)
class NodeResources:
    node: str  # the layer (layer_groups)
    dsps: int
    bram36: float  # estimate
    lane_luts: float  # estimate of the lanes alone


def layer_groups(stages: Sequence) -> list[tuple[str, list]]:
    """The stages per layer, in stage order, named by the layer's matrix-vector unit, pool or residual add: a sliding
    window, fork, FIFO or width converter joins the layer it feeds (a bypass FIFO its add), a threshold unit the
    layer whose output it quantizes."""
    groups: list[tuple[str, list]] = []
    pending: list = []
    for stage in stages:
        if isinstance(stage.component, (Mvau, WindowReduce, AddJoin)):
            groups.append((stage.node, pending + [stage]))
            pending = []
        elif isinstance(stage.component, ThresholdUnit) and groups and not any(stage.node for stage in pending):
            groups[-1][1].append(stage)
        else:
            pending.append(stage)
    if pending:
        groups.append((next((stage.node for stage in pending if stage.node), "output"), pending))
    return groups


def _resources(node: str, group: list) -> NodeResources:
    dsps = bram = luts = 0.0
    for stage in group:
        component = stage.component
        if isinstance(component, Mvau):
            lanes = component.lanes
            dsps += lanes if component.lane == "multiply" else 0
            luts += lanes * LANE_LUTS[component.lane]
        bram += sum(memory_block_ram36(depth, width, writable=writable)
                    for depth, width, writable in _memories(component))
    return NodeResources(node, int(dsps), bram, luts)


def node_resources(stages: Sequence) -> list[NodeResources]:
    """Per layer (layer_groups), in stage order (stages: hbnn.compiler.map_to_hardware.Stage list)."""
    return [_resources(node, group) for node, group in layer_groups(stages)]


def check_board(stages: Sequence, board: Board) -> list[NodeResources]:
    """node_resources(stages), or BoardBudgetError for the first resource over the board's."""
    nodes = node_resources(stages)
    for label, field, available, remedy in (
            ("DSP slices (int8 multiply lanes)", "dsps", board.dsps, "fewer PE x SIMD on the int8 layers"),
            ("BRAM36 (estimated)", "bram36", board.bram36, "a board with more block RAM, or fewer channels"),
            ("LUTs for the lanes alone (estimated)", "lane_luts", board.luts,
             "a slower folding (--target-cycles / --target-fps) or fewer PE x SIMD")):
        used = sum(getattr(node, field) for node in nodes)
        if used > available:
            costliest = max(nodes, key=lambda node: getattr(node, field))
            share = getattr(costliest, field)
            raise BoardBudgetError(
                f"the design needs {used:,.0f} {label}, more than the {available:,} of {board.name}; the costliest "
                f"layer is '{costliest.node}' with {share:,.1f} ({100 * share / used:.0f}%): try {remedy}")
    return nodes
