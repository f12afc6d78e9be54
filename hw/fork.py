"""Fork: one stream to several readers, each with its own back-pressure (a residual block's branch point).

Each reader has its own output valid, a register: a transfer is copied to every reader at once and each takes it
when it is ready, so a stalled reader holds the others back only when the next transfer arrives. The input is
taken when every reader's register is free or being taken this cycle (input ready = AND over the readers of
(not valid or ready)); like the other units, ready does not look at the input valid.

Timing, nothing stalled: a transfer taken at cycle a is at every reader from a + 1 (LATENCY 1), one transfer per
cycle.
"""
from __future__ import annotations

import functools
import operator

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .handshake import FOREVER, PortHandshakeModel
from .parameters import check_positive_int

__all__ = ["Fork", "ForkHandshake"]

LATENCY = 1


class Fork(wiring.Component):
    def __init__(self, *, element, elements: int, readers: int = 2):
        try:
            try:
                element = Shape.cast(element)
            except TypeError as error:
                raise TypeError(f"element must be a shape, not {element!r}") from error
            check_positive_int("elements", elements)
            check_positive_int("readers", readers)
            if readers < 2:
                raise ValueError(f"readers must be at least 2, not {readers}: one reader needs no fork")
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        self._element, self._elements, self._readers = element, elements, readers
        payload = stream.Signature(data.ArrayLayout(element, elements))
        super().__init__({"i_stream": In(payload), "o_streams": Out(payload).array(readers)})

    @property
    def element(self) -> Shape:
        return self._element

    @property
    def elements(self) -> int:
        return self._elements

    @property
    def readers(self) -> int:
        return self._readers

    @property
    def latency(self) -> int:
        return LATENCY

    def handshake_model(self) -> ForkHandshake:
        """A fresh cycle-level model of this unit's valid/ready protocol (hbnn.hw.handshake)."""
        return ForkHandshake(readers=self._readers)

    def elaborate(self, platform) -> Module:
        m = Module()
        source, sinks = self.i_stream, self.o_streams
        held = Signal(self._readers)  # reader k's register holds a transfer it has not taken yet
        payload = Signal.like(source.payload)
        free = [~held[k] | sinks[k].ready for k in range(self._readers)]
        accept = Signal()
        m.d.comb += [source.ready.eq(functools.reduce(operator.and_, free)),
                     accept.eq(source.valid & source.ready)]
        for k, sink in enumerate(sinks):
            m.d.comb += [sink.valid.eq(held[k]), sink.payload.eq(payload)]
            with m.If(accept):
                m.d.sync += held[k].eq(1)
            with m.Elif(sink.ready):
                m.d.sync += held[k].eq(0)
        with m.If(accept):
            m.d.sync += payload.eq(source.payload)
        return m


class ForkHandshake(PortHandshakeModel):
    """Fork.elaborate's control: which readers still hold the current transfer."""

    def __init__(self, *, readers: int):
        self._held = [False] * readers

    @property
    def valids(self) -> tuple[bool, ...]:
        return tuple(self._held)

    def _ready(self, out_readies) -> bool:
        return all(not held or ready for held, ready in zip(self._held, out_readies))

    def readies(self, in_valids, out_readies) -> tuple[bool]:
        return (self._ready(out_readies),)

    def quiet(self, in_valids, out_readies) -> int:
        return FOREVER  # it moves on handshakes only

    def skip(self, cycles: int, in_valids, out_readies) -> None:
        pass

    def clock(self, in_valids, out_readies) -> None:
        accept = in_valids[0] and self._ready(out_readies)
        self._held = [True if accept else held and not ready for held, ready in zip(self._held, out_readies)]
