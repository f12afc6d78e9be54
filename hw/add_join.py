"""Add join: two streams of signed integers added element by element (a residual block's sum).

The addends share one scale (the training side quantizes both to one power-of-two scale before the add), so the
sum is an integer add: signed(max(a, b) + 1) holds every sum of signed(a) and signed(b).

A pair is taken when both inputs are valid and the output register is free or being taken: each input's ready is
the other's valid AND the output free. Unlike the chain's units, an input ready here looks at an input valid (the
other one's), which a stream allows (valid never waits for ready); its cycle model takes the input valids.

Timing, nothing stalled: a pair taken at cycle a leaves from a + 1 (LATENCY 1), one pair per cycle.
"""
from __future__ import annotations

from amaranth.hdl import Module, Shape, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .handshake import FOREVER, PortHandshakeModel
from .parameters import check_positive_int

__all__ = ["AddJoin", "AddJoinHandshake"]

LATENCY = 1


def _signed_shape(name: str, shape) -> Shape:
    try:
        shape = Shape.cast(shape)
    except TypeError as error:
        raise TypeError(f"{name} must be a shape, not {shape!r}") from error
    if not shape.signed or shape.width < 2:
        raise ValueError(f"{name} must be signed(n) with n >= 2, not {shape!r}")
    return shape


class AddJoin(wiring.Component):
    def __init__(self, *, a_element, b_element, elements: int):
        try:
            a_element = _signed_shape("a_element", a_element)
            b_element = _signed_shape("b_element", b_element)
            check_positive_int("elements", elements)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        self._a, self._b, self._elements = a_element, b_element, elements
        self._sum = signed(max(a_element.width, b_element.width) + 1)
        super().__init__({
            "a_stream": In(stream.Signature(data.ArrayLayout(a_element, elements))),
            "b_stream": In(stream.Signature(data.ArrayLayout(b_element, elements))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._sum, elements))),
        })

    @property
    def elements(self) -> int:
        return self._elements

    @property
    def output_element(self) -> Shape:
        return self._sum

    @property
    def latency(self) -> int:
        return LATENCY

    def handshake_model(self) -> AddJoinHandshake:
        """A fresh cycle-level model of this unit's valid/ready protocol (hbnn.hw.handshake)."""
        return AddJoinHandshake()

    def elaborate(self, platform) -> Module:
        m = Module()
        a, b, sink = self.a_stream, self.b_stream, self.o_stream
        free = ~sink.valid | sink.ready
        m.d.comb += [a.ready.eq(b.valid & free), b.ready.eq(a.valid & free)]
        take = a.valid & b.valid & free
        with m.If(sink.valid & sink.ready):
            m.d.sync += sink.valid.eq(0)
        with m.If(take):
            m.d.sync += sink.valid.eq(1)
            m.d.sync += [sink.payload[k].eq(a.payload[k] + b.payload[k]) for k in range(self._elements)]
        return m


class AddJoinHandshake(PortHandshakeModel):
    """AddJoin.elaborate's control: the output register's valid. An input's ready needs the other input's valid."""

    def __init__(self):
        self._valid = False

    @property
    def valids(self) -> tuple[bool]:
        return (self._valid,)

    def readies(self, in_valids, out_readies) -> tuple[bool, bool]:
        free = not self._valid or out_readies[0]
        return in_valids[1] and free, in_valids[0] and free

    def quiet(self, in_valids, out_readies) -> int:
        return FOREVER  # it moves on handshakes only

    def skip(self, cycles: int, in_valids, out_readies) -> None:
        pass

    def clock(self, in_valids, out_readies) -> None:
        take = in_valids[0] and in_valids[1] and (not self._valid or out_readies[0])
        if self._valid and out_readies[0]:
            self._valid = False
        if take:
            self._valid = True
