"""Pass: gives every Dense layer its folding (PE output rows x SIMD input columns per cycle) and every Pool its SIMD.

A layer's cycles per image are pixels * (MH/PE) * (MW/SIMD) (an ABC-Net layer's times M/B, B of its M weight bases
side by side, the others taking further passes; its lanes PE * SIMD * B * N): a convolution's Dense runs once per
output pixel, on
the K*K*C columns its sliding window emits SIMD channels of one pixel at a time (so SIMD divides C). A pool takes
pixels * K*K * C/SIMD cycles, a residual sum (ElementwiseAdd) or a channel pad pixels * C/SIMD (C its output
channels). By default every layer gets the smallest PE x SIMD (the fewest lanes) whose cycles meet one target for
the whole pipeline, preferring wide SIMD over many PEs because a wider adder tree is cheaper than another
accumulator. A pipeline streams at its slowest layer's pace, so one target for all layers wastes nothing. The target
is `target_cycles`, raised until the int8 layers' multipliers (one DSP slice each) fit `dsp_budget` and the binary
and weight-binary lanes' LUTs (hbnn.compiler.cost_model's per-lane coefficients) fit `lut_budget` and the weight
memories' block RAM (deep, narrow memories at slower foldings: a wide, shallow one wastes most of each BRAM36) fits
`bram_budget`. Overrides name layers explicitly; a folding that does not divide the layer is an error that names it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from ..check import GraphError, check_graph, divisors, window_channels
import math

from ..ir import Bipolar, ChannelPad, Dense, ElementwiseAdd, Folding, Graph, Pool

__all__ = ["set_folding", "default_folding", "pipeline_target", "layer_shapes", "LayerShape", "layer_cycles",
           "lane_luts", "weight_bram36", "DEFAULT_TARGET_CYCLES", "LANE_LUT_SHARE", "WEIGHT_BRAM_SHARE",
           "BRAM_TARGET_LIMIT"]

# The share of a board's LUTs the default folding gives the binary-weight lanes: the rest is for weight and
# threshold memories, line buffers, converters and control (CNV at BNN-PYNQ's folding: bench/cnv.py).
LANE_LUT_SHARE = 0.5
# The share of a board's block RAM the default folding gives the weight memories: threshold memories, line buffers
# and FIFOs take the rest (small AlexNet, binary, on the PYNQ-Z2: about 30 of 140 BRAM36 outside the weights).
WEIGHT_BRAM_SHARE = 0.75
# The block RAM budget raises the target no further than this (about 100 images/s at 100 MHz): weights near the
# board's block RAM fit only nearly serial foldings (small VGG, binary, on the Ultra96: 57.8 million cycles per
# image), which nobody wants and whose cycle analysis alone would take hours. The board check refuses those instead.
BRAM_TARGET_LIMIT = 1 << 20

DEFAULT_TARGET_CYCLES = 32


@dataclass(frozen=True)
class LayerShape:
    """What a Dense's folding depends on: MH, MW, the size SIMD must divide, output pixels per image, and an ABC-Net
    layer's M weight bases (1 otherwise)."""
    out_features: int
    in_features: int
    simd_limit: int
    pixels: int
    weight_bases: int = 1


def layer_shapes(graph: Graph) -> dict[str, LayerShape]:
    types = check_graph(graph)
    shapes = {}
    for layer in graph.dense_layers():
        channels = window_channels(graph, layer, types)
        _, height, width = types[layer.name].shape
        shapes[layer.name] = LayerShape(layer.out_features, layer.in_features,
                                        channels if channels is not None else layer.in_features, height * width,
                                        layer.weight_bases)
    return shapes


def bases_side_by_side(shape: LayerShape, folding: Folding) -> int:
    """B: an ABC-Net layer's weight bases computed at once (all M unless the folding says otherwise); 1 otherwise."""
    return shape.weight_bases if folding.bases is None else folding.bases


def layer_cycles(shape: LayerShape, folding: Folding) -> int:
    passes = shape.weight_bases // bases_side_by_side(shape, folding)
    return shape.pixels * (shape.out_features // folding.pe) * passes * (shape.in_features // folding.simd)


def _check_target(target_cycles) -> None:
    if not isinstance(target_cycles, int) or isinstance(target_cycles, bool) or target_cycles < 1:
        raise ValueError(f"target_cycles must be a positive integer, not {target_cycles!r}")


def default_folding(out_features: int, in_features: int, target_cycles: int, *, pixels: int = 1,
                    simd_limit: int | None = None, weight_bases: int = 1) -> Folding:
    """The fewest lanes meeting the target (fully parallel when nothing does). An ABC-Net layer's weight bases fold
    like a third dimension: at equal lanes, wide SIMD first, then bases side by side before more PEs (each PE keeps
    all M x N pair accumulators whatever B is)."""
    _check_target(target_cycles)
    shape = LayerShape(out_features, in_features, simd_limit or in_features, pixels, weight_bases)
    abc = weight_bases > 1
    candidates = [(pe * simd * bases, -simd, -bases, pe, simd, bases)
                  for pe in divisors(out_features) for simd in divisors(shape.simd_limit)
                  for bases in divisors(weight_bases)
                  if layer_cycles(shape, Folding(pe, simd, bases)) <= target_cycles]
    if not candidates:
        return Folding(pe=out_features, simd=shape.simd_limit, bases=weight_bases if abc else None)
    *_, pe, simd, bases = min(candidates)
    return Folding(pe=pe, simd=simd, bases=bases if abc else None)


def pool_simd(pool: Pool, channels: int, pixels: int, target_cycles: int) -> int:
    """The fewest channels per cycle at which the pool meets the target (all of them when nothing does)."""
    return channel_simd(channels, pixels * pool.area, target_cycles)


def channel_simd(channels: int, cycles_per_channel: int, target_cycles: int) -> int:
    """The fewest channels per cycle (a divisor of channels) at which cycles_per_channel * channels / SIMD meets the
    target, or all channels when nothing does."""
    return next((simd for simd in divisors(channels) if cycles_per_channel * (channels // simd) <= target_cycles),
                channels)


def _foldings(shapes: Mapping[str, LayerShape], target: int, overrides: Mapping[str, Folding]) -> dict[str, Folding]:
    return {name: overrides.get(name) or default_folding(shape.out_features, shape.in_features, target,
                                                         pixels=shape.pixels, simd_limit=shape.simd_limit,
                                                         weight_bases=shape.weight_bases)
            for name, shape in shapes.items()}


def _multipliers(layers: list[Dense], foldings: Mapping[str, Folding]) -> int:
    return sum(foldings[layer.name].pe * foldings[layer.name].simd for layer in layers if layer.weight_kind == "int8")


def dense_lane_kind(layer: Dense, input_bipolar: bool) -> str:
    """The hardware lane kind of a Dense, from its weights and whether its inputs are bipolar (else int8 codes, or an
    ABC-Net layer's levels)."""
    from ...hw.lanes import lane_kind

    if layer.weight_kind == "abc":
        return lane_kind("abc", "levels")
    return lane_kind(layer.weight_kind, "bipolar" if input_bipolar else "int8")


def lanes_of(layer: Dense, folding: Folding) -> int:
    """Lanes (one product of one weight and one input element each per cycle): PE x SIMD, times B x N XNOR-popcounts
    for an ABC-Net layer."""
    if layer.weight_kind != "abc":
        return folding.pe * folding.simd
    bases = layer.weight_bases if folding.bases is None else folding.bases
    return folding.pe * folding.simd * bases * len(layer.ranks)


def lane_luts(layers: list[Dense], foldings: Mapping[str, Folding], input_bipolar: Mapping[str, bool]) -> float:
    """The LUTs of the binary-, ternary-weight and ABC-Net layers' lanes at these foldings (int8 multiplies go to
    DSP slices)."""
    from ..cost_model import LANE_LUTS  # the cost model itself folds with this pass

    return sum(lanes_of(layer, foldings[layer.name]) * LANE_LUTS[dense_lane_kind(layer, input_bipolar[layer.name])]
               for layer in layers)


def weight_bram36(layers: list[Dense], foldings: Mapping[str, Folding]) -> float:
    """BRAM36 of the weight memories at these foldings (hbnn.hw.mvau: one word of PE x SIMD weights per address,
    (MH/PE) x (MW/SIMD) addresses; block RAM when deeper than LUT_DEPTH, counted as Yosys splits it in depth)."""
    from ...hw.memory_style import memory_block_ram36
    from ...hw.mvau import ELEMENT_FORMATS

    total = 0.0
    for layer in layers:
        folding = foldings[layer.name]
        bases = layer.weight_bases if folding.bases is None else folding.bases
        passes = layer.weight_bases // bases  # an ABC word holds B planes' weights; M/B passes of words
        depth = (layer.out_features // folding.pe) * passes * (layer.in_features // folding.simd)
        _, bits = ELEMENT_FORMATS[layer.weight_kind]
        total += memory_block_ram36(depth, folding.pe * folding.simd * bases * bits)
    return total


def pipeline_target(layers: list[Dense], target_cycles: int, dsp_budget: int | None,
                    overrides: Mapping[str, Folding], shapes: Mapping[str, LayerShape] | None = None,
                    lut_budget: int | None = None, input_bipolar: Mapping[str, bool] | None = None,
                    bram_budget: float | None = None) -> int:
    """The smallest cycles per layer >= target_cycles at which the int8 multipliers fit the DSP budget, the
    binary-weight lanes the LUT budget and the weight memories the BRAM budget."""
    _check_target(target_cycles)
    shapes = shapes or {layer.name: LayerShape(layer.out_features, layer.in_features, layer.in_features, 1)
                        for layer in layers}
    input_bipolar = input_bipolar or {layer.name: True for layer in layers}
    target = target_cycles
    largest = max((layer_cycles(shape, Folding(1, 1)) for shape in shapes.values()), default=1)
    while True:
        foldings = _foldings(shapes, target, overrides)
        fits = ((dsp_budget is None or _multipliers(layers, foldings) <= dsp_budget)
                and (lut_budget is None or lane_luts(layers, foldings, input_bipolar) <= lut_budget)
                and (bram_budget is None or target >= BRAM_TARGET_LIMIT
                     or weight_bram36(layers, foldings) <= bram_budget))
        if fits or target >= largest:
            return target
        target = max(target + 1, int(target * 1.05))


def set_folding(graph: Graph, overrides: Mapping[str, Folding] | None = None,
                target_cycles: int = DEFAULT_TARGET_CYCLES, dsp_budget: int | None = None,
                lut_budget: int | None = None, bram_budget: float | None = None) -> Graph:
    types = check_graph(graph)
    overrides = dict(overrides or {})
    layers = graph.dense_layers()
    names = [layer.name for layer in layers]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise GraphError(f"folding given for unknown layer(s) {unknown}; the layers are {names}")
    shapes = layer_shapes(graph)
    input_bipolar = {layer.name: isinstance(types[layer.inputs[0]].dtype, Bipolar) for layer in layers}
    target = pipeline_target(layers, target_cycles, dsp_budget, overrides, shapes, lut_budget, input_bipolar,
                             bram_budget)
    foldings = _foldings(shapes, target, overrides)
    if dsp_budget is not None and _multipliers(layers, foldings) > dsp_budget:
        int8 = [layer.name for layer in layers if layer.weight_kind == "int8"]
        costliest = max(int8, key=lambda name: foldings[name].pe * foldings[name].simd)
        raise GraphError(f"the int8 layers need {_multipliers(layers, foldings)} multipliers (DSP slices) at these "
                         f"foldings, more than the board's {dsp_budget}; the costliest is '{costliest}' with "
                         f"{foldings[costliest].pe} x {foldings[costliest].simd}: fold it further (fewer PE x SIMD)")
    nodes = []
    for node in graph.nodes:
        if isinstance(node, Dense):
            node = dataclasses.replace(node, folding=foldings[node.name])
        elif isinstance(node, Pool) and node.simd is None:
            channels, height, width = types[node.name].shape
            node = dataclasses.replace(node, simd=pool_simd(node, channels, height * width, target))
        elif isinstance(node, ElementwiseAdd) and node.simd is None:
            channels, height, width = types[node.name].shape
            node = dataclasses.replace(node, simd=channel_simd(channels, height * width, target))
        elif isinstance(node, ChannelPad) and node.simd is None:
            channels, height, width = types[node.name].shape
            common = math.gcd(node.before, types[node.inputs[0]].shape[0], node.after)
            simd = next((simd for simd in divisors(common) if height * width * (channels // simd) <= target), common)
            node = dataclasses.replace(node, simd=simd)
        nodes.append(node)
    result = graph.replace(nodes)
    check_graph(result)
    return result
