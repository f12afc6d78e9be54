"""Sliding window (FINN's ConvolutionInputGenerator): an image in pixel order in, the K x K windows of a convolution
or a pool out, from a buffer of a few rows.

Streams: C = CF * SIMD channels; an image of H x W pixels arrives as H*W*CF transfers of SIMD elements, pixels in
raster order (row y, column x), channel folds fastest: transfer (y*W + x)*CF + f carries channels f*SIMD ..
f*SIMD+SIMD-1, element 0 in the low bits. With padding P < K and stride S there are OH x OW windows,
OH = (H + 2P - K) // S + 1 (OW likewise), in raster order (oy, ox); each is K*K*CF transfers, in order (ky, kx, f)
with f fastest (the column order of a convolution's weights reshaped (O, K, K, C)), or with `depthwise` in order
(f, ky, kx) with kx fastest (for a pool: K*K consecutive transfers are one channel fold of one window). A transfer
carries input pixel (iy, ix) = (oy*S - P + ky, ox*S - P + kx), channels f*SIMD.., or `pad_value` (an element code:
for bipolar unsigned(1) elements 1 is +1) in every element where (iy, ix) lies outside the image.

Buffer: one memory of R = K + S rows of W*CF words (a word is one transfer); input row g (counted from reset, across
images) goes to row slot g mod R. A signed counter `ahead` is the number of rows written and not yet released,
counted from lo(oy) = max(0, oy*S - P), the first row that the reader's output row oy needs. The writer takes a
transfer while ahead < R (so it never overwrites a row the reader still holds); a completed row adds 1. The reader
issues output row oy once ahead >= need(oy) - lo(oy), need(oy) = min(H, oy*S - P + K), and when its last transfer
issues releases lo(oy+1) - lo(oy) rows, after an image's last row H - lo(OH-1): rows below the last window (stride
> 1) are never read, so ahead may go below zero and the writer then writes those rows without the reader.

Reader pipeline: while the output register is free (empty or being taken) one transfer issues per cycle: a read
address from the window counters, and whether the pixel is padding. The memory's registered read data is the
output payload (the pad word instead when the registered pad flag is set); o_stream.valid is a register. Input
ready is `ahead < R`, state only: this unit breaks the combinational ready chain of the dataflow.

Timing (undisturbed): an input row takes T = W*CF cycles to write, an output row L = OW*K*K*CF cycles to issue, and
a transfer leaves the cycle after it issues. Output row oy starts once input row need(oy) - 1 is written and the
row before it has issued: LATENCY = max over oy of need(oy)*T + (OH - oy)*L. Images follow every
INTERVAL = max(H*T, OH*L + stall): the writer's pace, or the reader's plus the cycles it waits where the buffer held
the writer back (`interval` gives the stall; for a convolution it is the wait at an image's start, when the buffer
could not take the next image's first rows during the last output row). The tests hold both to the model and the
RTL.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .handshake import FOREVER, HandshakeModel
from .layout import StreamFormat
from .memory_style import memory_attrs
from .parameters import check_divides, check_positive_int

__all__ = ["SlidingWindow", "SlidingWindowHandshake"]


class SlidingWindow(wiring.Component):
    def __init__(self, *, element, channels: int, height: int, width: int, kernel: int, stride: int = 1,
                 padding: int = 0, simd: int = 1, pad_value: int = 0, depthwise: bool = False):
        try:
            element = self._validate(element, channels, height, width, kernel, stride, padding, simd, pad_value)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        self._element = element
        self._channels, self._height, self._width = channels, height, width
        self._kernel, self._stride, self._padding = kernel, stride, padding
        self._simd, self._pad_value, self._depthwise = simd, pad_value, bool(depthwise)
        layout = data.ArrayLayout(element, simd)
        super().__init__({"i_stream": In(stream.Signature(layout)), "o_stream": Out(stream.Signature(layout))})

    @staticmethod
    def _validate(element, channels, height, width, kernel, stride, padding, simd, pad_value) -> Shape:
        try:
            element = Shape.cast(element)
        except TypeError as error:
            raise TypeError(f"element must be a shape, not {element!r}") from error
        for name, value in (("channels", channels), ("height", height), ("width", width), ("kernel", kernel),
                            ("stride", stride), ("simd", simd)):
            check_positive_int(name, value)
        if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
            raise TypeError(f"padding must be a non-negative integer, not {padding!r}")
        check_divides("simd", simd, channels, f"channels={channels}")
        for name, size in (("height", height), ("width", width)):
            if kernel > size + 2 * padding:
                raise ValueError(f"kernel={kernel} is larger than the padded {name} {size} + 2*{padding}")
        # A window wholly in the padding would read no row: the reader could then run ahead of the writer.
        if padding >= kernel:
            raise ValueError(f"padding={padding} must be less than kernel={kernel}")
        low, high = (-(1 << (element.width - 1)), (1 << (element.width - 1)) - 1) if element.signed \
            else (0, (1 << element.width) - 1)
        if not isinstance(pad_value, int) or isinstance(pad_value, bool) or not low <= pad_value <= high:
            raise ValueError(f"pad_value={pad_value!r} does not fit the element {element!r} ({low}..{high})")
        return element

    # Geometry.

    @property
    def element(self) -> Shape:
        return self._element

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def height(self) -> int:
        return self._height

    @property
    def width(self) -> int:
        return self._width

    @property
    def kernel(self) -> int:
        return self._kernel

    @property
    def stride(self) -> int:
        return self._stride

    @property
    def padding(self) -> int:
        return self._padding

    @property
    def simd(self) -> int:
        return self._simd

    @property
    def pad_value(self) -> int:
        return self._pad_value

    @property
    def depthwise(self) -> bool:
        return self._depthwise

    @property
    def channel_folds(self) -> int:
        """CF = C / SIMD: transfers per pixel."""
        return self._channels // self._simd

    @property
    def output_height(self) -> int:
        return (self._height + 2 * self._padding - self._kernel) // self._stride + 1

    @property
    def output_width(self) -> int:
        return (self._width + 2 * self._padding - self._kernel) // self._stride + 1

    @property
    def buffer_rows(self) -> int:
        """R = K + S: the rows one output row reads, and the S rows the next one adds, written meanwhile."""
        return self._kernel + self._stride

    @property
    def window_transfers(self) -> int:
        """Transfers per window: K*K*CF."""
        return self._kernel * self._kernel * self.channel_folds

    def _format(self, transfers: int) -> StreamFormat:
        if not self._element.signed and self._element.width == 1:
            return StreamFormat("bipolar", self._simd, 1, transfers)
        kind = "signed" if self._element.signed else "unsigned"
        return StreamFormat(kind, self._simd, self._element.width, transfers)

    @property
    def input_format(self) -> StreamFormat:
        return self._format(self._height * self._width * self.channel_folds)

    @property
    def output_format(self) -> StreamFormat:
        return self._format(self.output_height * self.output_width * self.window_transfers)

    def _row_spans(self) -> tuple[list[int], list[int]]:
        """Per output row oy: lo(oy), the first input row it needs (row H closes the list), and need(oy), one past
        the last."""
        height, kernel, stride, padding = self._height, self._kernel, self._stride, self._padding
        rows = range(self.output_height)
        return ([max(0, oy * stride - padding) for oy in rows] + [height],
                [min(height, oy * stride - padding + kernel) for oy in rows])

    # Timing, undisturbed. T = W*CF cycles write an input row, L = OW*K*K*CF issue an output row.

    @property
    def latency(self) -> int:
        """Cycles from an image's first input handshake to its last output handshake, undisturbed, pipeline empty:
        max over oy of need(oy)*T + (OH - oy)*L. Output row oy issues once its last input row is written, and the
        rows after it follow back to back; the last transfer leaves one cycle after it issues."""
        _, need = self._row_spans()
        row_cycles, out_cycles = self._width * self.channel_folds, self.output_width * self.window_transfers
        return max(need[oy] * row_cycles + (len(need) - oy) * out_cycles for oy in range(len(need)))

    @property
    def interval(self) -> int:
        """Cycles between images streaming undisturbed (the steady state; the first image may differ):
        max(H*T, OH*L + max(0, G)) with G the largest (need'(b) - lo(a) - R)*T - (b - a - 1)*L over
        0 <= a < OH, a < b <= a + OH, where need'(b) counts from this image's row 0 (H + need(b - OH) for
        b >= OH). H*T is the writer alone, OH*L the reader alone; G is the cost of the buffer: the writer stops
        R rows past lo(a) until output row a is done, and output row b then waits for its last input row, the
        rows between them no longer limiting (at the image's end, with a = OH-1 and b = OH, the next image's
        first rows)."""
        lo, need = self._row_spans()
        rows, height = len(need), self._height
        row_cycles, out_cycles = self._width * self.channel_folds, self.output_width * self.window_transfers
        stall = max((((b // rows) * height + need[b % rows] - lo[a] - self.buffer_rows) * row_cycles
                     - (b - a - 1) * out_cycles) for a in range(rows) for b in range(a + 1, a + rows + 1))
        return max(height * row_cycles, rows * out_cycles + max(0, stall))

    def handshake_model(self) -> SlidingWindowHandshake:
        """A fresh cycle-level model of this unit's valid/ready protocol (hbnn.hw.handshake)."""
        lo, need = self._row_spans()
        return SlidingWindowHandshake(buffer_rows=self.buffer_rows, row_transfers=self._width * self.channel_folds,
                                      output_row_transfers=self.output_width * self.window_transfers,
                                      needed=[n - low for n, low in zip(need, lo)],
                                      releases=[b - a for a, b in zip(lo, lo[1:])])

    def elaborate(self, platform) -> Module:
        m = Module()
        height, kernel, stride, padding = self._height, self._kernel, self._stride, self._padding
        folds = self.channel_folds
        row_words = self._width * folds  # T: words per buffer row
        rows = self.buffer_rows
        depth = rows * row_words
        last_top = (self.output_height - 1) * stride - padding  # oy*S - P of the last output row
        last_left = ((self.output_width - 1) * stride - padding) * folds  # column word of the last window

        m.submodules.buffer = buffer = Memory(shape=self._element.width * self._simd, depth=depth, init=[],
                                              attrs=memory_attrs(depth, writable=True))
        write = buffer.write_port()
        read = buffer.read_port()

        def row_after(address, count):
            """The address `count` rows (taken mod R) after `address`, a row start: rows are used circularly."""
            step = (count % rows) * row_words
            return Mux(address >= depth - step, address - (depth - step), address + step) if step else address

        # Rows written and not released, from lo(oy). Same-cycle increment and release both apply.
        ahead = Signal(range(1 - stride, rows + 1))
        completed = Signal()
        released = Signal(range(height + 1))
        m.d.sync += ahead.eq(ahead + completed - released)

        # Writer: input transfers in order, to consecutive addresses.
        write_address = Signal(range(depth))
        write_column = Signal(range(max(row_words, 2)))
        m.d.comb += [
            self.i_stream.ready.eq(ahead < rows),
            write.en.eq(self.i_stream.valid & self.i_stream.ready),
            write.addr.eq(write_address), write.data.eq(self.i_stream.payload.as_value()),
            completed.eq(write.en & (write_column == row_words - 1)),
        ]
        with m.If(write.en):
            m.d.sync += write_address.eq(Mux(write_address == depth - 1, 0, write_address + 1))
            m.d.sync += write_column.eq(Mux(completed, 0, write_column + 1))

        # Reader position. `top` = oy*S - P and `left` = (ox*S - P)*CF place the window; iy = top + ky is the
        # input row read, `row` its buffer address, `first_row` the address of row `top`; `column` = ix*CF + f.
        # Rows above the image (iy < 0) get the addresses of the slots before row 0's: never read, but stepping
        # through them keeps every increment a constant. Every counter has at least one bit, and only comparisons
        # that can go both ways are built (the Verilog lints clean).
        def counter(low, high, **kwargs):
            return Signal(range(low, max(high, low + 2)), **kwargs)

        top = counter(-padding, last_top + 1, init=-padding, name="window_top")
        left = counter(-padding * folds, last_left + 1, init=-padding * folds, name="window_left")
        ky, kx, f = counter(0, kernel, name="ky"), counter(0, kernel, name="kx"), counter(0, folds, name="f")
        iy = counter(-padding, last_top + kernel, init=-padding, name="iy")
        column = counter(-padding * folds, last_left + kernel * folds, init=-padding * folds, name="column")
        first_row = Signal(range(depth), init=(-padding % rows) * row_words)
        row = Signal(range(depth), init=(-padding % rows) * row_words)

        lo = Mux(top < 0, 0, top) if padding else top
        need = Mux(top + kernel > height, height, top + kernel) if last_top + kernel > height else top + kernel
        last_row = top == last_top
        next_lo = Mux(last_row, height, Mux(top + stride < 0, 0, top + stride) if padding > stride else top + stride)
        pad = Signal()
        outside = []
        if padding:
            outside += [iy < 0, column < 0]
        if last_top + kernel > height:
            outside.append(iy >= height)
        if last_left + kernel * folds > row_words:
            outside.append(column >= row_words)
        if outside:
            m.d.comb += pad.eq(Cat(*outside).any())

        output_free = ~self.o_stream.valid | self.o_stream.ready
        issue = Signal()
        m.d.comb += [
            issue.eq(output_free & (ahead >= need - lo)),
            read.en.eq(issue),
            read.addr.eq((row + column)[:read.addr.shape().width]),  # in range wherever the pixel is no pad
        ]
        pad_flag = Signal()
        with m.If(output_free):
            m.d.sync += [self.o_stream.valid.eq(issue), pad_flag.eq(pad)]
        pad_word = 0
        for _ in range(self._simd):
            pad_word = (pad_word << self._element.width) | (self._pad_value & ((1 << self._element.width) - 1))
        m.d.comb += self.o_stream.payload.as_value().eq(Mux(pad_flag, pad_word, read.data))

        def next_kernel_row():
            m.d.sync += [ky.eq(ky + 1), iy.eq(iy + 1), row.eq(row_after(row, 1))]

        def restart_window(new_left):
            """Back to the window's (or the next window's) first row: (ky, kx) = (0, 0) at fold f."""
            m.d.sync += [ky.eq(0), kx.eq(0), iy.eq(top), row.eq(first_row), column.eq(new_left + f)]

        def next_window():
            m.d.sync += [ky.eq(0), kx.eq(0), f.eq(0)]
            with m.If(left != last_left):
                m.d.sync += [left.eq(left + stride * folds), column.eq(left + stride * folds),
                             iy.eq(top), row.eq(first_row)]
            with m.Else():  # the output row's end: release the rows the next one does not need
                m.d.comb += released.eq(next_lo - lo)
                m.d.sync += [left.eq(-padding * folds), column.eq(-padding * folds)]
                with m.If(~last_row):
                    m.d.sync += [top.eq(top + stride), iy.eq(top + stride),
                                 first_row.eq(row_after(first_row, stride)), row.eq(row_after(first_row, stride))]
                with m.Else():  # the next image's rows follow this image's H rows
                    image_step = height - (self.output_height - 1) * stride
                    m.d.sync += [top.eq(-padding), iy.eq(-padding),
                                 first_row.eq(row_after(first_row, image_step)),
                                 row.eq(row_after(first_row, image_step))]

        with m.If(issue):
            if not self._depthwise:  # (ky, kx, f), f fastest: the column word steps by one along a kernel row
                with m.If((f != folds - 1) | (kx != kernel - 1)):
                    m.d.sync += [f.eq(Mux(f == folds - 1, 0, f + 1)), column.eq(column + 1)]
                    with m.If(f == folds - 1):
                        m.d.sync += kx.eq(kx + 1)
                with m.Elif(ky != kernel - 1):
                    next_kernel_row()
                    m.d.sync += [kx.eq(0), f.eq(0), column.eq(left)]
                with m.Else():
                    next_window()
            else:  # (f, ky, kx), kx fastest: the column word steps by CF
                with m.If(kx != kernel - 1):
                    m.d.sync += [kx.eq(kx + 1), column.eq(column + folds)]
                with m.Elif(ky != kernel - 1):
                    next_kernel_row()
                    m.d.sync += [kx.eq(0), column.eq(left + f)]
                with m.Elif(f != folds - 1):
                    m.d.sync += f.eq(f + 1)
                    restart_window(left + 1)
                with m.Else():
                    next_window()
        return m


class SlidingWindowHandshake(HandshakeModel):
    """SlidingWindow.elaborate's control, without the data: the writer's column in its row, `ahead`, the reader's
    output row and position in it, and the output register's valid. Per output row: `needed` rows held before it
    issues, `releases` rows freed at its end."""

    def __init__(self, *, buffer_rows: int, row_transfers: int, output_row_transfers: int, needed, releases):
        self._rows, self._row_transfers, self._output_row_transfers = buffer_rows, row_transfers, output_row_transfers
        self._needed, self._releases = tuple(needed), tuple(releases)
        self._output_rows = len(self._needed)
        self._ahead = 0
        self._column = 0  # writer: transfers of the row being written
        self._oy = 0
        self._position = 0  # reader: transfers of output row oy issued
        self.valid = False

    def ready(self, out_ready: bool) -> bool:
        return self._ahead < self._rows

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        # No handshake: the writer waits; an empty output register fills once enough rows are held.
        return 1 if not self.valid and self._ahead >= self._needed[self._oy] else FOREVER

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        pass

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        ahead = self._ahead
        if in_valid and ahead < self._rows:
            self._column += 1
            if self._column == self._row_transfers:
                self._column = 0
                self._ahead += 1
        if not self.valid or out_ready:
            oy = self._oy
            self.valid = issue = ahead >= self._needed[oy]
            if issue:
                self._position += 1
                if self._position == self._output_row_transfers:
                    self._position = 0
                    self._ahead -= self._releases[oy]
                    self._oy = oy + 1 if oy + 1 < self._output_rows else 0
