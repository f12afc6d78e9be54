"""Matrix-vector unit: y = W x for one image, PE rows x SIMD columns per cycle, with any of the three lane kinds.

Streams: a vector arrives as SF = MW/SIMD transfers of SIMD elements (bipolar bits or int8) and leaves as
NF = MH/PE transfers of PE signed accumulators (rows nf*PE .. nf*PE+PE-1 in transfer nf). An image is `vectors`
vectors: one for a linear layer, one per output pixel for a convolution (its sliding window's columns). Thresholds
are a separate stage (hbnn.hw.threshold.MultiThreshold). An optional integer `bias` per row starts each row's
accumulation instead of 0 (a last layer's int8 bias codes, which no threshold absorbs).

Sequencing, as FINN's MVAU does it: during the first neuron fold (nf = 0) each input transfer is used as it
arrives and written into an input buffer of SF words; the other folds re-read the buffer. Each cycle issues one
weight word (PE x SIMD weights) and one input chunk; a data stage one cycle behind computes the PE lane sums and
accumulates them; after the last synapse fold of a row group the PE sums go to the output register. The next image's
first input is taken right after the last weight word of the current one is issued.

Timing (no stalls): the first input transfer of a vector at cycle a; output transfer nf leaves at a + (nf+1)*SF + 1,
so the last at a + NF*SF + 1, and vectors follow every NF*SF cycles: an image's INTERVAL is vectors*NF*SF and its
LATENCY INTERVAL + 1. The unit stalls as a whole while its
output register is full and not taken, and issues nothing during nf = 0 while no input is offered.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .handshake import FOREVER, HandshakeModel
from .lanes import add_subtract, add_subtract_skip, dot_product_bound, lane_kind, multiply, xnor_popcount
from .layout import StreamFormat
from .memory_style import memory_attrs
from .parameters import check_divides, check_positive_int
from .rom import rom

__all__ = ["Mvau", "MvauHandshake", "ELEMENT_FORMATS"]

# How a weight or input element is stored: kind and bits, as hw.layout packs it.
ELEMENT_FORMATS = {"binary": ("bipolar", 1), "bipolar": ("bipolar", 1), "ternary": ("signed", 2),
                   "int8": ("signed", 8)}


class Mvau(wiring.Component):
    def __init__(self, *, weights, weight_kind: str, input_kind: str, pe: int, simd: int, vectors: int = 1,
                 bias=None):
        try:
            self._lane = lane_kind(weight_kind, input_kind)
            weights = self._validate(weights, weight_kind, pe, simd)
            self._vectors = check_positive_int("vectors", vectors)
            if bias is not None:
                bias = np.asarray(bias, dtype=np.int64)
                if bias.shape != (weights.shape[0],):
                    raise ValueError(f"bias must have one code per row ({weights.shape[0]}), not shape {bias.shape}")
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        rows, columns = weights.shape
        self._weights = weights
        self._weight_kind, self._input_kind = weight_kind, input_kind
        self._pe, self._simd = pe, simd
        self._bias = bias
        largest_bias = 0 if bias is None else int(np.abs(bias).max())
        self._accumulator_bits = (dot_product_bound(weight_kind, input_kind, columns) + largest_bias).bit_length() + 1
        kind, bits = ELEMENT_FORMATS[input_kind]
        element = unsigned(1) if kind == "bipolar" else signed(bits)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(element, simd))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(signed(self._accumulator_bits), pe))),
        })

    @staticmethod
    def _validate(weights, weight_kind, pe, simd):
        weights = np.asarray(weights, dtype=np.int64)
        if weights.ndim != 2 or 0 in weights.shape:
            raise ValueError(f"weights must be a non-empty 2-D array, not shape {weights.shape}")
        if weight_kind == "binary" and not np.isin(weights, (-1, 1)).all():
            raise ValueError("binary weights must be -1 or +1")
        if weight_kind == "ternary" and not np.isin(weights, (-1, 0, 1)).all():
            raise ValueError("ternary weights must be -1, 0 or +1")
        if weight_kind == "int8" and (weights.min() < -128 or weights.max() > 127):
            raise ValueError("int8 weights must lie in -128..127")
        rows, columns = weights.shape
        for name, value, size in (("pe", pe, rows), ("simd", simd, columns)):
            check_positive_int(name, value)
            check_divides(name, value, size, f"the layer dimension {size}")
        return weights

    @property
    def pe(self) -> int:
        return self._pe

    @property
    def simd(self) -> int:
        return self._simd

    @property
    def lane(self) -> str:
        return self._lane

    @property
    def weight_bits(self) -> int:
        """Bits of one weight in the weight ROM (a word holds PE x SIMD of them)."""
        return ELEMENT_FORMATS[self._weight_kind][1]

    @property
    def accumulator_bits(self) -> int:
        return self._accumulator_bits

    @property
    def neuron_folds(self) -> int:
        return self._weights.shape[0] // self._pe

    @property
    def synapse_folds(self) -> int:
        return self._weights.shape[1] // self._simd

    @property
    def vectors(self) -> int:
        return self._vectors

    @property
    def interval(self) -> int:
        """Cycles between images, streaming undisturbed."""
        return self._vectors * self.neuron_folds * self.synapse_folds

    @property
    def latency(self) -> int:
        """Cycles from an image's first input handshake to its last output handshake, nothing stalled."""
        return self.interval + 1

    @property
    def input_format(self) -> StreamFormat:
        kind, bits = ELEMENT_FORMATS[self._input_kind]
        return StreamFormat(kind, self._simd, bits, self._vectors * self.synapse_folds)

    @property
    def output_format(self) -> StreamFormat:
        return StreamFormat("signed", self._pe, self._accumulator_bits, self._vectors * self.neuron_folds)

    def handshake_model(self) -> MvauHandshake:
        """A fresh cycle-level model of this unit's valid/ready protocol (hbnn.hw.handshake)."""
        return MvauHandshake(neuron_folds=self.neuron_folds, synapse_folds=self.synapse_folds)

    def weight_words(self) -> list[int]:
        """Word nf * SF + sf: rows nf*PE.., columns sf*SIMD..; PE j's SIMD weights at element j*SIMD.."""
        pe, simd = self._pe, self._simd
        kind, bits = ELEMENT_FORMATS[self._weight_kind]
        blocks = self._weights.reshape(self.neuron_folds, pe, self.synapse_folds, simd).transpose(0, 2, 1, 3)
        word_format = StreamFormat(kind, pe * simd, bits)
        return word_format.to_ints(blocks.reshape(-1, pe * simd))

    def bias_words(self) -> list[int]:
        """Word nf: the biases of rows nf*PE .. nf*PE+PE-1, row nf*PE + j at element j."""
        word_format = StreamFormat("signed", self._pe, self._accumulator_bits)
        return word_format.to_ints(self._bias.reshape(self.neuron_folds, self._pe))

    def elaborate(self, platform) -> Module:
        m = Module()
        pe, simd = self._pe, self._simd
        neuron_folds, synapse_folds = self.neuron_folds, self.synapse_folds
        steps = neuron_folds * synapse_folds
        _, weight_bits = ELEMENT_FORMATS[self._weight_kind]
        _, element_bits = ELEMENT_FORMATS[self._input_kind]
        chunk_bits = simd * element_bits

        # Memories are at least two words deep: a one-word memory has a zero-width address, which the Verilog
        # backend writes as [-1:0]. Counters likewise are at least one bit wide.
        m.submodules.weights = weights = rom(pe * simd * weight_bits, max(steps, 2), self.weight_words(),
                                             style_depth=steps)
        m.submodules.buffer = buffer = Memory(shape=unsigned(chunk_bits), depth=max(synapse_folds, 2), init=[],
                                              attrs=memory_attrs(synapse_folds, writable=True))
        weight_port = weights.read_port()
        if self._bias is not None:
            m.submodules.bias = bias = rom(pe * self._accumulator_bits, max(neuron_folds, 2), self.bias_words(),
                                           style_depth=neuron_folds)
            bias_port = bias.read_port()
        buffer_read = buffer.read_port()
        buffer_write = buffer.write_port()

        advance = Signal()  # the pipeline moves this cycle; low while a finished row group waits for the output
        neuron_fold = Signal(range(max(neuron_folds, 2)))
        synapse_fold = Signal(range(max(synapse_folds, 2)))
        address = Signal(range(max(steps, 2)))
        loading = neuron_fold == 0  # the first fold takes its inputs from the stream
        issue = Signal()
        m.d.comb += [
            self.i_stream.ready.eq(advance & loading),
            issue.eq(advance & (~loading | self.i_stream.valid)),
            weight_port.en.eq(advance), weight_port.addr.eq(address),
            buffer_read.en.eq(advance), buffer_read.addr.eq(synapse_fold),
            *([bias_port.en.eq(advance), bias_port.addr.eq(neuron_fold)] if self._bias is not None else []),
            buffer_write.en.eq(self.i_stream.valid & self.i_stream.ready),
            buffer_write.addr.eq(synapse_fold), buffer_write.data.eq(self.i_stream.payload.as_value()),
        ]
        with m.If(issue):
            with m.If(synapse_fold == synapse_folds - 1):
                m.d.sync += synapse_fold.eq(0)
                m.d.sync += neuron_fold.eq(Mux(neuron_fold == neuron_folds - 1, 0, neuron_fold + 1))
            with m.Else():
                m.d.sync += synapse_fold.eq(synapse_fold + 1)
            m.d.sync += address.eq(Mux(address == steps - 1, 0, address + 1))

        # Data stage registers, aligned with the memories' registered read data.
        staged = Signal()
        staged_first = Signal()
        staged_last = Signal()
        staged_from_stream = Signal()
        streamed_chunk = Signal(chunk_bits)
        with m.If(advance):
            m.d.sync += [
                staged.eq(issue),
                staged_first.eq(synapse_fold == 0),
                staged_last.eq(synapse_fold == synapse_folds - 1),
                staged_from_stream.eq(loading),
                streamed_chunk.eq(self.i_stream.payload.as_value()),
            ]
        chunk = Signal(chunk_bits)
        m.d.comb += chunk.eq(Mux(staged_from_stream, streamed_chunk, buffer_read.data))

        totals = []
        for j in range(pe):
            word = weight_port.data[j * simd * weight_bits:(j + 1) * simd * weight_bits]
            if self._lane == "xnor_popcount":
                partial = xnor_popcount(m, f"pe{j}", word, chunk)
            else:
                elements = [chunk[k * element_bits:(k + 1) * element_bits].as_signed() for k in range(simd)]
                if self._lane == "add_subtract":
                    partial = add_subtract(m, f"pe{j}", word, elements)
                elif self._lane == "add_subtract_skip":
                    partial = add_subtract_skip(m, f"pe{j}", word, elements)
                else:
                    partial = multiply(m, f"pe{j}", [word[k * 8:(k + 1) * 8].as_signed() for k in range(simd)],
                                       elements)
            accumulator = Signal(signed(self._accumulator_bits), name=f"acc{j}")
            total = Signal(signed(self._accumulator_bits), name=f"total{j}")
            start = 0 if self._bias is None else bias_port.data[j * self._accumulator_bits:
                                                                (j + 1) * self._accumulator_bits].as_signed()
            m.d.comb += total.eq(partial + Mux(staged_first, start, accumulator))
            with m.If(advance & staged):
                m.d.sync += accumulator.eq(total)
            totals.append(total)

        # Output register and back-pressure.
        output_free = ~self.o_stream.valid | self.o_stream.ready
        finishing = staged & staged_last
        m.d.comb += advance.eq(~finishing | output_free)
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(finishing & output_free):
            m.d.sync += self.o_stream.valid.eq(1)
            m.d.sync += [self.o_stream.payload[j].eq(total) for j, total in enumerate(totals)]
        return m


class MvauHandshake(HandshakeModel):
    """Mvau.elaborate's control, without the data: the fold counters, whether the data stage holds a row group's
    last synapse fold (`finishing`), and the output register's valid."""

    def __init__(self, *, neuron_folds: int, synapse_folds: int):
        self._neuron_folds, self._synapse_folds = neuron_folds, synapse_folds
        self._neuron_fold = self._synapse_fold = 0
        self._finishing = False  # staged & staged_last
        self.valid = False

    # ready and clock are stepped for every cycle of every image of a whole network's cycle analysis: `advance`
    # (the data stage may move: not finishing, or the output register free) is written out in both.
    def ready(self, out_ready: bool) -> bool:
        return self._neuron_fold == 0 and (not self._finishing or not self.valid or out_ready)

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        # No handshake: an issuing data stage counts synapse folds until its row group's last one (which may change
        # ready) and a finishing one fills the output register; anything else waits.
        if self._finishing:
            return 1 if not self.valid or out_ready else FOREVER
        return self._synapse_folds - self._synapse_fold if self._neuron_fold != 0 else FOREVER

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        if not self._finishing and self._neuron_fold != 0:
            self._synapse_fold += cycles

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        advance = not self._finishing or not self.valid or out_ready
        if self.valid and out_ready:
            self.valid = False
        if self._finishing and advance:  # advance here means the output register is free
            self.valid = True
        if advance:
            issue = self._neuron_fold != 0 or in_valid
            last = self._synapse_fold == self._synapse_folds - 1
            self._finishing = issue and last
            if issue:
                if last:
                    self._synapse_fold = 0
                    self._neuron_fold = (self._neuron_fold + 1) % self._neuron_folds
                else:
                    self._synapse_fold += 1
