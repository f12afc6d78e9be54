"""Channel pad: each pixel's channels with `before` and `after` constant channels around them (the parameter-free
"option A" shortcut of the CIFAR ResNets, which zero-pads the channels a stage adds).

Pixels arrive channels fastest, SIMD channels per transfer (SIMD divides before, the channels and after). Per pixel
the unit emits before/SIMD transfers of the pad element, the pixel's channels/SIMD transfers as they come, then
after/SIMD pad transfers. The output register is loaded when it is free or being taken: with a pad transfer at a
pad position, with the input's transfer at a pass position, where the input is ready (so ready looks only at the
position and the output, not at the input valid).

Timing, nothing stalled: a transfer taken at cycle a leaves at a + 1 (LATENCY 1); one output transfer per cycle,
(before + channels + after) / SIMD cycles per pixel.
"""
from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .handshake import FOREVER, HandshakeModel
from .parameters import check_positive_int

__all__ = ["ChannelPad", "ChannelPadHandshake"]

LATENCY = 1


class ChannelPad(wiring.Component):
    def __init__(self, *, element, channels: int, before: int, after: int, simd: int, pixels: int,
                 pad_value: int = 0):
        try:
            try:
                element = Shape.cast(element)
            except TypeError as error:
                raise TypeError(f"element must be a shape, not {element!r}") from error
            for name, value in (("channels", channels), ("simd", simd), ("pixels", pixels)):
                check_positive_int(name, value)
            for name, value in (("before", before), ("after", after)):
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise TypeError(f"{name} must be a non-negative integer, not {value!r}")
            if channels % simd or before % simd or after % simd:
                raise ValueError(f"simd={simd} must divide before ({before}), the channels ({channels}) and after "
                                 f"({after})")
            low, high = (-(1 << (element.width - 1)), (1 << (element.width - 1)) - 1) if element.signed \
                else (0, (1 << element.width) - 1)
            if not low <= pad_value <= high:
                raise ValueError(f"pad_value {pad_value} does not fit {element!r}")
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        self._element, self._channels, self._simd, self._pixels = element, channels, simd, pixels
        self._before, self._after, self._pad_value = before, after, pad_value
        payload = stream.Signature(data.ArrayLayout(element, simd))
        super().__init__({"i_stream": In(payload), "o_stream": Out(payload)})

    @property
    def latency(self) -> int:
        return LATENCY

    @property
    def pixel_transfers(self) -> tuple[int, int, int]:
        """(pad, pass, pad) output transfers of one pixel."""
        return self._before // self._simd, self._channels // self._simd, self._after // self._simd

    @property
    def interval(self) -> int:
        return self._pixels * sum(self.pixel_transfers)

    @property
    def transfers(self) -> tuple[int, int]:
        """(input, output) transfers per image."""
        return self._pixels * self.pixel_transfers[1], self.interval

    def handshake_model(self) -> ChannelPadHandshake:
        return ChannelPadHandshake(*self.pixel_transfers)

    def elaborate(self, platform) -> Module:
        m = Module()
        head, middle, tail = self.pixel_transfers
        total = head + middle + tail
        position = Signal(range(total))
        passing = Signal()
        free = Signal()
        load = Signal()
        pad = self._pad_value & ((1 << self._element.width) - 1)
        pad_word = sum(pad << (k * self._element.width) for k in range(self._simd))
        m.d.comb += [passing.eq((position >= head) & (position < head + middle)),
                     free.eq(~self.o_stream.valid | self.o_stream.ready),
                     self.i_stream.ready.eq(passing & free),
                     load.eq(free & (~passing | self.i_stream.valid))]
        with m.If(load):
            m.d.sync += self.o_stream.valid.eq(1)
            with m.If(passing):
                m.d.sync += self.o_stream.payload.as_value().eq(self.i_stream.payload.as_value())
            with m.Else():
                m.d.sync += self.o_stream.payload.as_value().eq(pad_word)
            with m.If(position == total - 1):
                m.d.sync += position.eq(0)
            with m.Else():
                m.d.sync += position.eq(position + 1)
        with m.Elif(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        return m


class ChannelPadHandshake(HandshakeModel):
    """ChannelPad.elaborate's control: the position within a pixel and the output register's valid."""

    def __init__(self, head: int, middle: int, tail: int):
        self._head, self._middle, self._total = head, middle, head + middle + tail
        self._position = 0
        self.valid = False

    def _passing(self) -> bool:
        return self._head <= self._position < self._head + self._middle

    def ready(self, out_ready: bool) -> bool:
        return self._passing() and (not self.valid or out_ready)

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        # No handshake: an empty output register fills with a pad word; a passing position waits for its input.
        return 1 if not self.valid and not self._passing() else FOREVER

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        pass

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        free = not self.valid or out_ready
        if free and (not self._passing() or in_valid):
            self.valid = True
            self._position = (self._position + 1) % self._total
        elif self.valid and out_ready:
            self.valid = False
