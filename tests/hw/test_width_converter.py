"""WidthConverter keeps every element in order under back-pressure, and its measured latency equals the stated."""
import math

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

from hbnn.hw.layout import StreamFormat
from hbnn.hw.width_converter import WidthConverter
from hbnn.sim.amaranth_stream import stream_through

CASES = [(4, 1), (1, 4), (8, 2), (2, 8), (6, 4), (4, 6), (5, 3)]


def formats(element_bits, inputs, outputs):
    kind = "signed" if element_bits > 1 else "unsigned"
    return StreamFormat(kind, inputs, element_bits), StreamFormat(kind, outputs, element_bits)


@pytest.mark.parametrize("inputs, outputs", CASES)
@pytest.mark.parametrize("element_bits", [1, 5])
def test_elements_keep_their_order_under_backpressure(inputs, outputs, element_bits):
    rng = np.random.default_rng(inputs * 10 + outputs)
    element = signed(element_bits) if element_bits > 1 else unsigned(1)
    dut = WidthConverter(element=element, inputs=inputs, outputs=outputs)
    in_format, out_format = formats(element_bits, inputs, outputs)
    groups = 9
    low, high = (-(1 << (element_bits - 1)), 1 << (element_bits - 1)) if element_bits > 1 else (0, 2)
    elements = rng.integers(low, high, groups * dut.group)
    out, _, _ = stream_through(dut, elements.reshape(-1, inputs), in_format, out_format,
                               outputs=groups * dut.group // outputs, input_gaps=0.3, output_stalls=0.4, seed=1)
    np.testing.assert_array_equal(out.ravel(), elements)


@pytest.mark.parametrize("inputs, outputs", CASES)
def test_latency_equals_the_component(inputs, outputs):
    dut = WidthConverter(element=unsigned(4), inputs=inputs, outputs=outputs)
    in_format, out_format = formats(4, inputs, outputs)
    elements = np.arange(dut.group) % 8
    _, in_cycles, out_cycles = stream_through(dut, elements.reshape(-1, inputs), in_format, out_format,
                                              outputs=dut.group // outputs)
    assert out_cycles[-1] - in_cycles[0] == dut.latency
    common = math.gcd(inputs, outputs)
    assert dut.latency == dut.group // common + (0 if common in (inputs, outputs) else 1)


def test_equal_counts_pass_straight_through():
    from amaranth.hdl import Value
    from amaranth.sim import Simulator

    dut = WidthConverter(element=unsigned(4), inputs=3, outputs=3)
    assert dut.latency == 0

    async def testbench(ctx):
        ctx.set(Value.cast(dut.i_stream.payload), 0x5A3)
        ctx.set(dut.i_stream.valid, 1)
        ctx.set(dut.o_stream.ready, 1)
        await ctx.delay(1e-9)
        assert ctx.get(Value.cast(dut.o_stream.payload)) == 0x5A3
        assert ctx.get(dut.o_stream.valid) == 1 and ctx.get(dut.i_stream.ready) == 1

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()


def test_bad_counts_are_refused():
    with pytest.raises(TypeError, match="outputs must be a positive integer, not 0"):
        WidthConverter(element=unsigned(1), inputs=2, outputs=0)
