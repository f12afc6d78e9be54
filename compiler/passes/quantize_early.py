"""Pass: a quantizer behind a max pool, a flatten or a channel pad moves in front of it.

Both commute with any non-decreasing elementwise map, and a quantizer is one (sign, int8 rounding and clamping, or
an ABC-Net level, the count of activation bases that are +1):
quantize(max(window)) = max(quantize(window)), and a flatten only reorders. The max pool's padding (-inf on float32)
becomes the lowest code, which quantize(-inf) is; a channel pad's 0.0 becomes quantize(0.0), 0 for int8 and +1 for
a sign. Afterwards the quantizer reads the channel ops directly and
fold_thresholds can turn them into thresholds; the pool and the flatten then run on codes (bits for a binary
reader: a max pool is an OR). The quantizer keeps its name; its readers read the moved node instead.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..check import check_graph
from ..float_ops import quantize
from ..ir import ChannelPad, Flatten, Float32, Graph, Pool, Quantize

__all__ = ["quantize_early"]


def _movable(node, graph: Graph, types) -> bool:
    return (isinstance(node, (Flatten, ChannelPad)) or (isinstance(node, Pool) and node.kind == "max")) \
        and isinstance(types[node.name].dtype, Float32) and len(graph.readers(node.name)) == 1 \
        and node.name not in graph.outputs


def _swap_once(graph: Graph) -> Graph | None:
    types = check_graph(graph)
    producers = {node.name: node for node in graph.nodes}
    for quantizer in graph.nodes:
        moved = producers.get(quantizer.inputs[0]) if isinstance(quantizer, Quantize) else None
        if moved is None or not _movable(moved, graph, types):
            continue
        early = dataclasses.replace(quantizer, inputs=moved.inputs)
        late = dataclasses.replace(moved, inputs=(quantizer.name,))
        if isinstance(moved, ChannelPad):
            late = dataclasses.replace(late, pad_code=int(quantize(quantizer, np.float32(0))))
        nodes = []
        for node in graph.nodes:
            if node is moved:
                nodes.append(early)
            elif node is quantizer:
                nodes.append(late)
            else:
                renamed = tuple(moved.name if value == quantizer.name else value for value in node.inputs)
                nodes.append(dataclasses.replace(node, inputs=renamed) if renamed != node.inputs else node)
        outputs = tuple(moved.name if value == quantizer.name else value for value in graph.outputs)
        return graph.replace(nodes, outputs, graph.output_divisors)
    return None


def quantize_early(graph: Graph) -> Graph:
    while (swapped := _swap_once(graph)) is not None:
        graph = swapped
    return graph
