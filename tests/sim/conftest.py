"""Small streaming designs that exercise the co-simulation engines beyond the MLP: frames of many transfers,
payloads of every width class Verilator uses (8/16/32/64 bits and wide words), and a design that stops producing."""
import pathlib

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from hbnn.hw.layout import StreamFormat
from hbnn.sim.design import Design


class TripleSum(wiring.Component):
    """Sums every three consecutive transfers element-wise: an image of 6 transfers in gives 2 transfers out.

    Timing: the sum of a triple leaves in the cycle after its third input, so an image streaming undisturbed takes
    6 cycles from its first input to its last output, and images follow each other every 6 cycles.
    """
    IN_PER_IMAGE, OUT_PER_IMAGE, LATENCY, INTERVAL = 6, 2, 6, 6

    def __init__(self, elements: int):
        self.elements = elements
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(unsigned(8), elements))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(unsigned(10), elements))),
        })

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(3))
        sums = [Signal(10, name=f"sum{i}") for i in range(self.elements)]
        completing = count == 2
        m.d.comb += self.i_stream.ready.eq(~completing | ~self.o_stream.valid | self.o_stream.ready)
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += count.eq(Mux(completing, 0, count + 1))
            for i, total in enumerate(sums):
                new = Mux(count == 0, 0, total) + self.i_stream.payload[i]
                m.d.sync += total.eq(new)
                with m.If(completing):
                    m.d.sync += self.o_stream.payload[i].eq(new)
            with m.If(completing):
                m.d.sync += self.o_stream.valid.eq(1)
        return m


class StopsAfter(wiring.Component):
    """Forwards its first `limit` transfers through a 4-deep FIFO, then never offers another: a deadlock."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__({"i_stream": In(stream.Signature(unsigned(8))),
                          "o_stream": Out(stream.Signature(unsigned(8)))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=8, depth=4)
        sent = Signal(range(self.limit + 1))
        open_ = sent < self.limit
        m.d.comb += [
            queue.w_data.eq(self.i_stream.payload), queue.w_en.eq(self.i_stream.valid),
            self.i_stream.ready.eq(queue.w_rdy),
            self.o_stream.payload.eq(queue.r_data), self.o_stream.valid.eq(queue.r_rdy & open_),
            queue.r_en.eq(self.o_stream.ready & open_),
        ]
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += sent.eq(sent + 1)
        return m


def make_design(component, directory: pathlib.Path, input: StreamFormat, output: StreamFormat, latency: int,
                interval: int) -> Design:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hbnn_top.v"
    path.write_text(verilog.convert(component, name="hbnn_top", emit_src=False))
    return Design(path, "hbnn_top", input, output, latency, interval, directory / "sim", str(directory))


@pytest.fixture(scope="session")
def triple_sum(tmp_path_factory):
    """TripleSum designs keyed by element count: 1 (8-bit payload), 2 (16), 7 (56-bit in, 70-bit out), 30."""
    designs = {}

    def get(elements: int) -> Design:
        if elements not in designs:
            designs[elements] = make_design(
                TripleSum(elements), tmp_path_factory.mktemp(f"triple{elements}"),
                StreamFormat("unsigned", elements, 8, TripleSum.IN_PER_IMAGE),
                StreamFormat("unsigned", elements, 10, TripleSum.OUT_PER_IMAGE), TripleSum.LATENCY,
                TripleSum.INTERVAL)
        return designs[elements]
    return get


@pytest.fixture(scope="session")
def stops_after_five(tmp_path_factory) -> Design:
    return make_design(StopsAfter(5), tmp_path_factory.mktemp("stops"), StreamFormat("unsigned", 1, 8),
                       StreamFormat("unsigned", 1, 8), latency=2, interval=1)
