"""Window reduction: the arithmetic half of a pooling layer. Each group of `window` consecutive input transfers is
reduced lane by lane (element k of every transfer with element k of the others) to one output transfer.

Order: a sliding-window unit feeds windows depthwise: for each output pixel and each channel fold, the K*K pixels
of the window (window = K*K transfers), each carrying SIMD channels. So one group is one output pixel's SIMD
channels, and an image is `groups` = OH*OW*C/SIMD groups.

Kinds: "max" is the element-wise maximum of signed(n) or unsigned(n) elements (ABC-Net levels), or of bipolar bits
(unsigned(1), 1 = +1, 0 = -1), where the maximum is the OR. "sum" adds signed(n) elements into signed(n + ceil(log2 window)), exactly wide enough
for window * the input range (an average pool divides later, in its thresholds).

Timing: one input transfer per cycle. A group's running result is kept per lane; the input that completes a group
is combined in the cycle it is accepted and the result goes straight to the output register (o_stream.valid is a
register), so the group's output can leave the next cycle. Undisturbed, an image's last output leaves
groups * window cycles after its first input (LATENCY) and images follow every groups * window cycles (INTERVAL).
Only an input that completes a group waits for the output register: input ready = the input does not complete a
group, or the output register is empty or being taken.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .handshake import FOREVER, HandshakeModel
from .layout import StreamFormat
from .parameters import check_positive_int

__all__ = ["WindowReduce", "WindowReduceHandshake", "KINDS"]

KINDS = ("max", "sum")


class WindowReduce(wiring.Component):
    def __init__(self, *, element, simd: int, window: int, kind: str, groups: int):
        try:
            element = self._validate(element, simd, window, kind, groups)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        self._element = element
        self._simd, self._window, self._kind, self._groups = simd, window, kind, groups
        # A sum of `window` elements in -2^(n-1) .. 2^(n-1)-1 lies in -window*2^(n-1) .. window*(2^(n-1)-1).
        self._output_element = (signed(element.width + (window - 1).bit_length()) if kind == "sum" else element)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(element, simd))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._output_element, simd))),
        })

    @staticmethod
    def _validate(element, simd, window, kind, groups) -> Shape:
        try:
            element = Shape.cast(element)
        except TypeError as error:
            raise TypeError(f"element must be a shape, not {element!r}") from error
        if not element.signed and element.width != 1 and kind != "max":
            raise ValueError(f"element must be signed(n) or unsigned(1) (bipolar), not {element!r}")
        if element.signed and element.width < 2:
            raise ValueError(f"element must be signed(n) with n >= 2 or unsigned(1) (bipolar), not {element!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if kind == "sum" and not element.signed:
            raise ValueError("kind 'sum' needs signed elements: a sum of bipolar (unsigned(1)) elements is not "
                             "supported")
        check_positive_int("simd", simd)
        check_positive_int("window", window)
        check_positive_int("groups", groups)
        return element

    @property
    def element(self) -> Shape:
        return self._element

    @property
    def output_element(self) -> Shape:
        """The element itself for "max"; signed(output_bits) for "sum"."""
        return self._output_element

    @property
    def output_bits(self) -> int:
        """Bits of one output element: n for "max", n + ceil(log2 window) for "sum"."""
        return self._output_element.width

    @property
    def simd(self) -> int:
        return self._simd

    @property
    def window(self) -> int:
        return self._window

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def groups(self) -> int:
        """Output transfers per image."""
        return self._groups

    @property
    def interval(self) -> int:
        """Cycles between images, streaming undisturbed: one input transfer per cycle."""
        return self._groups * self._window

    @property
    def latency(self) -> int:
        """Cycles from an image's first input handshake to its last output handshake, nothing stalled: the last
        input is accepted at groups * window - 1, its group's result leaves from the output register a cycle
        later."""
        return self._groups * self._window

    @staticmethod
    def _format(shape: Shape, simd: int, transfers: int) -> StreamFormat:
        if not shape.signed:
            return StreamFormat("bipolar" if shape.width == 1 else "unsigned", simd, shape.width, transfers)
        return StreamFormat("signed", simd, shape.width, transfers)

    @property
    def input_format(self) -> StreamFormat:
        return self._format(self._element, self._simd, self._groups * self._window)

    @property
    def output_format(self) -> StreamFormat:
        return self._format(self._output_element, self._simd, self._groups)

    def handshake_model(self) -> WindowReduceHandshake:
        """A fresh cycle-level model of this unit's valid/ready protocol (hbnn.hw.handshake)."""
        return WindowReduceHandshake(window=self._window)

    def elaborate(self, platform) -> Module:
        m = Module()
        window = self._window
        source, sink = self.i_stream, self.o_stream

        # Position in the group; at least one bit wide (a window of one is always at position 0).
        position = Signal(range(max(window, 2)))
        first = position == 0
        last = position == window - 1
        m.d.comb += source.ready.eq(~last | ~sink.valid | sink.ready)
        accepted = source.valid & source.ready

        for k in range(self._simd):
            x = source.payload[k]
            if window == 1:
                reduced = x
            else:
                running = Signal(self._output_element, name=f"running{k}")
                reduced = Signal(self._output_element, name=f"reduced{k}")
                if self._kind == "sum":
                    combined = running + x
                elif self._element.signed or self._element.width > 1:
                    combined = Mux(x > running, x, running)
                else:
                    combined = running | x  # bipolar: +1 if any is +1
                # The group's first input starts the result afresh: no reset value per kind is needed.
                m.d.comb += reduced.eq(Mux(first, x, combined))
                with m.If(accepted):
                    m.d.sync += running.eq(reduced)
            with m.If(accepted & last):
                m.d.sync += sink.payload[k].eq(reduced)

        with m.If(sink.valid & sink.ready):
            m.d.sync += sink.valid.eq(0)
        with m.If(accepted):
            with m.If(last):
                m.d.sync += [position.eq(0), sink.valid.eq(1)]
            with m.Else():
                m.d.sync += position.eq(position + 1)
        return m


class WindowReduceHandshake(HandshakeModel):
    """WindowReduce.elaborate's control, without the data: the position in the group and the output register's
    valid. Only the input that completes a group waits for the output register."""

    def __init__(self, *, window: int):
        self._last = window - 1
        self._position = 0
        self.valid = False

    def ready(self, out_ready: bool) -> bool:
        return self._position != self._last or not self.valid or out_ready

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        return FOREVER  # it moves on handshakes only

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        pass

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        taken = in_valid and (self._position != self._last or not self.valid or out_ready)
        if self.valid and out_ready:
            self.valid = False
        if taken:
            if self._position == self._last:
                self._position = 0
                self.valid = True
            else:
                self._position += 1
