"""Read-only memories split in depth into block-RAM segments (hbnn.hw.memory_style.rom_segments), read like one.

`add_rom` adds a ROM to a module and returns something read like an amaranth.lib.memory read port (addr, en,
data; data one cycle after the address, held while en is low). A ROM that does not split is that Memory and its
port, the same Verilog as before segmenting existed. A split one reads every segment with the address's low bits
and registers which segment the address fell in with the read, so the output mux switches with the data.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Mux, Signal, unsigned
from amaranth.hdl import Value
from amaranth.lib.memory import Memory

from .memory_style import memory_attrs, rom_segments

__all__ = ["RomPort", "add_rom"]


@dataclass(frozen=True)
class RomPort:
    addr: Value
    en: Value
    data: Value


def add_rom(m: Module, name: str, *, width: int, init: list[int], depth: int) -> RomPort:
    """A ROM of `depth` words (at least two: a one-word memory has a zero-width address, [-1:0] in Verilog)."""
    depth = max(depth, 2)
    segments = rom_segments(depth, width)
    if len(segments) == 1:
        m.submodules[name] = memory = Memory(shape=unsigned(width), depth=depth, init=init,
                                             attrs=memory_attrs(depth))
        port = memory.read_port()
        return RomPort(port.addr, port.en, port.data)
    addr, en = Signal(range(depth), name=f"{name}_addr"), Signal(name=f"{name}_en")
    data = Signal(width, name=f"{name}_data")
    starts = [sum(segments[:index]) for index in range(len(segments))]
    selected = Signal(range(len(segments)), name=f"{name}_segment")  # the segment of the address read last
    with m.If(en):
        m.d.sync += selected.eq(sum(addr >= start for start in starts[1:]))
    outputs = []
    for index, (start, segment_depth) in enumerate(zip(starts, segments)):
        memory = Memory(shape=unsigned(width), depth=segment_depth, init=init[start:start + segment_depth],
                        attrs=memory_attrs(segment_depth))
        m.submodules[f"{name}_segment{index}"] = memory
        port = memory.read_port()
        # Each start is a multiple of a power of two at least as deep as its segment (rom_segments' heads shrink),
        # so the offset address is the address's low bits.
        assert start % (1 << len(port.addr)) == 0, (start, segment_depth)
        m.d.comb += [port.en.eq(en), port.addr.eq(addr[:len(port.addr)])]
        outputs.append(port.data)
    selected_data = outputs[-1]
    for index in reversed(range(len(outputs) - 1)):
        selected_data = Mux(selected == index, outputs[index], selected_data)
    m.d.comb += data.eq(selected_data)
    return RomPort(addr, en, data)
