"""Pass: a network output that is only a layer's conversion to float32 becomes the layer's integers.

The contract's last layer outputs f32(acc * 2**e); the hardware outputs acc, whose type carries e, and the host
rounds once if it wants floats. After a global average pool the host also divides by the area (the graph's
output_divisors). Any other float32 op on an output (alpha, a float bias, a batch norm) has no integer form, so it
is refused with the layer named.
"""
from __future__ import annotations

from ..check import GraphError
from ..ir import ChannelOps, Graph, Scale

__all__ = ["output_integers"]


def output_integers(graph: Graph) -> Graph:
    producers = {node.name: node for node in graph.nodes}
    outputs, divisors = [], []
    dropped = set()
    for value, divisor in zip(graph.outputs, graph.output_divisors):
        node = producers.get(value)
        if isinstance(node, ChannelOps):
            if any(not isinstance(op, Scale) for op in node.ops):
                ops = ", ".join(type(op).__name__ for op in node.ops if not isinstance(op, Scale))
                raise GraphError(f"output {value!r}: float32 ops ({ops}) follow the last integer layer "
                                 f"{node.inputs[0]!r}; hardware outputs integers times a power of two, so the last "
                                 "layer must end in its accumulator (no alpha, float bias or batch norm after it)")
            if len(graph.readers(value)) == 0:
                dropped.add(value)
            value, divisor = node.inputs[0], node.ops[0].divisor
        outputs.append(value)
        divisors.append(divisor)
    return graph.replace([node for node in graph.nodes if node.name not in dropped], outputs, divisors)
