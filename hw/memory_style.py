"""Where a memory goes: block RAM when deep, LUTs when shallow, chosen per memory.

A LUT6 holds 64 bits of one output, so a ROM of depth <= 64 costs about one LUT per output bit; a block RAM holds
36 kbit whatever the depth, so a shallow memory in one would leave it mostly empty. Deeper memories go to block RAM:
on a 256 x 256 binary MVU (PE = SIMD = 16, weight memory 256 words of 256 bits) Yosys put the weights in 4,624 LUTs
by its own choice and in 617 LUTs plus 4 BRAM36 when told (bench/mvu.py). Yosys reads the choice from the
ram_style / rom_style attributes.

How many block RAMs a memory takes follows from the RAMB36/RAMB18 aspect ratios (`block_ram36`: as many side by
side as the width needs, at the widest shape deep enough). A depth just past a power of two would waste most of
them, 4,608 words x 64 bits taking the 8K x 4 shape, 16 BRAM36 for 8 BRAM36 of bits; Yosys instead splits such a
memory in depth across shapes and maps it to 8. The estimate for a ROM (`memory_block_ram36`) therefore counts the
cheapest split into up to three segments (`rom_segments`: 4,096 + 512 words, 8.5 BRAM36), which Yosys met or
beat on every memory checked (tests/hw/test_memory_style.py); writable memories (FIFOs, line buffers) are counted
whole.
"""
from __future__ import annotations

import functools
import math

__all__ = ["LUT_DEPTH", "memory_style", "memory_attrs", "RAMB18_SHAPES", "RAMB36_SHAPES", "block_ram36",
           "rom_segments", "memory_block_ram36"]

LUT_DEPTH = 64  # the deepest memory kept in LUTs: one LUT6 per output bit


def memory_style(depth: int, *, writable: bool = False) -> str:
    """Yosys' and Vivado's names: "block"; for shallow memories "logic" (a ROM: LUTs) or "distributed" (a RAM:
    LUT RAM; Yosys finds no LUT-RAM mapping for a ROM with a registered read port)."""
    if depth > LUT_DEPTH:
        return "block"
    return "distributed" if writable else "logic"


def memory_attrs(depth: int, *, writable: bool = False) -> dict[str, str]:
    return {"ram_style" if writable else "rom_style": memory_style(depth, writable=writable)}


# Block RAM aspect ratios (depth, width): RAMB18E1 and RAMB36E1 with parity bits where a width has them.
RAMB18_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))
RAMB36_SHAPES = ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1))
MAX_ROM_SEGMENTS = 3  # enough to come within half a BRAM36 of Yosys on the memories checked


def block_ram36(depth: int, width: int) -> float:
    """BRAM36 units (a RAMB18 counts 0.5) of one memory in block RAM: the fewest RAMB36 and RAMB18 side by side
    that hold `width` bits at `depth` words (memories deeper than 32K words as a cascade of 32K-word slices)."""
    if depth > RAMB36_SHAPES[-1][0]:
        return math.ceil(depth / RAMB36_SHAPES[-1][0]) * block_ram36(RAMB36_SHAPES[-1][0], width)
    wide36 = next(widest for deepest, widest in RAMB36_SHAPES if depth <= deepest)
    wide18 = next((widest for deepest, widest in RAMB18_SHAPES if depth <= deepest), 0)
    if not wide18:
        return float(math.ceil(width / wide36))
    return min(whole + 0.5 * math.ceil(max(0, width - whole * wide36) / wide18)
               for whole in range(math.ceil(width / wide36) + 1))


@functools.cache
def _cheapest_split(depth: int, width: int, segments: int) -> tuple[float, tuple[int, ...]]:
    best = (block_ram36(depth, width), (depth,))
    head = 1 << (depth - 1).bit_length() - 1  # the largest power of two below depth
    if segments > 1 and head >= RAMB36_SHAPES[0][0] and depth - head > LUT_DEPTH:  # every segment in block RAM
        cost, rest = _cheapest_split(depth - head, width, segments - 1)
        if cost + block_ram36(head, width) < best[0]:
            best = (cost + block_ram36(head, width), (head,) + rest)
    return best


def rom_segments(depth: int, width: int) -> tuple[int, ...]:
    """The depth split the estimate counts for a block-RAM ROM: powers of two of at least 512 words (the shallowest
    block RAM shape) and the rest (deeper than LUT_DEPTH), up to MAX_ROM_SEGMENTS, where that takes fewer block RAMs
    than the whole; (depth,) otherwise and for a ROM in LUTs. The hardware keeps one memory; Yosys splits it."""
    if depth <= LUT_DEPTH:
        return (depth,)
    return _cheapest_split(depth, width, MAX_ROM_SEGMENTS)[1]


def memory_block_ram36(depth: int, width: int, *, writable: bool = False) -> float:
    """Estimated block RAM of one memory: 0 in LUTs (LUT_DEPTH words or fewer), a ROM as its cheapest depth split
    (rom_segments), a writable memory whole."""
    if depth <= LUT_DEPTH:
        return 0.0
    if writable:
        return block_ram36(depth, width)
    return sum(block_ram36(segment, width) for segment in rom_segments(depth, width))
