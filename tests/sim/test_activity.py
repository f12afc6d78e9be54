"""Switching activity read back from Verilator's SAIF: a register fed alternating bytes toggles every bit every
cycle, one fed a constant never does, and the counts land on the instance that holds the register."""
import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hbnn.hw.layout import StreamFormat
from hbnn.sim.activity import read_saif
from hbnn.sim.design import Design
from hbnn.sim.verilator_engine import Activity


class Register(wiring.Component):
    """o_stream.payload <= i_stream.payload, one transfer per cycle (always ready)."""
    i_stream: In(stream.Signature(unsigned(8)))
    o_stream: Out(stream.Signature(unsigned(8)))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i_stream.ready.eq(1)
        m.d.sync += [self.o_stream.payload.eq(self.i_stream.payload), self.o_stream.valid.eq(self.i_stream.valid)]
        return m


class Top(wiring.Component):
    i_stream: In(stream.Signature(unsigned(8)))
    o_stream: Out(stream.Signature(unsigned(8)))

    def elaborate(self, platform):
        m = Module()
        m.submodules.stage0 = stage = Register()
        wiring.connect(m, wiring.flipped(self.i_stream), stage.i_stream)
        wiring.connect(m, stage.o_stream, wiring.flipped(self.o_stream))
        return m


def run_activity(tmp_path, values):
    (tmp_path / "hbnn_top.v").write_text(verilog.convert(Top(), name="hbnn_top", emit_src=False))
    fmt = StreamFormat("unsigned", 1, 8, 1)
    design = Design(tmp_path / "hbnn_top.v", "hbnn_top", fmt, fmt, 1, 1, tmp_path / "sim", "register")
    stimulus = design.stimulus(np.asarray(values).reshape(-1, 1, 1))
    run = design.run(stimulus, name="activity", activity=Activity(tmp_path / "a.saif", 4, 32))
    first, last = run.activity_cycles
    return read_saif(tmp_path / "a.saif"), last - first


def test_alternating_bytes_toggle_every_bit_every_cycle(tmp_path):
    saif, cycles = run_activity(tmp_path, [0x00, 0xFF] * 30)
    assert cycles == 32 and saif.duration == 10 * cycles
    register = saif.instances["hbnn_top/hbnn_top/stage0"]
    # The 8 payload bits of the register and of its output port each toggle once a cycle; valid stays high.
    payload = [name for name in saif.instances if name.endswith("stage0")]
    assert payload and register.toggles >= 16 * cycles
    assert saif.subtree("hbnn_top/hbnn_top/stage0").rate(cycles) > 0.5


def test_a_constant_input_leaves_the_register_still(tmp_path):
    saif, cycles = run_activity(tmp_path, [0x5A] * 60)
    assert saif.subtree("hbnn_top/hbnn_top/stage0").toggles == 0
