"""Maps a compiled graph onto the Amaranth components of hbnn.hw."""
from __future__ import annotations

from amaranth.back import verilog

from ..hw.accelerator import Accelerator
from ..hw.xnor_popcount import XnorPopcountMVU
from .check import GraphError, check_graph
from .ir import Graph, XnorPopcount

__all__ = ["TOP_NAME", "build_accelerator", "emit_verilog"]

TOP_NAME = "hbnn_top"


def build_accelerator(graph: Graph) -> Accelerator:
    check_graph(graph)
    layers = []
    for node in graph.nodes:
        if not isinstance(node, XnorPopcount):
            raise GraphError(f"layer {node.name!r} ({type(node).__name__}) has no hardware mapping; "
                             "compile the graph first")
        if node.folding is None:
            raise GraphError(f"layer {node.name!r} has no folding; run set_folding first")
        layers.append(XnorPopcountMVU(weight_bits=node.weight_bits, thresholds=node.thresholds,
                                      pe=node.folding.pe, simd=node.folding.simd))
    return Accelerator(layers)


def emit_verilog(graph: Graph) -> str:
    # emit_src=False: source-location attributes carry absolute paths and would make the output machine-dependent.
    return verilog.convert(build_accelerator(graph), name=TOP_NAME, emit_src=False)
