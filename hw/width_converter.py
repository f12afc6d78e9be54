"""Stream width converter: the same elements, regrouped from `inputs` per transfer to `outputs` per transfer.

Layers chain with different parallelism: an MVU (or its threshold unit) produces PE elements per transfer and the
next one takes SIMD. When one count divides the other the converter splits each wide transfer over k cycles, or
gathers k narrow ones into one; otherwise it splits down to their greatest common divisor, then gathers (FINN's
StreamingDataWidthConverter does the same). Element order is kept: element 0 of the first transfer comes first.

Timing: see `latency`. A splitter emits one output transfer per cycle, a gatherer takes one input transfer per
cycle; a full output register that is not taken stalls the input.
"""
from __future__ import annotations

import math

from amaranth.hdl import Cat, Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .handshake import FOREVER, Chained, HandshakeModel, PassThrough
from .parameters import check_positive_int

__all__ = ["WidthConverter", "SplitHandshake", "GatherHandshake"]


class WidthConverter(wiring.Component):
    def __init__(self, *, element, inputs: int, outputs: int):
        try:
            check_positive_int("inputs", inputs)
            check_positive_int("outputs", outputs)
        except TypeError:
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        self._element = Shape.cast(element)
        self._inputs, self._outputs = inputs, outputs
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self._element, inputs))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._element, outputs))),
        })

    @property
    def group(self) -> int:
        """Elements after which input and output transfers line up again: lcm(inputs, outputs)."""
        return math.lcm(self._inputs, self._outputs)

    @property
    def latency(self) -> int:
        """Cycles from a group's first input handshake to its last output handshake, nothing stalled: the group's
        elements leave in lcm/gcd steps after a one-cycle register, plus one more stage in the general case."""
        if self._inputs == self._outputs:
            return 0
        common = math.gcd(self._inputs, self._outputs)
        steps = self.group // common
        return steps if common in (self._inputs, self._outputs) else steps + 1

    def handshake_model(self) -> HandshakeModel:
        """A fresh cycle-level model of this converter's valid/ready protocol (hbnn.hw.handshake), in the same
        three cases as elaborate. Equal counts are wires: a PassThrough, which a chain drops."""
        common = math.gcd(self._inputs, self._outputs)
        if self._inputs == self._outputs:
            return PassThrough()
        if common == self._outputs:
            return SplitHandshake(parts=self._inputs // self._outputs)
        if common == self._inputs:
            return GatherHandshake(parts=self._outputs // self._inputs)
        return Chained([SplitHandshake(parts=self._inputs // common), GatherHandshake(parts=self._outputs // common)])

    def elaborate(self, platform) -> Module:
        m = Module()
        common = math.gcd(self._inputs, self._outputs)
        if self._inputs == self._outputs:
            wiring.connect(m, wiring.flipped(self.i_stream), wiring.flipped(self.o_stream))
        elif common == self._outputs:
            self._split(m, self.i_stream, self.o_stream, self._inputs // self._outputs)
        elif common == self._inputs:
            self._gather(m, self.i_stream, self.o_stream, self._outputs // self._inputs)
        else:
            m.submodules.split = split = WidthConverter(element=self._element, inputs=self._inputs, outputs=common)
            m.submodules.gather = gather = WidthConverter(element=self._element, inputs=common,
                                                          outputs=self._outputs)
            wiring.connect(m, wiring.flipped(self.i_stream), split.i_stream)
            wiring.connect(m, split.o_stream, gather.i_stream)
            wiring.connect(m, gather.o_stream, wiring.flipped(self.o_stream))
        return m

    def _split(self, m: Module, source, sink, parts: int) -> None:
        part_bits = sink.payload.shape().size
        held = Signal(source.payload.shape().size)
        part = Signal(range(parts))
        last = part == parts - 1
        m.d.comb += [
            sink.payload.as_value().eq(held.word_select(part, part_bits)),
            source.ready.eq(~sink.valid | (sink.ready & last)),
        ]
        with m.If(sink.valid & sink.ready):
            m.d.sync += part.eq(part + 1)
            with m.If(last):
                m.d.sync += [part.eq(0), sink.valid.eq(0)]
        with m.If(source.valid & source.ready):
            m.d.sync += [held.eq(source.payload.as_value()), part.eq(0), sink.valid.eq(1)]

    def _gather(self, m: Module, source, sink, parts: int) -> None:
        part_bits = source.payload.shape().size
        held = [Signal(part_bits, name=f"part{index}") for index in range(parts - 1)]
        count = Signal(range(parts))
        completing = count == parts - 1
        m.d.comb += source.ready.eq(~completing | ~sink.valid | sink.ready)
        with m.If(sink.valid & sink.ready):
            m.d.sync += sink.valid.eq(0)
        with m.If(source.valid & source.ready):
            with m.If(completing):
                m.d.sync += [sink.payload.as_value().eq(Cat(*held, source.payload.as_value())),
                             sink.valid.eq(1), count.eq(0)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
                for index, slot in enumerate(held):
                    with m.If(count == index):
                        m.d.sync += slot.eq(source.payload.as_value())


class SplitHandshake(HandshakeModel):
    """WidthConverter._split's control: which part of the held transfer is out, and the output valid. The next
    input is taken as the last part leaves."""

    def __init__(self, *, parts: int):
        self._parts = parts
        self._part = 0
        self.valid = False

    def ready(self, out_ready: bool) -> bool:
        return not self.valid or (out_ready and self._part == self._parts - 1)

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        return FOREVER  # it moves on handshakes only

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        pass

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        taken = in_valid and self.ready(out_ready)
        if self.valid and out_ready:
            if self._part == self._parts - 1:
                self._part, self.valid = 0, False
            else:
                self._part += 1
        if taken:
            self._part, self.valid = 0, True


class GatherHandshake(HandshakeModel):
    """WidthConverter._gather's control: how many parts are held, and the output valid. Only the completing part
    waits for the output register."""

    def __init__(self, *, parts: int):
        self._parts = parts
        self._count = 0
        self.valid = False

    def ready(self, out_ready: bool) -> bool:
        return self._count != self._parts - 1 or not self.valid or out_ready

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        return FOREVER  # it moves on handshakes only

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        pass

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        taken = in_valid and self.ready(out_ready)
        if self.valid and out_ready:
            self.valid = False
        if taken:
            if self._count == self._parts - 1:
                self._count, self.valid = 0, True
            else:
                self._count += 1
