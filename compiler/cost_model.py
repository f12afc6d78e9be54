"""Hardware cost model (read-only analysis): cycles, DSPs, LUTs and block RAM of a network from its description.

A plan is a chain of layers, each (name, kind, precision, in_features, out_features). The compiler maps linear
layers at precision binary and binary+alpha (XNOR-popcount lanes), weight-binary(+alpha) (add/subtract lanes:
binary weights on int8 inputs) and int8 (multiply lanes, one DSP48 slice per multiplier). The cost model does not
predict what the compiler builds: it builds it. `network_cost` makes the graph the compiler would make for the plan,
with dummy weights (seeded random codes of each layer's weight kind) and dummy thresholds, gives it the folding
`set_folding` gives (the same function, the same target and DSP budget), maps it to the hardware components
(`map_stages`) and reads the answer off the mapped design:

* cycles: `estimate_cycles(stages).latency`, cycles from an image's first input handshake to its last output
  handshake, and `interval`, the steady cycles per image. The cycle analysis is exact for a mapped design
  (co-simulation measures the same, tests/sim); what the dummy design can get wrong is only the thresholds. A sign
  has one threshold, as the compiler's always has, so an all-binary plan's cycles are exact. An int8
  requantization gets T = 255 dummy thresholds, the most one can have: its threshold unit has 8 compare stages
  where a trained network's often has fewer (after a ReLU only codes 0..127 are reachable: 127 thresholds, 7
  stages), so wherever a layer feeds an int8 layer the latency is an upper bound, a few cycles above the compiled
  network's. The interval does not depend on the thresholds.
* DSPs: exact, PE x SIMD per int8 layer: one DSP48E1 per 8 x 8 multiplier, as the compiler counts them against a
  board (`dsp_multipliers` in the build manifest) and as Yosys maps them (bench/calibrate_cost_model.py measures
  the DSPs of every calibration design). Binary and weight-binary lanes use none.
* LUTs: an ESTIMATE of Yosys' logic LUTs (`synth_xilinx -family xc7 -flatten`, LUT1..LUT6: the "LUT (logic)" row
  of `hbnn report`), a linear model over terms of the mapped stages (LUT_TERMS, `lut_terms`), fitted by
  bench/calibrate_cost_model.py. It excludes LUTs used as memory (the FIFOs' and input buffers' shallow memories
  go to LUT RAM, a few LUTs each) and block RAM.
* bram36: an ESTIMATE of the block RAMs (in BRAM36 units, an 18 Kb half counting 0.5) of the memories deeper than
  hbnn.hw.memory_style.LUT_DEPTH words, from their depths and widths (`block_ram36`). Deep int8 threshold stages
  dominate it; the dummy T = 255 makes it an upper bound there too.

LUT model: the sum over the mapped stages of
    LUT_PER_MATRIX_UNIT                 per matrix-vector unit (fold counters, addresses, handshake)
  + LUT_PER_XNOR_LANE * PE*SIMD         XNOR-popcount lanes (binary x sign)
  + LUT_PER_ADD_SUBTRACT_LANE * PE*SIMD add/subtract lanes (binary x int8): a negation mux and an adder per lane
  + LUT_PER_MULTIPLY_LANE * PE*SIMD     multiply lanes (int8 x int8): the adder tree Yosys leaves outside the DSPs
  + LUT_PER_ACCUMULATOR_BIT * PE*bits   the accumulators
  + LUT_PER_ROM_BIT * bits              output bits of the ROMs kept in LUTs (depth <= 64): weights and thresholds
  + LUT_PER_COMPARE_BIT * PE*N*(bits+1) threshold units: N compare stages per lane on keys one bit wider
  + LUT_PER_STREAM_UNIT                 per threshold unit, FIFO and width converter
Its error is stated by the coefficients below, measured on the calibration designs (fitted on) and on held-out
ones, trained-like networks compiled by the compiler among them.

Every other layer raises UnsupportedLayerError naming the layer and why: conv, ternary, ABC-Net and float layers
(the compiler has no hardware for them), and a scaled (+alpha) last layer (the hardware outputs integers). A cost
model that priced them at 0 would be wrong silently.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..hw.memory_style import LUT_DEPTH
from ..hw.mvau import Mvau
from ..hw.stream_fifo import StreamFifo
from ..hw.threshold import MultiThreshold as ThresholdUnit
from ..hw.width_converter import WidthConverter
from ..quant.precision import Precision
from .cycles import estimate_cycles
from .ir import Bipolar, Dense, Graph, Int, MultiThreshold, Tensor, accumulator_bound
from .lower import INPUT_SUFFIX, UnsupportedLayerError
from .map_to_hardware import Stage, map_stages
from .passes.set_folding import DEFAULT_TARGET_CYCLES, set_folding

__all__ = [
    "HardwareCost", "LayerCost", "LayerDescription", "LUT_TERMS", "LUT_COEFFICIENTS", "check_mappable",
    "network_cost", "dummy_graph", "lut_terms", "estimate_luts", "block_ram36", "SIGN_THRESHOLDS",
    "INT8_THRESHOLDS",
]

KINDS = ("linear", "conv")
SIGN_THRESHOLDS = 1  # a sign: one threshold, as the compiler's always is
INT8_THRESHOLDS = 255  # an int8 requantization: the most it can need (a trained one after a ReLU needs 127)
LAST_LAYER_REASON = ("hardware outputs integers times a power of two, so the last layer must end in its accumulator "
                     "(no alpha, float bias or batch norm after it)")  # the words of passes/output_integers.py

# LUT model: bench/calibrate_cost_model.py (see the table there).
LUT_TERMS = ("matrix_units", "xnor_lanes", "add_subtract_lanes", "multiply_lanes", "accumulator_bits", "input_bits",
             "binary_rom_bits", "rom_bits", "compare_bits", "stream_units")
LANE_TERMS = {"xnor_popcount": "xnor_lanes", "add_subtract": "add_subtract_lanes", "multiply": "multiply_lanes"}
LUT_PER_MATRIX_UNIT = 20.0
LUT_PER_XNOR_LANE = 2.0
LUT_PER_ADD_SUBTRACT_LANE = 27.0
LUT_PER_MULTIPLY_LANE = 10.0
LUT_PER_ACCUMULATOR_BIT = 1.0
LUT_PER_INPUT_BIT = 1.0
LUT_PER_BINARY_ROM_BIT = 0.1
LUT_PER_ROM_BIT = 0.1
LUT_PER_COMPARE_BIT = 1.0
LUT_PER_STREAM_UNIT = 10.0
LUT_COEFFICIENTS = (LUT_PER_MATRIX_UNIT, LUT_PER_XNOR_LANE, LUT_PER_ADD_SUBTRACT_LANE, LUT_PER_MULTIPLY_LANE,
                    LUT_PER_ACCUMULATOR_BIT, LUT_PER_INPUT_BIT, LUT_PER_BINARY_ROM_BIT, LUT_PER_ROM_BIT, LUT_PER_COMPARE_BIT,
                    LUT_PER_STREAM_UNIT)

# (name, kind, precision, in_features, out_features), in forward order
LayerDescription = tuple[str, str, Precision, int, int]


@dataclass(frozen=True)
class LayerCost:
    """One layer of a priced network: its matrix-vector unit, the threshold unit after it and the width converter
    and FIFO in front of it."""
    name: str
    lane: str  # "xnor_popcount" | "add_subtract" | "multiply"
    pe: int
    simd: int
    luts: int  # estimate
    dsps: int  # exact
    bram36: float  # estimate
    cycles: int  # the unit's cycles per image at this folding, (MH/PE) * (MW/SIMD)


@dataclass(frozen=True)
class HardwareCost:
    """What the compiler would build for a plan: see the module docstring for which figures are exact."""
    luts: int  # estimate: logic LUTs
    dsps: int  # exact
    cycles: int  # latency: first input handshake to last output handshake of one image, pipeline empty
    interval: int | float  # steady cycles per image (the initiation interval)
    bram36: float  # estimate
    layers: tuple[LayerCost, ...]  # forward order


def _precision_reason(precision: Precision, last: bool) -> str | None:
    if not isinstance(precision, Precision):
        raise TypeError(f"precision must be a Precision, not {type(precision).__name__}")
    if precision.weights == "float":
        return "float layers have no integer form; train it at int8 (--full-precision int8)"
    if precision.weights == "ternary":
        return "ternary layers are not mapped to hardware yet"
    if precision.weights == "abc":
        return "ABC-Net layers are not mapped to hardware yet"
    if precision.weight_scale and last:
        return (f"it is the network's last layer and a {precision.name} layer, whose alpha is a float32 op after "
                f"its accumulator: {LAST_LAYER_REASON}")
    return None  # binary, weight-binary (alpha folds into the next layer's thresholds) and int8


def check_mappable(name: str, kind: str, precision: Precision | None = None, *, last: bool = False) -> None:
    """Raise UnsupportedLayerError naming `name` unless the compiler maps this layer kind (and precision, if given;
    `last`: the layer is the network's last, whose output is the raw accumulator)."""
    if kind not in KINDS:
        raise ValueError(f"layer {name!r}: kind must be one of {', '.join(map(repr, KINDS))}, not {kind!r}")
    if kind == "conv":
        raise UnsupportedLayerError.described(name, "convolutions are not mapped to hardware yet; the compiler maps "
                                                    "linear layers")
    if precision is not None:
        reason = _precision_reason(precision, last)
        if reason is not None:
            raise UnsupportedLayerError.described(name, reason)


def _check_features(name: str, label: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"layer {name!r}: {label} must be a positive integer, not {value!r}")
    return value


def _input_type(precision: Precision) -> Bipolar | Int:
    return Bipolar() if precision.inputs == "binary" else Int(8, True, 0)


def _weight_kind(precision: Precision) -> str:
    return "int8" if precision.weights == "int8" else "binary"


def _check_plan(layers: Sequence[LayerDescription]) -> None:
    if not layers:
        raise ValueError("a network needs at least one layer")
    names = set()
    for index, (name, kind, precision, in_features, out_features) in enumerate(layers):
        check_mappable(name, kind, precision, last=index == len(layers) - 1)
        _check_features(name, "in_features", in_features)
        _check_features(name, "out_features", out_features)
        if name in names:
            raise ValueError(f"layer {name!r} appears twice in the plan")
        names.add(name)
    for (name, _, _, _, width), (following, _, _, width_in, _) in zip(layers, layers[1:]):
        if width != width_in:
            raise ValueError(f"layer {name!r} has {width} outputs but the next layer {following!r} takes {width_in} "
                             "inputs: a plan is a chain of layers")


def dummy_graph(layers: Sequence[LayerDescription], seed: int = 0) -> Graph:
    """The graph the compiler's passes would leave for this plan before set_folding, with seeded random weight codes
    and thresholds: SIGN_THRESHOLDS per channel in front of a layer that takes signs, INT8_THRESHOLDS in front of
    one that takes int8 codes. Layer names, types and shapes are the compiled network's."""
    layers = list(layers)
    _check_plan(layers)
    rng = np.random.default_rng(seed)
    first_name, _, first_precision, first_width, _ = layers[0]
    value = first_name + INPUT_SUFFIX
    inputs = ((value, Tensor(_input_type(first_precision), (first_width, 1, 1))),)
    nodes = []
    for index, (name, _, precision, in_features, out_features) in enumerate(layers):
        weight_kind = _weight_kind(precision)
        if weight_kind == "binary":
            weights = np.where(rng.random((out_features, in_features)) < 0.5, 1, -1)
        else:
            weights = rng.integers(-127, 128, (out_features, in_features))
        nodes.append(Dense(name=name, inputs=(value,), weights=weights, weight_kind=weight_kind))
        value = name
        if index + 1 < len(layers):
            following, _, next_precision, _, _ = layers[index + 1]
            bound = accumulator_bound(weight_kind, _input_type(precision), in_features)
            count = SIGN_THRESHOLDS if next_precision.inputs == "binary" else INT8_THRESHOLDS
            thresholds = np.sort(rng.integers(-bound, bound + 1, (out_features, count)), axis=1)
            output = Bipolar() if count == SIGN_THRESHOLDS else Int(8, True, 0)
            nodes.append(MultiThreshold(name=following + INPUT_SUFFIX, inputs=(name,), thresholds=thresholds,
                                        descending=rng.random(out_features) < 0.5,
                                        base=0 if count == SIGN_THRESHOLDS else -128, dtype=output))
            value = following + INPUT_SUFFIX
    return Graph(inputs, nodes, (value,))


# --- resources of mapped stages ------------------------------------------------------------------------------------

def _stream_layout(component, stream: str):
    return component.signature.members[stream].signature.members["payload"].shape


def _mvau_memories(unit: Mvau) -> tuple[tuple[int, int, bool], ...]:
    """(depth, width, writable) of a matrix-vector unit's weight ROM and input buffer."""
    weight_bits = 8 if unit.lane == "multiply" else 1
    element_bits = 1 if unit.lane == "xnor_popcount" else 8
    return ((unit.neuron_folds * unit.synapse_folds, unit.pe * unit.simd * weight_bits, False),
            (unit.synapse_folds, unit.simd * element_bits, True))


def _threshold_memories(unit: ThresholdUnit) -> tuple[tuple[int, int, bool], ...]:
    """(depth, width, writable) of a threshold unit's descending flags and its per-lane stage memories."""
    folds = unit.channels // unit.pe
    stages = tuple((folds << stage, unit.accumulator_bits + 1, False)
                   for stage in range(unit.stages) for _ in range(unit.pe))
    return ((folds, unit.pe, False),) + stages


def _fifo_memories(fifo: StreamFifo) -> tuple[tuple[int, int, bool], ...]:
    layout = _stream_layout(fifo, "i_stream")
    return ((fifo.memory_depth, layout.size, True),) if fifo.memory_depth else ()


def _memories(component) -> tuple[tuple[int, int, bool], ...]:
    if isinstance(component, Mvau):
        return _mvau_memories(component)
    if isinstance(component, ThresholdUnit):
        return _threshold_memories(component)
    if isinstance(component, StreamFifo):
        return _fifo_memories(component)
    return ()


def block_ram36(depth: int, width: int) -> float:
    """BRAM36 units (an 18 Kb half counts 0.5) of one block-RAM memory: RAMB18 halves, each depth x width at
    512 x 36, 1K x 18, 2K x 9, 4K x 4, 8K x 2 or 16K x 1."""
    for deepest, widest in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)):
        if depth <= deepest:
            return 0.5 * math.ceil(width / widest)
    return 0.5 * math.ceil(depth / 16384) * width


def _block_ram(component) -> float:
    return sum(block_ram36(depth, width) for depth, width, _ in _memories(component) if depth > LUT_DEPTH)


def _rom_bits(component) -> int:
    """Bits (depth x width) of the component's ROMs kept in LUTs (LUT_DEPTH words or fewer)."""
    return sum(depth * width for depth, width, writable in _memories(component)
               if not writable and depth <= LUT_DEPTH)


def stage_lut_terms(component) -> tuple[float, ...]:
    """The LUT model's terms (LUT_TERMS order) of one mapped component."""
    terms = dict.fromkeys(LUT_TERMS, 0.0)
    if isinstance(component, Mvau):
        terms["matrix_units"] = 1
        terms[LANE_TERMS[component.lane]] = component.pe * component.simd
        terms["accumulator_bits"] = component.pe * component.accumulator_bits
        terms["input_bits"] = component.simd * (1 if component.lane == "xnor_popcount" else 8)
        terms["rom_bits" if component.lane == "multiply" else "binary_rom_bits"] = _rom_bits(component)
    elif isinstance(component, ThresholdUnit):
        terms["compare_bits"] = component.pe * component.stages * (component.accumulator_bits + 1)
        terms["rom_bits"] = _rom_bits(component)
        terms["stream_units"] = 1
    elif isinstance(component, (WidthConverter, StreamFifo)):
        terms["stream_units"] = 1
    else:
        raise TypeError(f"the cost model has no LUT terms for a {type(component).__name__}")
    return tuple(float(terms[name]) for name in LUT_TERMS)


def lut_terms(stages: Iterable[Stage]) -> tuple[float, ...]:
    """The LUT model's terms of mapped stages, summed (the calibration script fits on these)."""
    total = np.zeros(len(LUT_TERMS))
    for stage in stages:
        total += stage_lut_terms(stage.component)
    return tuple(float(value) for value in total)


def estimate_luts(stages: Iterable[Stage], coefficients: Sequence[float] = LUT_COEFFICIENTS) -> int:
    return round(sum(c * t for c, t in zip(coefficients, lut_terms(stages), strict=True)))


# --- the plan's cost -----------------------------------------------------------------------------------------------

def _layer_stages(stages: Sequence[Stage]) -> list[list[Stage]]:
    """The stages grouped per layer: converter and FIFO in front of a unit, the unit, its threshold unit."""
    groups: list[list[Stage]] = []
    pending: list[Stage] = []
    for stage in stages:
        if isinstance(stage.component, Mvau):
            groups.append(pending + [stage])
            pending = []
        elif isinstance(stage.component, ThresholdUnit):
            groups[-1].append(stage)
        else:
            pending.append(stage)
    return groups


def _layer_cost(stages: list[Stage]) -> LayerCost:
    unit = next(stage for stage in stages if isinstance(stage.component, Mvau))
    mvau = unit.component
    return LayerCost(name=unit.node, lane=mvau.lane, pe=mvau.pe, simd=mvau.simd, luts=estimate_luts(stages),
                     dsps=mvau.pe * mvau.simd if mvau.lane == "multiply" else 0,
                     bram36=sum(_block_ram(stage.component) for stage in stages), cycles=mvau.interval)


@functools.lru_cache(maxsize=1024)
def _cost(layers: tuple[LayerDescription, ...], target_cycles: int, dsp_budget: int | None) -> HardwareCost:
    graph = set_folding(dummy_graph(layers), target_cycles=target_cycles, dsp_budget=dsp_budget)
    stages = map_stages(graph)
    cycles = estimate_cycles(stages)
    costs = tuple(_layer_cost(group) for group in _layer_stages(stages))
    for stage in stages:
        stage.component._MustUse__silence = True  # analysed, never elaborated: not a forgotten design
    return HardwareCost(luts=sum(cost.luts for cost in costs), dsps=sum(cost.dsps for cost in costs),
                        cycles=cycles.latency, interval=cycles.initiation_interval,
                        bram36=sum(cost.bram36 for cost in costs), layers=costs)


def network_cost(layers: Iterable[LayerDescription], target_cycles: int = DEFAULT_TARGET_CYCLES,
                 dsp_budget: int | None = None) -> HardwareCost:
    """The cost of the network the compiler builds for this plan at `target_cycles` (and `dsp_budget`, a board's
    DSP slices: the compiler raises the target until the int8 multipliers fit; None for no limit).

    The last layer outputs its accumulators; every other one ends in a threshold unit that makes the next layer's
    input (signs or int8 codes). Raises UnsupportedLayerError naming the first layer the compiler cannot map, and
    the compiler's GraphError where the int8 layers cannot fit dsp_budget at any folding.
    """
    layers = tuple(tuple(layer) for layer in layers)
    _check_plan(layers)
    if not isinstance(target_cycles, int) or isinstance(target_cycles, bool) or target_cycles < 1:
        raise ValueError(f"target_cycles must be a positive integer, not {target_cycles!r}")
    return _cost(layers, target_cycles, dsp_budget)
