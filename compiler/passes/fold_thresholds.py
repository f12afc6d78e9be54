"""Pass: Dense -> ChannelOps -> Quantize becomes Dense -> MultiThreshold (integer thresholds on the accumulator);
likewise a sum Pool -> ChannelOps (an average: Scale with the area as divisor) -> Quantize, and a residual sum
(ElementwiseAdd) -> ChannelOps -> Quantize. Where several quantizers read the same channel ops (a residual block's
input, read by its first layer and by its shortcut), each gets its own thresholds on the same integers;
identical ones become one (merge_equal_thresholds).

The ChannelOps and the quantizer are a chain of float32 operations, each weakly monotone, so the output code is a
monotone step function of the integer per channel (rising, falling for a negative scale, or constant).
hbnn.compiler.multithreshold bisects that exact function, evaluated with the same float32 operations PyTorch runs
(hbnn.compiler.float_ops), over every accumulator value the Dense can produce: exact by construction. A sign needs
one threshold; an int8 requantization up to 255, fewer where a channel's reachable codes are fewer (after a ReLU
only 0..127), which shortens the threshold unit's binary search; ABC-Net's N activation bases N, one per base: their
level (how many are +1) is the output, from which the reader's lanes take each base (Dense.ranks).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..check import GraphError, check_graph
from ..float_ops import apply_channel_ops, quantize
from ..ir import (INT8, Bipolar, ChannelOps, Dense, ElementwiseAdd, Graph, Int, MultiThreshold, Pool, Quantize,
                  levels_type)
from ..multithreshold import fold_steps, reached_levels

__all__ = ["fold_thresholds", "merge_equal_thresholds", "accumulator_lattice"]


def accumulator_lattice(dense: Dense, input_type) -> tuple[int, int, int]:
    """(low, high, stride): every value the accumulator (before bias) can take lies on this lattice.

    A +-1 x +-1 dot product of length n has n's parity, so stride 2; anything else stride 1.
    """
    bound = dense.accumulator_bound(input_type)
    if dense.weight_kind == "binary" and isinstance(input_type, Bipolar):
        return -bound, bound, 2
    return -bound, bound, 1


def _lattice(source, types) -> tuple[int, int, int]:
    """(low, high, stride) of the integers a Dense (before bias), a sum pool or a residual sum produces."""
    if isinstance(source, Dense):
        return accumulator_lattice(source, types[source.inputs[0]].dtype)
    if isinstance(source, ElementwiseAdd):
        a, b = (types[value].dtype for value in source.inputs)
        return a.low + b.low, a.high + b.high, 1
    dtype = types[source.inputs[0]].dtype
    return dtype.low * source.area, dtype.high * source.area, 1


def _thresholds(dense: Dense | Pool | ElementwiseAdd, ops: ChannelOps, quantizer: Quantize, types) -> MultiThreshold:
    exponent = types[dense.name].dtype.exponent
    channels = types[dense.name].shape[0]
    bias = np.zeros(channels, dtype=np.int64) if getattr(dense, "bias", None) is None else dense.bias
    low_code = {"sign": -1, "int8": INT8[0], "abc": 0}[quantizer.kind]
    levels = {"sign": 2, "int8": INT8[1] - INT8[0] + 1}.get(quantizer.kind) or len(quantizer.shifts) + 1
    dtype = Int(8, True, quantizer.exponent) if quantizer.kind == "int8" else levels_type(levels - 1)

    def levels_of(accumulators: np.ndarray) -> np.ndarray:
        # (n, channels) accumulators -> (n, channels, 1, 1) values, as the layer produces them
        values = (accumulators + bias)[..., None, None]
        codes = quantize(quantizer, apply_channel_ops(ops.ops, values, exponent))[..., 0, 0]
        return (codes - low_code) // (2 if quantizer.kind == "sign" else 1)

    low, high, stride = _lattice(dense, types)
    steps = fold_steps(levels_of, channels, low, high, levels, stride=stride)
    thresholds = steps.thresholds
    if quantizer.kind == "sign":
        return MultiThreshold(name=quantizer.name, inputs=(dense.name,), thresholds=thresholds,
                              descending=steps.descending, base=0, dtype=Bipolar())
    first, last = reached_levels(steps, low, high)
    return MultiThreshold(name=quantizer.name, inputs=(dense.name,), thresholds=thresholds[:, first:last],
                          descending=steps.descending, base=low_code + first, dtype=dtype)


def fold_thresholds(graph: Graph) -> Graph:
    types = check_graph(graph)
    by_name = {node.name: node for node in graph.nodes}
    replaced: dict[str, MultiThreshold] = {}
    removed: set[str] = set()
    for node in graph.nodes:
        if not isinstance(node, Quantize):
            continue
        ops = by_name.get(node.inputs[0])
        dense = by_name.get(ops.inputs[0]) if isinstance(ops, ChannelOps) else None
        if not (isinstance(dense, (Dense, ElementwiseAdd)) or (isinstance(dense, Pool) and dense.kind == "sum")):
            raise GraphError(f"quantizer {node.name!r} does not follow a layer's, an average pool's or a residual "
                             "sum's channel ops; only Dense (or sum Pool, or ElementwiseAdd) -> ChannelOps -> "
                             "Quantize folds into thresholds")
        others = [reader.name for reader in graph.readers(ops.name) if not isinstance(reader, Quantize)]
        if others or ops.name in graph.outputs:
            raise GraphError(f"the float32 values {ops.name!r} are read by {others or 'the output'} as well as by "
                             "quantizers; only quantizers' thresholds fold them")
        replaced[node.name] = _thresholds(dense, ops, node, types)
        if getattr(dense, "bias", None) is not None:  # the thresholds include it: compare the bare accumulator
            replaced[dense.name] = dataclasses.replace(dense, bias=None)
        removed.add(ops.name)
    nodes = [replaced.get(node.name, node) for node in graph.nodes if node.name not in removed]
    return graph.replace(nodes)


def merge_equal_thresholds(graph: Graph) -> Graph:
    """MultiThresholds with the same input and the same thresholds, directions, base and type become the first of
    them; their readers read it (one threshold unit, its output forked)."""
    kept: dict[tuple, str] = {}
    renamed: dict[str, str] = {}
    nodes = []
    for node in graph.nodes:
        node = _renamed_inputs(node, renamed)
        if isinstance(node, MultiThreshold):
            key = (node.inputs, node.thresholds.tobytes(), node.thresholds.shape, node.descending.tobytes(),
                   node.base, node.dtype)
            if key in kept:
                renamed[node.name] = kept[key]
                continue
            kept[key] = node.name
        nodes.append(node)
    outputs = [renamed.get(value, value) for value in graph.outputs]
    return graph.replace(nodes, outputs, graph.output_divisors)


def _renamed_inputs(node, renamed: dict[str, str]):
    inputs = tuple(renamed.get(value, value) for value in node.inputs)
    return dataclasses.replace(node, inputs=inputs) if inputs != node.inputs else node
