"""Streams transfers through an Amaranth component in Amaranth's own simulator, with random gaps and stalls: the
component tests' bench (the build-level engines are in design.py)."""
from __future__ import annotations

import numpy as np
from amaranth.hdl import ClockDomain, Module, Value
from amaranth.sim import Simulator

from ..hw.layout import StreamFormat

__all__ = ["stream_through", "stream_patterns", "ports_patterns"]


def stream_through(dut, transfers, input_format: StreamFormat, output_format: StreamFormat, *, outputs: int,
                   input_gaps: float = 0.0, output_stalls: float = 0.0, seed: int = 0):
    """Offers each row of `transfers` (elements) on dut.i_stream, takes `outputs` transfers from dut.o_stream.

    Returns (output elements (outputs, elements), input handshake cycles, output handshake cycles).
    """
    rng = np.random.default_rng(seed)
    received, in_cycles, out_cycles = [], [], []

    async def producer(ctx):
        for row in transfers:
            while rng.random() < input_gaps:
                await ctx.tick()
            ctx.set(Value.cast(dut.i_stream.payload), input_format.to_int(row))
            ctx.set(dut.i_stream.valid, 1)
            await ctx.tick().until(dut.i_stream.ready)
            ctx.set(dut.i_stream.valid, 0)

    async def consumer(ctx):
        while len(received) < outputs:
            ctx.set(dut.o_stream.ready, int(rng.random() >= output_stalls))
            _, _, valid, ready, payload = await ctx.tick().sample(dut.o_stream.valid, dut.o_stream.ready,
                                                               Value.cast(dut.o_stream.payload))
            if valid and ready:
                received.append(output_format.from_int(payload))

    async def monitor(ctx):
        cycle = 0
        async for _, _, iv, ir, ov, orr in ctx.tick().sample(dut.i_stream.valid, dut.i_stream.ready,
                                                             dut.o_stream.valid, dut.o_stream.ready):
            if iv and ir:
                in_cycles.append(cycle)
            if ov and orr:
                out_cycles.append(cycle)
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_testbench(monitor, background=True)
    sim.run()
    return np.array(received).reshape(len(received), output_format.elements), in_cycles, out_cycles


def stream_patterns(dut, payloads, in_pattern, out_pattern, *, outputs: int, probe=None):
    """Per cycle: i_stream.valid = in_pattern[cycle] while payloads are left (valid may drop without a handshake),
    o_stream.ready = out_pattern[cycle]; stops after `outputs` output handshakes or at the patterns' end. The
    handshake-model tests feed the same patterns to a component's model. `probe(ctx)` runs each cycle after the
    signals are set. Returns (input handshake cycles, output handshake cycles, output payloads as integers)."""
    m = Module()
    m.domains.sync = ClockDomain()  # a pass-through converter has no clocked logic of its own
    m.submodules.dut = dut
    ins, outs, received = [], [], []

    async def testbench(ctx):
        for cycle in range(len(in_pattern)):
            valid = len(ins) < len(payloads) and bool(in_pattern[cycle])
            ctx.set(dut.i_stream.valid, valid)
            if valid:
                ctx.set(Value.cast(dut.i_stream.payload), payloads[len(ins)])
            ctx.set(dut.o_stream.ready, bool(out_pattern[cycle]))
            if probe is not None:
                probe(ctx)
            if valid and ctx.get(dut.i_stream.ready):
                ins.append(cycle)
            if out_pattern[cycle] and ctx.get(dut.o_stream.valid):
                outs.append(cycle)
                received.append(ctx.get(Value.cast(dut.o_stream.payload)))
                if len(outs) == outputs:
                    return
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return ins, outs, received


def handshake_twins(dut, transfers: int, outputs: int, in_pattern, out_pattern, *, seed: int = 0):
    """The component in Amaranth's simulator and its handshake model (dut.handshake_model()), fed the same per-cycle
    valid/ready patterns with `transfers` random payloads: ((input cycles, output cycles) measured, the same
    modelled). The component tests assert the two equal and that every output arrived."""
    from ..hw.handshake import schedule

    rng = np.random.default_rng(seed)
    bits = Value.cast(dut.i_stream.payload).shape().width
    payloads = [int(word) for word in rng.integers(0, 1 << min(bits, 62), transfers)]
    ins, outs, _ = stream_patterns(dut, payloads, in_pattern, out_pattern, outputs=outputs)
    modelled = schedule([dut.handshake_model()], transfers, len(in_pattern), input_valid=in_pattern.__getitem__,
                        output_ready=out_pattern.__getitem__, outputs=outputs)
    return (ins, outs), (list(modelled.inputs), list(modelled.outputs))


def ports_patterns(dut, sources: dict, sinks: dict, cycles: int):
    """stream_patterns for a component with several streams (a fork, a join). sources: {stream: (payloads,
    per-cycle valid pattern)}, sinks: {stream: per-cycle ready pattern}; streams are the dut's stream interfaces
    (e.g. dut.o_streams[1]). Runs `cycles` cycles. Returns (input handshake cycles per source, output
    handshake cycles per sink, payloads as integers per sink), in the dicts' order."""
    m = Module()
    m.submodules.dut = dut
    sources, sinks = list(sources.items()), list(sinks.items())
    taken = [[] for _ in sources]
    given = [[] for _ in sinks]
    received = [[] for _ in sinks]

    async def testbench(ctx):
        for cycle in range(cycles):
            offered = []
            for index, (port, (payloads, pattern)) in enumerate(sources):
                valid = len(taken[index]) < len(payloads) and bool(pattern[cycle])
                ctx.set(port.valid, valid)
                if valid:
                    ctx.set(Value.cast(port.payload), payloads[len(taken[index])])
                offered.append(valid)
            for port, pattern in sinks:
                ctx.set(port.ready, bool(pattern[cycle]))
            for index, (port, _) in enumerate(sources):
                if offered[index] and ctx.get(port.ready):
                    taken[index].append(cycle)
            for index, (port, pattern) in enumerate(sinks):
                if pattern[cycle] and ctx.get(port.valid):
                    given[index].append(cycle)
                    received[index].append(ctx.get(Value.cast(port.payload)))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return taken, given, received
