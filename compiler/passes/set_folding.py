"""Pass: gives every Dense layer its folding (PE output rows x SIMD input columns per cycle).

By default every layer gets the smallest PE x SIMD (the fewest lanes) whose cycles (MH/PE) * (MW/SIMD) meet one
target for the whole pipeline, preferring wide SIMD over many PEs because a wider adder tree is cheaper than another
accumulator. A pipeline streams at its slowest layer's pace, so one target for all layers wastes nothing. The
target is `target_cycles`, raised until the int8 layers' multipliers (one DSP slice each) fit `dsp_budget`.
Overrides name layers explicitly; a folding that does not divide the layer is an error that names it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..check import GraphError, check_graph, divisors
from ..ir import Dense, Folding, Graph

__all__ = ["set_folding", "default_folding", "pipeline_target", "DEFAULT_TARGET_CYCLES"]

DEFAULT_TARGET_CYCLES = 32


def default_folding(out_features: int, in_features: int, target_cycles: int) -> Folding:
    if not isinstance(target_cycles, int) or isinstance(target_cycles, bool) or target_cycles < 1:
        raise ValueError(f"target_cycles must be a positive integer, not {target_cycles!r}")
    candidates = [(pe * simd, -simd, pe, simd)
                  for pe in divisors(out_features) for simd in divisors(in_features)
                  if (out_features // pe) * (in_features // simd) <= target_cycles]
    if not candidates:
        return Folding(pe=out_features, simd=in_features)
    _, _, pe, simd = min(candidates)
    return Folding(pe=pe, simd=simd)


def _multipliers(layers: list[Dense], foldings: Mapping[str, Folding]) -> int:
    return sum(foldings[layer.name].pe * foldings[layer.name].simd for layer in layers if layer.weight_kind == "int8")


def pipeline_target(layers: list[Dense], target_cycles: int, dsp_budget: int | None,
                    overrides: Mapping[str, Folding]) -> int:
    """The smallest cycles per layer >= target_cycles at which the int8 multipliers fit the DSP budget."""
    target = target_cycles
    if dsp_budget is None:
        return target
    largest = max((layer.out_features * layer.in_features for layer in layers), default=1)
    while True:
        foldings = {layer.name: overrides.get(layer.name)
                    or default_folding(layer.out_features, layer.in_features, target) for layer in layers}
        if _multipliers(layers, foldings) <= dsp_budget or target >= largest:
            return target
        target = max(target + 1, int(target * 1.05))


def set_folding(graph: Graph, overrides: Mapping[str, Folding] | None = None,
                target_cycles: int = DEFAULT_TARGET_CYCLES, dsp_budget: int | None = None) -> Graph:
    check_graph(graph)
    overrides = dict(overrides or {})
    layers = graph.dense_layers()
    names = [layer.name for layer in layers]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise GraphError(f"folding given for unknown layer(s) {unknown}; the layers are {names}")
    target = pipeline_target(layers, target_cycles, dsp_budget, overrides)
    foldings = {layer.name: overrides.get(layer.name)
                or default_folding(layer.out_features, layer.in_features, target) for layer in layers}
    if dsp_budget is not None and _multipliers(layers, foldings) > dsp_budget:
        raise GraphError(f"the int8 layers need {_multipliers(layers, foldings)} multipliers (DSP slices) at these "
                         f"foldings, more than the board's {dsp_budget}: fold them further (fewer PE x SIMD)")
    nodes = [dataclasses.replace(node, folding=foldings[node.name]) if isinstance(node, Dense) else node
             for node in graph.nodes]
    result = graph.replace(nodes)
    check_graph(result)
    return result
