"""Integer reference executor of the IR (numpy). Every pass must leave its outputs unchanged."""
from __future__ import annotations

import numpy as np

from .check import check_graph
from .ir import BatchNorm, BinaryDense, Graph, Sign, Threshold, XnorPopcount

__all__ = ["execute"]


def execute(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Runs the graph on bipolar inputs `x` of shape (N, input_width) with entries -1/+1.

    Returns int64 outputs (bipolar -1/+1 or integer accumulators), or float32 if the graph ends in a BatchNorm.
    """
    check_graph(graph)
    values = np.asarray(x)
    if values.ndim != 2 or values.shape[1] != graph.input_width:
        raise ValueError(f"input must have shape (N, {graph.input_width}), not {values.shape}")
    if not np.isin(values, (-1, 1)).all():
        raise ValueError("input must be bipolar: every entry -1 or +1")
    values = values.astype(np.int64)
    for node in graph.nodes:
        if isinstance(node, BinaryDense):
            values = values @ node.weights.astype(np.int64).T
        elif isinstance(node, BatchNorm):
            values = node.evaluate(values)
        elif isinstance(node, Sign):
            values = np.where(values >= 0, 1, -1).astype(np.int64)
        elif isinstance(node, Threshold):
            signed = np.where(node.flip, -values, values)
            values = np.where(signed >= node.thresholds, 1, -1).astype(np.int64)
        elif isinstance(node, XnorPopcount):
            bipolar_weights = np.where(node.weight_bits, 1, -1).astype(np.int64)
            accumulator = values @ bipolar_weights.T
            if node.thresholds is None:
                values = accumulator
            else:
                popcount = (accumulator + node.in_features) // 2
                values = np.where(popcount >= node.thresholds, 1, -1).astype(np.int64)
    return values
