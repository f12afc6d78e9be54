"""A model priced as `hbnn compile` would build it for a board, without writing anything: logic LUTs (the cost
model's estimate), DSP slices (exact), block RAM (estimate), latency and interval (exact: the cycle analysis of
the mapped design), per layer.

hbnn.compiler.cost_model prices a chain of dense layers from its description; a network with convolutions, pools,
forks and residual adds has too much structure for a description to stand in for it, so this prices the network
itself: it lowers the model (hbnn.compiler.lower), runs the compiler's passes with the board's budgets
(hbnn.compiler.build.compile_for_board: the folding `hbnn compile --board B --target-cycles T` picks, slowed
where the board's DSPs, LUTs or block RAM ask for it), maps it (FIFOs sized as in a build) and reads the answer
off the mapped stages, layer by layer as the compiler's board check groups them (hbnn.compiler.budget).
The thresholds are the model's own, so a trained model's int8 threshold units are priced at the stages they
need, not the most an int8 requantization can.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..boards import Board
from ..hw.add_join import AddJoin
from ..hw.mvau import Mvau
from ..hw.pool import WindowReduce
from .budget import layer_groups
from .build import compile_for_board
from .cost_model import HardwareCost, LayerCost, estimate_luts, stage_block_ram36
from .cycles import estimate_cycles
from .ir import Graph
from .lower import lower_model
from .map_to_hardware import MappedDesign, map_design
from .passes.set_folding import DEFAULT_TARGET_CYCLES

__all__ = ["compiled_for", "design_cost", "model_cost"]


def _layer_cost(name: str, group: Sequence) -> LayerCost:
    """One layer group: the unit that names it (matrix-vector unit, pool or add) and what feeds it."""
    unit = next((stage.component for stage in group if isinstance(stage.component, (Mvau, WindowReduce, AddJoin))),
                group[-1].component)
    if isinstance(unit, Mvau):
        lane, pe, simd = unit.lane, unit.pe, unit.simd
    elif isinstance(unit, WindowReduce):
        lane, pe, simd = f"{unit.kind} pool", 1, unit.simd
    else:
        lane, pe, simd = type(unit).__name__, 1, getattr(unit, "elements", 1)
    return LayerCost(name=name, lane=lane, pe=pe, simd=simd, luts=estimate_luts(group),
                     dsps=unit.pe * unit.simd if isinstance(unit, Mvau) and unit.lane == "multiply" else 0,
                     bram36=sum(stage_block_ram36(stage.component) for stage in group),
                     cycles=max(max(getattr(stage.component, "interval", 1), stage.transfers_in, stage.transfers_out)
                                for stage in group))  # the busiest stage's cycles per image


def design_cost(design: MappedDesign) -> HardwareCost:
    """Resources and cycles of a mapped design (any design the compiler maps: chain or graph)."""
    stages = list(design.stages)
    try:
        cycles = estimate_cycles(design)
        layers = tuple(_layer_cost(name, group) for name, group in layer_groups(stages))
        luts = estimate_luts(stages)
    finally:
        for stage in stages:
            stage.component._MustUse__silence = True  # priced, never elaborated: not a forgotten design
    return HardwareCost(luts=luts, dsps=sum(layer.dsps for layer in layers), cycles=cycles.latency,
                        interval=cycles.initiation_interval, bram36=sum(layer.bram36 for layer in layers),
                        layers=layers)


def compiled_for(model: nn.Module, board: Board, target_cycles: int = DEFAULT_TARGET_CYCLES) -> Graph:
    """What `hbnn compile --board board --target-cycles target_cycles --no-fit-check` builds from `model`, before
    mapping (a design over the board is built, not refused: a budget decides). Raises the compiler's
    UnsupportedLayerError naming the first layer it cannot map."""
    return compile_for_board(lower_model(model.eval()), board, None, target_cycles, fit_check=False)


def model_cost(model: nn.Module, board: Board, target_cycles: int = DEFAULT_TARGET_CYCLES) -> HardwareCost:
    """The cost of what compiled_for(model, board, target_cycles) maps to."""
    return design_cost(map_design(compiled_for(model, board, target_cycles)))
