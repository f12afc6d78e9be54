"""ROMs split in depth: the splitting rule, reads against the contents in Amaranth's simulator, and Yosys' block RAM
count equal to the estimate."""
import random

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hbnn.hw.memory_style import LUT_DEPTH, block_ram36, memory_block_ram36, rom_segments
from hbnn.hw.segmented_rom import add_rom
from hbnn.hw.synthesis import synthesize


def test_a_depth_just_past_a_power_of_two_splits_where_that_saves_block_ram():
    assert rom_segments(18432, 128) == (16384, 2048)
    assert memory_block_ram36(18432, 128) == 64 + 7.5 < block_ram36(18432, 128) == 128
    assert rom_segments(4608, 128) == (4096, 512)
    assert memory_block_ram36(4608, 128, writable=True) == block_ram36(4608, 128)  # RAMs stay whole
    for depth, width in [(1024, 36), (512, 72), (2048, 9), (LUT_DEPTH, 500), (100, 8)]:
        assert rom_segments(depth, width) == (depth,)  # exact fits and shallow ROMs
    assert memory_block_ram36(LUT_DEPTH, 500) == 0.0


@pytest.mark.parametrize("depth", [65, 513, 600, 1000, 4100, 4608, 9000, 18432, 40000])
@pytest.mark.parametrize("width", [1, 8, 64, 768])
def test_segments_cover_the_depth_cheaper_than_the_whole(depth, width):
    segments = rom_segments(depth, width)
    assert sum(segments) == depth and 1 <= len(segments) <= 3
    assert all(segment > LUT_DEPTH for segment in segments)  # every segment in block RAM
    heads = segments[:-1]
    assert all(head & (head - 1) == 0 and head >= 512 for head in heads) and list(heads) == sorted(heads)[::-1]
    assert memory_block_ram36(depth, width) <= block_ram36(depth, width)
    if len(segments) > 1:
        assert memory_block_ram36(depth, width) < block_ram36(depth, width)


class Rom(wiring.Component):
    def __init__(self, width, init):
        self._width, self._init = width, init
        super().__init__({"addr": In(range(len(init))), "en": In(1), "data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        port = add_rom(m, "rom", width=self._width, init=self._init, depth=len(self._init))
        m.d.comb += [port.addr.eq(self.addr), port.en.eq(self.en), self.data.eq(port.data)]
        return m


@pytest.mark.parametrize("depth, width", [(4608, 16), (600, 8), (300, 8)])
def test_reads_return_the_word_one_cycle_later_and_hold_while_disabled(depth, width):
    rng = random.Random(depth)
    init = [rng.getrandbits(width) for _ in range(depth)]
    dut = Rom(width, init)
    boundaries = [sum(rom_segments(depth, width)[:k]) for k in range(1, 4)]
    addresses = [a for b in boundaries for a in (b - 1, b, b + 1) if 0 <= a < depth] + [0, depth - 1]
    addresses += [rng.randrange(depth) for _ in range(200)]

    async def check(ctx):
        expected = None
        for address in addresses:
            enable = rng.random() < 0.8
            ctx.set(dut.addr, address)
            ctx.set(dut.en, enable)
            await ctx.tick()
            if enable:
                expected = init[address]
            if expected is not None:
                assert ctx.get(dut.data) == expected, address

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(check)
    sim.run()


def test_yosys_maps_a_split_rom_to_the_estimated_block_ram(tmp_path):
    depth, width = 4608, 64
    rng = random.Random(0)
    dut = Rom(width, [rng.getrandbits(width) for _ in range(depth)])
    path = tmp_path / "rom.v"
    path.write_text(verilog.convert(dut, name="rom", emit_src=False))
    resources = synthesize(path, "rom", "xc7")
    assert rom_segments(depth, width) == (4096, 512)
    assert resources.bram36 == memory_block_ram36(depth, width) < block_ram36(depth, width), resources.cells
