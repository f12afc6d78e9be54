"""Where a memory goes: block RAM when deep, LUTs when shallow, chosen per memory.

A LUT6 holds 64 bits of one output, so a ROM of depth <= 64 costs about one LUT per output bit; a block RAM holds
36 kbit whatever the depth, so a shallow memory in one would leave it mostly empty. Deeper memories go to block RAM:
on a 256 x 256 binary MVU (PE = SIMD = 16, weight memory 256 words of 256 bits) Yosys put the weights in 4,624 LUTs
by its own choice and in 617 LUTs plus 4 BRAM36 when told (bench/mvu.py). Yosys reads the choice from the
ram_style / rom_style attributes.
"""
from __future__ import annotations

__all__ = ["LUT_DEPTH", "memory_style", "memory_attrs"]

LUT_DEPTH = 64  # the deepest memory kept in LUTs: one LUT6 per output bit


def memory_style(depth: int, *, writable: bool = False) -> str:
    """Yosys' and Vivado's names: "block"; for shallow memories "logic" (a ROM: LUTs) or "distributed" (a RAM:
    LUT RAM; Yosys finds no LUT-RAM mapping for a ROM with a registered read port)."""
    if depth > LUT_DEPTH:
        return "block"
    return "distributed" if writable else "logic"


def memory_attrs(depth: int, *, writable: bool = False) -> dict[str, str]:
    return {"ram_style" if writable else "rom_style": memory_style(depth, writable=writable)}
