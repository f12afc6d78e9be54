"""The popcount adder tree against Python's bit count."""
import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hbnn.hw.popcount import popcount


@pytest.mark.parametrize("width", [1, 2, 5, 6, 7, 12, 13, 64, 100])
def test_counts_set_bits(width):
    m = Module()
    bits = Signal(width)
    count = Signal(width.bit_length())
    m.d.comb += count.eq(popcount(bits))
    rng = random.Random(width)
    values = [0, (1 << width) - 1] + [rng.getrandbits(width) for _ in range(60)]

    async def check(ctx):
        for value in values:
            ctx.set(bits, value)
            assert ctx.get(count) == bin(value).count("1"), value

    sim = Simulator(m)
    sim.add_testbench(check)
    sim.run()
