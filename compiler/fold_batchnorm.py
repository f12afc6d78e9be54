"""Pass: BinaryDense -> [BatchNorm] -> Sign becomes BinaryDense -> Threshold (integer thresholds on the accumulator).

The accumulator of a binary dense layer with MW inputs takes the values -MW, -MW + 2, ..., MW. The batch norm is
evaluated in float32 with the exact op sequence PyTorch runs, and hbnn.compiler.multithreshold bisects that exact
function for where the sign changes: exact by construction, no reasoning about float rounding at the boundary.
The output is a monotone step in the accumulator; a negative batch-norm scale makes it a falling step, stored as a
flipped comparison (-acc >= t).
"""
from __future__ import annotations

import numpy as np

from .check import GraphError, check_graph
from .multithreshold import fold_steps
from .ir import BatchNorm, BinaryDense, Graph, Sign, Threshold

__all__ = ["fold_batchnorm_sign", "sign_step_thresholds"]


def sign_step_thresholds(name: str, in_features: int, batchnorm: BatchNorm | None) -> Threshold:
    """The Threshold equal to sign(batchnorm(acc)) for every reachable accumulator value acc."""
    def positive(accumulators: np.ndarray) -> np.ndarray:
        values = accumulators if batchnorm is None else batchnorm.evaluate(accumulators)
        return (values >= 0).astype(np.int64)

    channels = 1 if batchnorm is None else batchnorm.channels
    steps = fold_steps(positive, channels, -in_features, in_features, levels=2, stride=2)
    return Threshold(name=name, thresholds=steps.thresholds[:, 0], flip=steps.descending)


def fold_batchnorm_sign(graph: Graph) -> Graph:
    nodes = list(graph.nodes)
    out = []
    index = 0
    while index < len(nodes):
        node = nodes[index]
        following = nodes[index + 1:index + 3]
        if isinstance(node, BinaryDense) and following and isinstance(following[0], Sign):
            out += [node, sign_step_thresholds(following[0].name, node.in_features, None)]
            index += 2
            continue
        if (isinstance(node, BinaryDense) and len(following) == 2 and isinstance(following[0], BatchNorm)
                and isinstance(following[1], Sign)):
            batchnorm = following[0]
            if not all(np.isfinite(getattr(batchnorm, a)).all() for a in ("mean", "var", "gamma", "beta")):
                raise GraphError(f"layer {batchnorm.name!r}: batch-norm parameters contain NaN or infinity")
            out += [node, sign_step_thresholds(batchnorm.name, node.in_features, batchnorm)]
            index += 3
            continue
        out.append(node)
        index += 1
    result = graph.replace(out)
    check_graph(result)
    return result
