"""Verilog out of Amaranth, with the memories' initial contents written as one constant each.

Amaranth 0.5's RTLIL backend (`ModuleEmitter.emit_memory`) builds a net object for every bit of a memory's
initial contents and then joins them back into one constant: for CNV's 1.5 million weight bits that was 13 of the
27 seconds of Verilog generation. `to_verilog` swaps in a method that writes the same constant straight from the
rows, for the duration of one conversion. tests/hw/test_verilog_export.py checks that the RTLIL is byte-identical
to Amaranth's own, so a change in Amaranth's backend shows there rather than in a design.
"""
from __future__ import annotations

import contextlib

from amaranth.back import rtlil, verilog

__all__ = ["to_verilog", "memory_init_as_one_constant"]

_ORIGINAL_EMIT_MEMORY = rtlil.ModuleEmitter.emit_memory


def _emit_memory(self, cell_idx, cell):
    if cell.width == 0 or cell.depth == 0:
        return _ORIGINAL_EMIT_MEMORY(self, cell_idx, cell)
    mask = (1 << cell.width) - 1
    # Row 0's bit 0 is the constant's least significant bit, as in Amaranth's per-bit sigspec.
    bits = "".join(format(row & mask, f"0{cell.width}b") for row in reversed(cell.init))
    memory_info = self.memories[cell_idx]
    self.builder.cell("$meminit_v2", ports={
        "ADDR": self.sigspec(),
        "DATA": f"{len(bits)}'{bits}",
        "EN": f"{cell.width}'{'1' * cell.width}",
    }, parameters={
        "MEMID": memory_info.memid,
        "ABITS": 0,
        "WIDTH": cell.width,
        "WORDS": cell.depth,
        "PRIORITY": 0,
    }, src_loc=cell.src_loc)


@contextlib.contextmanager
def memory_init_as_one_constant():
    """Within the block, Amaranth's RTLIL backend writes memory contents with `_emit_memory`."""
    rtlil.ModuleEmitter.emit_memory = _emit_memory
    try:
        yield
    finally:
        rtlil.ModuleEmitter.emit_memory = _ORIGINAL_EMIT_MEMORY


def to_verilog(component, name: str) -> str:
    """verilog.convert without source locations (they carry absolute paths: machine-dependent output)."""
    with memory_init_as_one_constant():
        return verilog.convert(component, name=name, emit_src=False)
