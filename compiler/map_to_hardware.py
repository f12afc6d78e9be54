"""Maps a compiled graph onto the Amaranth components of hbnn.hw."""
from __future__ import annotations

from amaranth.back import verilog

from ..hw.accelerator import Accelerator
from ..hw.xnor_popcount import XnorPopcountMVU
from .check import hardware_layers
from .ir import Graph

__all__ = ["TOP_NAME", "build_accelerator", "emit_verilog"]

TOP_NAME = "hbnn_top"


def build_accelerator(graph: Graph) -> Accelerator:
    layers = [XnorPopcountMVU(weight_bits=node.weight_bits, thresholds=node.thresholds, pe=node.folding.pe,
                              simd=node.folding.simd) for node in hardware_layers(graph)]
    return Accelerator(layers)


def emit_verilog(graph: Graph) -> str:
    # emit_src=False: source-location attributes carry absolute paths and would make the output machine-dependent.
    return verilog.convert(build_accelerator(graph), name=TOP_NAME, emit_src=False)
