"""Zero transfers between images in a stream: dropped on the way in, added on the way out.

A DMA frame pads each image to whole words (hbnn.hw.dma_layout); the accelerator's stream has no padding. Both
components count transfers and repeat every `keep + pad` of them. They are wires with a counter: valid and ready
pass through combinationally (the width converters beside them register), so they add no cycle.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .parameters import check_positive_int

__all__ = ["DropPadding", "AppendPadding"]


class _FramePadding(wiring.Component):
    def __init__(self, payload, *, keep: int, pad: int):
        try:
            check_positive_int("keep", keep)
            check_positive_int("pad", pad)
        except TypeError:
            self._MustUse__silence = True
            raise
        self._keep, self._pad = keep, pad
        super().__init__({"i_stream": In(stream.Signature(payload)), "o_stream": Out(stream.Signature(payload))})

    def _position(self, m: Module, advance) -> Signal:
        """Transfers since the frame began, 0..keep+pad-1, counted on `advance`."""
        position = Signal(range(self._keep + self._pad))
        with m.If(advance):
            m.d.sync += position.eq(Mux(position == self._keep + self._pad - 1, 0, position + 1))
        return position


class DropPadding(_FramePadding):
    """Passes `keep` transfers, then takes and discards `pad`, and so on."""

    def elaborate(self, platform) -> Module:
        m = Module()
        source, sink = self.i_stream, self.o_stream
        position = self._position(m, source.valid & source.ready)
        padding = position >= self._keep
        m.d.comb += [
            sink.payload.eq(source.payload),
            sink.valid.eq(source.valid & ~padding),
            source.ready.eq(sink.ready | padding),
        ]
        return m


class AppendPadding(_FramePadding):
    """Passes `keep` transfers, then offers `pad` all-zero transfers, and so on."""

    def elaborate(self, platform) -> Module:
        m = Module()
        source, sink = self.i_stream, self.o_stream
        position = self._position(m, sink.valid & sink.ready)
        padding = position >= self._keep
        m.d.comb += [
            sink.payload.as_value().eq(Mux(padding, 0, source.payload.as_value())),
            sink.valid.eq(source.valid | padding),
            source.ready.eq(sink.ready & ~padding),
        ]
        return m
