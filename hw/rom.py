"""A read-only amaranth.lib.memory.Memory from a list of unsigned words, built in one step.

Amaranth checks a memory's initial contents word by word (Const.cast of each int, about 20 us a word); CNV's
weight and threshold memories are 155,598 words, 3 to 4 s of its compile. `rom` checks the whole list at once (ints
in [0, 2**width)) and hands it to the memory's init directly; the memory, its attributes and its Verilog are those
of Memory(shape=unsigned(width), depth=depth, init=words) (tests/hw/test_rom.py).
"""
from __future__ import annotations

from typing import Sequence

from amaranth.hdl import unsigned
from amaranth.lib.memory import Memory

from .memory_style import memory_attrs

__all__ = ["rom"]


def rom(width: int, depth: int, words: Sequence[int], *, style_depth: int | None = None) -> Memory:
    """A Memory of `depth` words of `width` bits holding `words` (the rest 0), with the rom_style attribute of
    memory_attrs(style_depth, default depth)."""
    words = list(words)
    if len(words) > depth:
        raise ValueError(f"{len(words)} ROM words do not fit a depth of {depth}")
    if words and not (all(type(word) is int for word in words) and min(words) >= 0 and max(words) >> width == 0):
        bad = next(word for word in words if type(word) is not int or not 0 <= word < 1 << width)
        raise ValueError(f"ROM word {bad!r} is not an unsigned {width}-bit int")
    memory = Memory(shape=unsigned(width), depth=depth, init=[],
                    attrs=memory_attrs(depth if style_depth is None else style_depth))
    init = memory.init
    # For a plain Shape, Amaranth 0.5's MemoryData.Init keeps the words in _elems (which _raw aliases); the checks
    # above are the ones its __setitem__ makes per word.
    if type(getattr(init, "_elems", None)) is list and init._raw is init._elems and len(init._elems) == depth:
        init._elems[:len(words)] = words
    else:  # another Amaranth: the public, slower way
        init[:len(words)] = words
    return memory
