"""Validates a graph: data types chain, widths match, thresholds and foldings are in range. Run after every pass."""
from __future__ import annotations

from .ir import (BatchNorm, BinaryDense, Bipolar, DataType, Float32, Graph, Int, Sign, Threshold, XnorPopcount,
                 accumulator_width)

__all__ = ["GraphError", "check_graph", "hardware_layers", "output_type"]


class GraphError(ValueError):
    """The graph is malformed; the message names the layer."""


def _fail(node, message):
    raise GraphError(f"layer {node.name!r} ({type(node).__name__}): {message}")


def check_folding(node: XnorPopcount) -> None:
    if node.folding is None:
        return
    for label, size, value in (("pe", node.out_features, node.folding.pe),
                               ("simd", node.in_features, node.folding.simd)):
        if size % value:
            divisors = [d for d in range(1, size + 1) if size % d == 0]
            what = "output rows (MH)" if label == "pe" else "input columns (MW)"
            _fail(node, f"{label}={value} does not divide its {size} {what}; choose one of {divisors}")


def output_type(graph: Graph) -> tuple[DataType, int]:
    """Checks the graph and returns the data type and width of its output vector."""
    check_graph(graph)
    return _walk(graph)


def check_graph(graph: Graph) -> None:
    names = [node.name for node in graph.nodes]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise GraphError(f"layer names must be unique; repeated: {duplicates}")
    if graph.input_width < 1:
        raise GraphError(f"input width must be positive, not {graph.input_width}")
    _walk(graph)


def _walk(graph: Graph) -> tuple[DataType, int]:
    dtype: DataType = Bipolar()
    width = graph.input_width
    for node in graph.nodes:
        if isinstance(node, (BinaryDense, XnorPopcount)):
            if dtype != Bipolar():
                _fail(node, f"needs a bipolar input, gets {dtype}")
            if node.in_features != width:
                _fail(node, f"has {node.in_features} inputs but the previous layer gives {width}")
            if isinstance(node, BinaryDense):
                if not set(map(int, node.weights.ravel())) <= {-1, 1}:
                    _fail(node, "weights must all be -1 or +1")
                dtype = Int(accumulator_width(node.in_features), signed=True)
            else:
                if node.thresholds is not None:
                    if node.thresholds.shape != (node.out_features,):
                        _fail(node, f"needs {node.out_features} thresholds, has shape {node.thresholds.shape}")
                    if node.thresholds.min() < 0 or node.thresholds.max() > node.in_features + 1:
                        _fail(node, f"popcount thresholds must lie in 0..{node.in_features + 1}")
                check_folding(node)
                dtype = node.output_type
            width = node.out_features
        elif isinstance(node, BatchNorm):
            if not isinstance(dtype, Int):
                _fail(node, f"needs an integer input, gets {dtype}")
            if node.channels != width:
                _fail(node, f"has {node.channels} channels but its input has {width}")
            dtype = Float32()
        elif isinstance(node, Sign):
            if dtype == Bipolar():
                _fail(node, "input is already bipolar")
            dtype = Bipolar()
        elif isinstance(node, Threshold):
            if not isinstance(dtype, Int):
                _fail(node, f"needs an integer input, gets {dtype}")
            if node.channels != width or node.flip.shape != (width,):
                _fail(node, f"has {node.channels} channels but its input has {width}")
            dtype = Bipolar()
        else:
            raise GraphError(f"unknown node type {type(node).__name__} ({node!r})")
    return dtype, width


def hardware_layers(graph: Graph) -> list[XnorPopcount]:
    """The graph's layers, checked to be fully compiled: every node an XnorPopcount with a folding."""
    check_graph(graph)
    for node in graph.nodes:
        if not isinstance(node, XnorPopcount):
            raise GraphError(f"layer {node.name!r} ({type(node).__name__}) has no hardware mapping yet; "
                             "run the compile pipeline first")
        if node.folding is None:
            raise GraphError(f"layer {node.name!r} has no folding; run set_folding first")
    if not graph.nodes:
        raise GraphError("the graph has no layers")
    return list(graph.nodes)
