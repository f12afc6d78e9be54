"""Pass: BinaryDense -> [BatchNorm] -> Sign becomes BinaryDense -> Threshold (integer thresholds on the accumulator).

The accumulator of a binary dense layer with MW inputs can only take the MW + 1 values -MW, -MW + 2, ..., MW, so the
pass evaluates the batch norm (in float32, with the exact op sequence PyTorch runs) on every one of them and reads off
where the sign changes. That is exact by construction: no reasoning about float rounding at the boundary is needed.
The output is a monotone step in the accumulator; a negative batch-norm scale makes it a falling step, stored as a
flipped comparison (-acc >= t).
"""
from __future__ import annotations

import numpy as np

from .check import GraphError, check_graph
from .ir import BatchNorm, BinaryDense, Graph, Sign, Threshold

__all__ = ["fold_batchnorm_sign", "sign_step_thresholds"]


def sign_step_thresholds(name: str, in_features: int, batchnorm: BatchNorm | None) -> Threshold:
    """The Threshold equal to sign(batchnorm(acc)) for every reachable accumulator value acc."""
    reachable = np.arange(-in_features, in_features + 1, 2, dtype=np.int64)
    if batchnorm is None:
        positive = np.broadcast_to((reachable >= 0)[:, None], (reachable.size, 1))
    else:
        grid = np.broadcast_to(reachable[:, None], (reachable.size, batchnorm.channels))
        positive = batchnorm.evaluate(grid) >= 0
    channels = positive.shape[1]
    thresholds = np.empty(channels, dtype=np.int64)
    flip = np.zeros(channels, dtype=np.bool_)
    for channel in range(channels):
        column = positive[:, channel]
        steps = np.diff(column.astype(np.int8))
        if not column.any():
            thresholds[channel] = in_features + 1  # never +1
        elif (steps >= 0).all():  # rising step (or always +1): +1 from the first positive value on
            thresholds[channel] = reachable[np.argmax(column)]
        elif (steps <= 0).all():  # falling step (negative scale): +1 up to the last positive value
            flip[channel] = True
            thresholds[channel] = -reachable[len(column) - 1 - np.argmax(column[::-1])]
        else:
            raise GraphError(f"layer {name!r}: batch norm + sign is not monotone in channel {channel}; "
                             "its parameters are not finite numbers")
    return Threshold(name=name, thresholds=thresholds, flip=flip)


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
