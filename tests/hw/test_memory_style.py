"""Deep memories go to block RAM, shallow ones to LUTs: the rule, and what Yosys makes of it."""
import numpy as np
import pytest
from amaranth.back import verilog

from hbnn.hw.memory_style import LUT_DEPTH, memory_attrs, memory_style
from hbnn.hw.mvau import Mvau
from hbnn.hw.synthesis import synthesize


def test_the_rule():
    assert memory_style(LUT_DEPTH) == "logic" and memory_style(LUT_DEPTH + 1) == "block"
    assert memory_style(8, writable=True) == "distributed"
    assert memory_attrs(200) == {"rom_style": "block"}
    assert memory_attrs(4, writable=True) == {"ram_style": "distributed"}


@pytest.mark.parametrize("pe, in_block_ram", [(1, True), (4, False)])  # weight memory 128 or 32 words deep
def test_yosys_follows_it(tmp_path, pe, in_block_ram):
    weights = np.where(np.random.default_rng(0).random((128, 64)) < 0.5, 1, -1)
    dut = Mvau(weights=weights, weight_kind="binary", input_kind="bipolar", pe=pe, simd=64)
    path = tmp_path / "mvau.v"
    path.write_text(verilog.convert(dut, name="mvau", emit_src=False))
    resources = synthesize(path, "mvau", "xc7")
    assert (resources.bram36 > 0) == in_block_ram, resources.cells
    if not in_block_ram:
        assert resources.luts >= pe * 64  # one LUT per weight bit of a word, at least


def test_a_depth_just_past_a_power_of_two_is_counted_split():
    from hbnn.hw.memory_style import block_ram36, memory_block_ram36, rom_segments

    assert rom_segments(18432, 128) == (16384, 2048)
    assert memory_block_ram36(18432, 128) == 64 + 7.5 < block_ram36(18432, 128) == 128
    assert rom_segments(4608, 64) == (4096, 512) and memory_block_ram36(4608, 64) == 8.5
    assert memory_block_ram36(4608, 64, writable=True) == block_ram36(4608, 64) == 16  # RAMs counted whole
    for depth, width in [(1024, 36), (512, 72), (2048, 9), (LUT_DEPTH, 500), (100, 8)]:
        assert rom_segments(depth, width) == (depth,)  # exact fits and shallow ROMs
    assert memory_block_ram36(LUT_DEPTH, 500) == 0.0


@pytest.mark.parametrize("depth", [65, 513, 600, 1000, 4100, 4608, 9000, 18432, 40000])
@pytest.mark.parametrize("width", [1, 8, 64, 768])
def test_a_split_covers_the_depth_and_never_counts_more_than_the_whole(depth, width):
    from hbnn.hw.memory_style import block_ram36, memory_block_ram36, rom_segments

    segments = rom_segments(depth, width)
    assert sum(segments) == depth and 1 <= len(segments) <= 3
    assert all(segment > LUT_DEPTH for segment in segments)
    heads = segments[:-1]
    assert all(head & (head - 1) == 0 and head >= 512 for head in heads) and list(heads) == sorted(heads)[::-1]
    assert memory_block_ram36(depth, width) <= block_ram36(depth, width)
    if len(segments) > 1:
        assert memory_block_ram36(depth, width) < block_ram36(depth, width)


def test_yosys_splits_a_deep_rom_at_least_as_well_as_the_estimate_counts(tmp_path):
    """4,608 x 64 bits: one 8K x 4 shape would take 16 BRAM36; the estimate counts 4,096 + 512 words, 8.5; Yosys
    maps the single memory to 8 (measured 2026-12-03). The estimate may overcount by half a block, never under."""
    from amaranth.hdl import Module, unsigned
    from amaranth.lib import wiring
    from amaranth.lib.memory import Memory
    from amaranth.lib.wiring import In, Out

    from hbnn.hw.memory_style import block_ram36, memory_block_ram36

    depth, width = 4608, 64
    rng = np.random.default_rng(0)
    init = [int(word) for word in rng.integers(0, 1 << 62, depth)]

    class Rom(wiring.Component):
        addr: In(range(depth))
        en: In(1)
        data: Out(width)

        def elaborate(self, platform):
            m = Module()
            m.submodules.rom = rom = Memory(shape=unsigned(width), depth=depth, init=init, attrs=memory_attrs(depth))
            port = rom.read_port()
            m.d.comb += [port.addr.eq(self.addr), port.en.eq(self.en), self.data.eq(port.data)]
            return m

    path = tmp_path / "rom.v"
    path.write_text(verilog.convert(Rom(), name="rom", emit_src=False))
    resources = synthesize(path, "rom", "xc7")
    assert memory_block_ram36(depth, width) - 0.5 <= resources.bram36 <= memory_block_ram36(depth, width)
    assert memory_block_ram36(depth, width) < block_ram36(depth, width)
