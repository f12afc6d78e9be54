"""Matrix-vector unit: y = W x for one image, PE rows x SIMD columns per cycle, with any of the lane kinds (hw.lanes).

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

ABC-Net layers (weight_kind "abc", input_kind "levels", `bases=AbcBases(...)`): the weights are M binary planes
(M, rows, columns); each input element is a level 0..N from the previous threshold unit, whose N activation bases
are H_n = +1 where level >= ranks[n]. Each PE keeps one accumulator per (weight base, activation base) pair and
outputs sum q[i, n] * P_ni with the layer's integer coefficient codes q. `bases.parallel` weight bases are
computed side by side (parallel x N XNOR-popcount lanes per PE); the other M / parallel take further PASSES over
the row group's synapse folds, re-reading the input buffer, so a row group takes PASSES * SF cycles.

Timing (no stalls), with SF' = PASSES * SF (PASSES = 1 but for time-multiplexed ABC bases): the first input transfer
of a vector at cycle a; output transfer nf leaves at a + (nf+1)*SF' + 1, so the last at a + NF*SF' + 1, and vectors
follow every NF*SF' cycles: an image's INTERVAL is vectors*NF*SF' and its LATENCY INTERVAL + 1. Inputs are taken
during the first pass of the first neuron fold. The unit stalls as a whole while its
output register is full and not taken, and issues nothing during nf = 0 while no input is offered.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .handshake import FOREVER, HandshakeModel
from .lanes import (add_subtract, add_subtract_skip, constant_weighted_sum, dot_product_bound, lane_kind, multiply,
                    xnor_popcount)
from .layout import StreamFormat
from .memory_style import memory_attrs
from .parameters import check_divides, check_positive_int
from .rom import rom

__all__ = ["AbcBases", "Mvau", "MvauHandshake", "ELEMENT_FORMATS", "element_format"]

# How a weight or input element is stored: kind and bits, as hw.layout packs it. An ABC weight is one bit per base;
# an ABC input is a level 0..N, element_format's bits.
ELEMENT_FORMATS = {"binary": ("bipolar", 1), "bipolar": ("bipolar", 1), "ternary": ("signed", 2),
                   "int8": ("signed", 8), "abc": ("bipolar", 1)}


def element_format(kind: str, bases: AbcBases | None = None) -> tuple[str, int]:
    """(StreamFormat kind, bits) of one element of `kind`; "levels" (an ABC layer's input) needs its bases."""
    if kind == "levels":
        return "unsigned", bases.level_bits
    return ELEMENT_FORMATS[kind]


@dataclass(frozen=True)
class AbcBases:
    """How an ABC-Net layer combines its M x N pair sums: acc = sum_i sum_n coefficients[i][n] * P_ni; activation
    base n is +1 where the input level >= ranks[n] (levels 0..N, N = len(ranks)); `parallel` weight bases at a time
    (a divisor of M: M is fully parallel, 1 fully time-multiplexed)."""

    coefficients: tuple[tuple[int, ...], ...]  # (M, N) integer codes
    ranks: tuple[int, ...]  # (N,), each in 1..N
    parallel: int

    def __post_init__(self):
        codes = np.asarray(self.coefficients, dtype=np.int64)
        if codes.ndim != 2 or 0 in codes.shape:
            raise ValueError(f"ABC coefficients must be a non-empty (M, N) table, not shape {codes.shape}")
        weight_bases, act_bases = codes.shape
        if len(self.ranks) != act_bases or not all(1 <= r <= act_bases for r in self.ranks):
            raise ValueError(f"ABC ranks must be {act_bases} levels in 1..{act_bases}, not {self.ranks}")
        check_positive_int("parallel", self.parallel)
        check_divides("parallel", self.parallel, weight_bases, f"the {weight_bases} weight bases")

    @property
    def weight_bases(self) -> int:
        return len(self.coefficients)

    @property
    def act_bases(self) -> int:
        return len(self.ranks)

    @property
    def passes(self) -> int:
        return self.weight_bases // self.parallel

    @property
    def level_bits(self) -> int:
        return self.act_bases.bit_length()

    def combination_bound(self, columns: int) -> int:
        """The largest |acc| for `columns` columns: sum |q| * columns."""
        return int(np.abs(np.asarray(self.coefficients)).sum()) * columns


class Mvau(wiring.Component):
    def __init__(self, *, weights, weight_kind: str, input_kind: str, pe: int, simd: int, vectors: int = 1,
                 bias=None, bases: AbcBases | None = None):
        try:
            self._lane = lane_kind(weight_kind, input_kind)
            if (bases is not None) != (self._lane == "abc_xnor_popcount"):
                raise ValueError("bases (AbcBases) go with, and only with, ABC weights on levels")
            if bases is not None and bias is not None:
                raise ValueError("an ABC layer has no bias here: its bias folds into the next thresholds")
            weights = self._validate(weights, weight_kind, pe, simd, bases)
            self._vectors = check_positive_int("vectors", vectors)
            if bias is not None:
                bias = np.asarray(bias, dtype=np.int64)
                if bias.shape != (weights.shape[0],):
                    raise ValueError(f"bias must have one code per row ({weights.shape[0]}), not shape {bias.shape}")
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        rows, columns = weights.shape[-2:]
        self._weights = weights
        self._weight_kind, self._input_kind = weight_kind, input_kind
        self._pe, self._simd = pe, simd
        self._bias = bias
        self._bases = bases
        largest_bias = 0 if bias is None else int(np.abs(bias).max())
        bound = dot_product_bound(weight_kind, input_kind, columns)
        self._pair_bits = bound.bit_length() + 1  # an ABC pair sum, or the accumulator itself
        if bases is not None:
            bound = bases.combination_bound(columns)
        self._accumulator_bits = (bound + largest_bias).bit_length() + 1
        kind, bits = element_format(input_kind, bases)
        element = signed(bits) if kind == "signed" else unsigned(bits)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(element, simd))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(signed(self._accumulator_bits), pe))),
        })

    @staticmethod
    def _validate(weights, weight_kind, pe, simd, bases):
        weights = np.asarray(weights, dtype=np.int64)
        if bases is not None:
            if weights.ndim != 3 or weights.shape[0] != bases.weight_bases or 0 in weights.shape:
                raise ValueError(f"ABC weights must be {bases.weight_bases} planes (M, rows, columns), not shape "
                                 f"{weights.shape}")
        elif weights.ndim != 2 or 0 in weights.shape:
            raise ValueError(f"weights must be a non-empty 2-D array, not shape {weights.shape}")
        if weight_kind in ("binary", "abc") and not np.isin(weights, (-1, 1)).all():
            raise ValueError(f"{weight_kind} weights must be -1 or +1")
        if weight_kind == "ternary" and not np.isin(weights, (-1, 0, 1)).all():
            raise ValueError("ternary weights must be -1, 0 or +1")
        if weight_kind == "int8" and (weights.min() < -128 or weights.max() > 127):
            raise ValueError("int8 weights must lie in -128..127")
        rows, columns = weights.shape[-2:]
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
        """Bits of one weight in the weight ROM (a word holds PE x SIMD of them; an ABC word PE x parallel x SIMD
        one-bit weights)."""
        return ELEMENT_FORMATS[self._weight_kind][1]

    @property
    def bases(self) -> AbcBases | None:
        return self._bases

    @property
    def lanes(self) -> int:
        """Products per cycle: PE x SIMD, or PE x SIMD x parallel x N XNOR-popcounts for ABC-Net."""
        if self._bases is None:
            return self._pe * self._simd
        return self._pe * self._simd * self._bases.parallel * self._bases.act_bases

    @property
    def weight_memory(self) -> tuple[int, int]:
        """(depth, width) of the weight ROM: a word per cycle of a row group's folds."""
        group = 1 if self._bases is None else self._bases.parallel
        return self.neuron_folds * self.passes * self.synapse_folds, self._pe * group * self._simd * self.weight_bits

    @property
    def passes(self) -> int:
        """Passes over a row group's synapse folds: M / parallel for time-multiplexed ABC bases, else 1."""
        return 1 if self._bases is None else self._bases.passes

    @property
    def accumulator_bits(self) -> int:
        return self._accumulator_bits

    @property
    def neuron_folds(self) -> int:
        return self._weights.shape[-2] // self._pe

    @property
    def synapse_folds(self) -> int:
        return self._weights.shape[-1] // self._simd

    @property
    def vectors(self) -> int:
        return self._vectors

    @property
    def interval(self) -> int:
        """Cycles between images, streaming undisturbed."""
        return self._vectors * self.neuron_folds * self.passes * self.synapse_folds

    @property
    def latency(self) -> int:
        """Cycles from an image's first input handshake to its last output handshake, nothing stalled."""
        return self.interval + 1

    @property
    def input_format(self) -> StreamFormat:
        kind, bits = element_format(self._input_kind, self._bases)
        return StreamFormat(kind, self._simd, bits, self._vectors * self.synapse_folds)

    @property
    def output_format(self) -> StreamFormat:
        return StreamFormat("signed", self._pe, self._accumulator_bits, self._vectors * self.neuron_folds)

    def handshake_model(self) -> MvauHandshake:
        """A fresh cycle-level model of this unit's valid/ready protocol (hbnn.hw.handshake)."""
        return MvauHandshake(neuron_folds=self.neuron_folds, synapse_folds=self.synapse_folds, passes=self.passes)

    def weight_words(self) -> list[int]:
        """Word nf * SF + sf: rows nf*PE.., columns sf*SIMD..; PE j's SIMD weights at element j*SIMD.. ABC: word
        (nf * PASSES + pass) * SF + sf, PE j's weight base pass * parallel + g at element (j * parallel + g) * SIMD."""
        pe, simd = self._pe, self._simd
        kind, bits = ELEMENT_FORMATS[self._weight_kind]
        planes = self._weights if self._weights.ndim == 3 else self._weights[None]
        group = 1 if self._bases is None else self._bases.parallel
        # (passes, group, NF, PE, SF, SIMD) -> (NF, passes, SF, PE, group, SIMD)
        blocks = planes.reshape(self.passes, group, self.neuron_folds, pe, self.synapse_folds, simd)
        blocks = blocks.transpose(2, 0, 4, 3, 1, 5)
        word_format = StreamFormat(kind, pe * group * simd, bits)
        return word_format.to_ints(blocks.reshape(-1, pe * group * simd))

    def bias_words(self) -> list[int]:
        """Word nf: the biases of rows nf*PE .. nf*PE+PE-1, row nf*PE + j at element j."""
        word_format = StreamFormat("signed", self._pe, self._accumulator_bits)
        return word_format.to_ints(self._bias.reshape(self.neuron_folds, self._pe))

    def elaborate(self, platform) -> Module:
        m = Module()
        pe, simd = self._pe, self._simd
        neuron_folds, synapse_folds, passes = self.neuron_folds, self.synapse_folds, self.passes
        steps, word_bits = self.weight_memory
        _, weight_bits = ELEMENT_FORMATS[self._weight_kind]
        _, element_bits = element_format(self._input_kind, self._bases)
        chunk_bits = simd * element_bits

        # Memories are at least two words deep: a one-word memory has a zero-width address, which the Verilog
        # backend writes as [-1:0]. Counters likewise are at least one bit wide.
        m.submodules.weights = weights = rom(word_bits, max(steps, 2), self.weight_words(), style_depth=steps)
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
        pass_ = Signal(range(max(passes, 2)))
        synapse_fold = Signal(range(max(synapse_folds, 2)))
        address = Signal(range(max(steps, 2)))
        loading = (neuron_fold == 0) & (pass_ == 0)  # the first pass of the first fold takes inputs from the stream
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
        last_synapse_fold = synapse_fold == synapse_folds - 1
        last_pass = pass_ == passes - 1
        with m.If(issue):
            with m.If(last_synapse_fold):
                m.d.sync += synapse_fold.eq(0)
                m.d.sync += pass_.eq(Mux(last_pass, 0, pass_ + 1))
                with m.If(last_pass):
                    m.d.sync += neuron_fold.eq(Mux(neuron_fold == neuron_folds - 1, 0, neuron_fold + 1))
            with m.Else():
                m.d.sync += synapse_fold.eq(synapse_fold + 1)
            m.d.sync += address.eq(Mux(address == steps - 1, 0, address + 1))

        # Data stage registers, aligned with the memories' registered read data.
        staged = Signal()
        staged_first = Signal()  # the first synapse fold of a pass
        staged_last = Signal()  # the last synapse fold of the last pass: the row group is done
        staged_pass = Signal.like(pass_)
        staged_from_stream = Signal()
        streamed_chunk = Signal(chunk_bits)
        with m.If(advance):
            m.d.sync += [
                staged.eq(issue),
                staged_first.eq(synapse_fold == 0),
                staged_last.eq(last_synapse_fold & last_pass),
                staged_pass.eq(pass_),
                staged_from_stream.eq(loading),
                streamed_chunk.eq(self.i_stream.payload.as_value()),
            ]
        chunk = Signal(chunk_bits)
        m.d.comb += chunk.eq(Mux(staged_from_stream, streamed_chunk, buffer_read.data))
        step = advance & staged

        if self._bases is not None:
            totals = self._abc_totals(m, weight_port.data, chunk, step, staged_first, staged_pass)
        else:
            totals = []
            for j in range(pe):
                word = weight_port.data[j * simd * weight_bits:(j + 1) * simd * weight_bits]
                partial = self._lane_sum(m, f"pe{j}", word, chunk, element_bits)
                accumulator = Signal(signed(self._accumulator_bits), name=f"acc{j}")
                total = Signal(signed(self._accumulator_bits), name=f"total{j}")
                start = 0 if self._bias is None else bias_port.data[j * self._accumulator_bits:
                                                                    (j + 1) * self._accumulator_bits].as_signed()
                m.d.comb += total.eq(partial + Mux(staged_first, start, accumulator))
                with m.If(step):
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

    def _lane_sum(self, m: Module, name: str, word, chunk, element_bits: int):
        """One PE's SIMD products this cycle, by lane kind."""
        simd = self._simd
        if self._lane == "xnor_popcount":
            return xnor_popcount(m, name, word, chunk)
        elements = [chunk[k * element_bits:(k + 1) * element_bits].as_signed() for k in range(simd)]
        if self._lane == "add_subtract":
            return add_subtract(m, name, word, elements)
        if self._lane == "add_subtract_skip":
            return add_subtract_skip(m, name, word, elements)
        return multiply(m, name, [word[k * 8:(k + 1) * 8].as_signed() for k in range(simd)], elements)

    def _abc_totals(self, m: Module, weight_data, chunk, step, staged_first, staged_pass) -> list:
        """Per PE: an accumulator per (weight base i, activation base n) pair, the pairs of this pass's `parallel`
        weight bases stepping; the output is sum q[i, n] * (pair sum), the held sums of earlier passes included."""
        bases, pe, simd = self._bases, self._pe, self._simd
        level_bits = bases.level_bits
        planes = []  # H_n for the SIMD elements of this chunk: bit k = 1 (+1) where level_k >= rank_n
        for n, rank in enumerate(bases.ranks):
            plane = Signal(simd, name=f"plane{n}")
            m.d.comb += plane.eq(Cat(chunk[k * level_bits:(k + 1) * level_bits] >= rank for k in range(simd)))
            planes.append(plane)
        totals = []
        for j in range(pe):
            pair_totals, codes = [], []
            for i in range(bases.weight_bases):
                this_pass, g = divmod(i, bases.parallel)
                offset = (j * bases.parallel + g) * simd
                word = weight_data[offset:offset + simd]
                for n, plane in enumerate(planes):
                    accumulator = Signal(signed(self._pair_bits), name=f"acc{j}_w{i}_a{n}")
                    total = Signal(signed(self._pair_bits), name=f"total{j}_w{i}_a{n}")
                    fresh = xnor_popcount(m, f"pe{j}_w{i}_a{n}", word, plane) + Mux(staged_first, 0, accumulator)
                    stepping = staged_pass == this_pass if bases.passes > 1 else 1
                    m.d.comb += total.eq(Mux(stepping, fresh, accumulator))
                    with m.If(step & stepping):
                        m.d.sync += accumulator.eq(total)
                    pair_totals.append(total)
                    codes.append(bases.coefficients[i][n])
            totals.append(constant_weighted_sum(m, f"pe{j}_combine", pair_totals, codes))
        return totals


class MvauHandshake(HandshakeModel):
    """Mvau.elaborate's control, without the data: the fold counters (a pass's synapse folds counted on across the
    passes, s in 0..PASSES*SF-1; inputs are taken while s < SF of neuron fold 0), whether the data stage holds a row
    group's last synapse fold (`finishing`), and the output register's valid."""

    def __init__(self, *, neuron_folds: int, synapse_folds: int, passes: int = 1):
        self._neuron_folds, self._synapse_folds = neuron_folds, synapse_folds
        self._row_steps = passes * synapse_folds
        self._neuron_fold = self._synapse_fold = 0
        self._finishing = False  # staged & staged_last
        self.valid = False

    def _loading(self) -> bool:
        return self._neuron_fold == 0 and self._synapse_fold < self._synapse_folds

    # ready and clock are stepped for every cycle of every image of a whole network's cycle analysis: `advance`
    # (the data stage may move: not finishing, or the output register free) is written out in both.
    def ready(self, out_ready: bool) -> bool:
        return self._loading() and (not self._finishing or not self.valid or out_ready)

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        # No handshake: an issuing data stage counts synapse folds until its row group's last one (which may change
        # ready) and a finishing one fills the output register; anything else waits.
        if self._finishing:
            return 1 if not self.valid or out_ready else FOREVER
        return self._row_steps - self._synapse_fold if not self._loading() else FOREVER

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        if not self._finishing and not self._loading():
            self._synapse_fold += cycles

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        advance = not self._finishing or not self.valid or out_ready
        if self.valid and out_ready:
            self.valid = False
        if self._finishing and advance:  # advance here means the output register is free
            self.valid = True
        if advance:
            issue = not self._loading() or in_valid
            last = self._synapse_fold == self._row_steps - 1
            self._finishing = issue and last
            if issue:
                if last:
                    self._synapse_fold = 0
                    self._neuron_fold = (self._neuron_fold + 1) % self._neuron_folds
                else:
                    self._synapse_fold += 1
