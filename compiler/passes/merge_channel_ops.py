"""Pass: consecutive ChannelOps with one reader between them become one (the exact op sequence, in order).

The merged node keeps the later name, so every reader still finds its value.
"""
from __future__ import annotations

from ..ir import ChannelOps, Graph

__all__ = ["merge_channel_ops"]


def merge_channel_ops(graph: Graph) -> Graph:
    nodes = list(graph.nodes)
    merged = True
    while merged:
        merged = False
        by_name = {node.name: node for node in nodes}
        for index, node in enumerate(nodes):
            upstream = by_name.get(node.inputs[0]) if isinstance(node, ChannelOps) else None
            if (isinstance(upstream, ChannelOps) and upstream.name not in graph.outputs
                    and sum(upstream.name in other.inputs for other in nodes) == 1):
                nodes[index] = ChannelOps(name=node.name, inputs=upstream.inputs, ops=upstream.ops + node.ops)
                nodes.remove(upstream)
                merged = True
                break
    return graph.replace(nodes)
