"""Pass: BinaryDense [-> Threshold] becomes XnorPopcount, the layer the hardware implements.

With p = popcount(xnor(w, x)) the accumulator is acc = 2p - MW, so acc >= t becomes p >= ceil((t + MW) / 2).
A flipped channel (-acc >= t) negates that weight row, which negates acc, and keeps the same comparison.
"""
from __future__ import annotations

import numpy as np

from .check import check_graph
from .ir import BinaryDense, Graph, Threshold, XnorPopcount

__all__ = ["convert_to_xnor_popcount", "popcount_thresholds"]


def popcount_thresholds(accumulator_thresholds: np.ndarray, in_features: int) -> np.ndarray:
    ceiling = -((-(accumulator_thresholds + in_features)) // 2)
    return np.clip(ceiling, 0, in_features + 1)


def convert_to_xnor_popcount(graph: Graph) -> Graph:
    nodes = list(graph.nodes)
    out = []
    index = 0
    while index < len(nodes):
        node = nodes[index]
        if not isinstance(node, BinaryDense):
            out.append(node)
            index += 1
            continue
        threshold = nodes[index + 1] if index + 1 < len(nodes) else None
        weight_bits = node.weights > 0
        if isinstance(threshold, Threshold):
            weight_bits = np.where(threshold.flip[:, None], ~weight_bits, weight_bits)
            thresholds = popcount_thresholds(threshold.thresholds, node.in_features)
            index += 2
        else:
            thresholds = None
            index += 1
        out.append(XnorPopcount(name=node.name, weight_bits=weight_bits, thresholds=thresholds))
    result = graph.replace(out)
    check_graph(result)
    return result
