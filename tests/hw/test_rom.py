"""hbnn.hw.rom: the same memory and Verilog as Amaranth's Memory with init=words, built without its per-word
checks; bad words refused by name."""
import random

import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hbnn.hw.memory_style import memory_attrs
from hbnn.hw.rom import rom
from hbnn.hw.verilog_export import to_verilog


class _Reader(wiring.Component):
    def __init__(self, memory: Memory):
        self._memory = memory
        super().__init__({"addr": In(range(memory.depth)), "data": Out(memory.shape)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = self._memory
        port = self._memory.read_port()
        m.d.comb += [port.addr.eq(self.addr), self.data.eq(port.data)]
        return m


@pytest.mark.parametrize("width, depth, count", [(1, 2, 1), (7, 5, 5), (37, 100, 64), (256, 3, 0)])
def test_rom_is_the_memory_amaranth_builds_from_the_same_words(width, depth, count):
    words = [random.Random(width * depth).randrange(1 << width) for _ in range(count)]
    fast = rom(width, depth, words)
    slow = Memory(shape=unsigned(width), depth=depth, init=words, attrs=memory_attrs(depth))
    assert list(fast.init) == list(slow.init) == words + [0] * (depth - count)
    assert fast.attrs == slow.attrs
    assert to_verilog(_Reader(fast), name="top") == to_verilog(_Reader(slow), name="top")


def test_rom_takes_its_style_from_the_depth_it_is_told():
    memory = rom(4, 2, [1], style_depth=100)
    memory._MustUse__silence = True  # not elaborated
    assert memory.attrs == memory_attrs(100)


@pytest.mark.parametrize("words, bad", [([1, 16], "16"), ([-1], "-1"), ([True], "True"), ([2.0], "2.0")])
def test_rom_refuses_words_that_are_not_unsigned_ints_of_its_width(words, bad):
    with pytest.raises(ValueError, match=f"ROM word {bad} is not an unsigned 4-bit int"):
        rom(4, 8, words)


def test_rom_refuses_more_words_than_its_depth():
    with pytest.raises(ValueError, match="3 ROM words do not fit a depth of 2"):
        rom(4, 2, [0, 1, 2])
