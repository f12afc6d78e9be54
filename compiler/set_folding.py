"""Pass: gives every XnorPopcount layer its folding (PE rows x SIMD columns per cycle).

By default each layer gets the smallest PE x SIMD (the fewest XNOR lanes) whose cycle count (MH/PE)*(MW/SIMD) meets
`target_cycles`, preferring wide SIMD over many PEs because a wider popcount is cheaper than another accumulator.
Overrides name layers explicitly; a folding that does not divide the layer is an error that names it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .check import GraphError, check_graph
from .ir import Folding, Graph, XnorPopcount

__all__ = ["set_folding", "default_folding", "DEFAULT_TARGET_CYCLES"]

DEFAULT_TARGET_CYCLES = 32


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def default_folding(out_features: int, in_features: int, target_cycles: int) -> Folding:
    if not isinstance(target_cycles, int) or target_cycles < 1:
        raise ValueError(f"target_cycles must be a positive integer, not {target_cycles!r}")
    candidates = [(pe * simd, -simd, pe, simd)
                  for pe in _divisors(out_features) for simd in _divisors(in_features)
                  if (out_features // pe) * (in_features // simd) <= target_cycles]
    if not candidates:
        return Folding(pe=out_features, simd=in_features)
    _, _, pe, simd = min(candidates)
    return Folding(pe=pe, simd=simd)


def set_folding(graph: Graph, overrides: Mapping[str, Folding] | None = None,
                target_cycles: int = DEFAULT_TARGET_CYCLES) -> Graph:
    overrides = dict(overrides or {})
    layer_names = [node.name for node in graph.nodes if isinstance(node, XnorPopcount)]
    unknown = sorted(set(overrides) - set(layer_names))
    if unknown:
        raise GraphError(f"folding given for unknown layer(s) {unknown}; the hardware layers are {layer_names}")
    nodes = []
    for node in graph.nodes:
        if isinstance(node, XnorPopcount):
            folding = overrides.get(node.name) or default_folding(node.out_features, node.in_features,
                                                                  target_cycles)
            node = dataclasses.replace(node, folding=folding)
        nodes.append(node)
    result = graph.replace(nodes)
    check_graph(result)
    return result
