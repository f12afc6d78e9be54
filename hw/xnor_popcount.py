"""XNOR-popcount matrix-vector unit: binary weights times a bipolar vector, PE rows x SIMD columns per cycle."""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .parameters import check_divides, check_positive_int
from .popcount import popcount

__all__ = ["XnorPopcountMVU", "weight_words", "threshold_words", "threshold_width"]


def weight_words(weight_bits: np.ndarray, pe: int, simd: int) -> list[int]:
    """Memory word at address nf * SF + sf holds rows nf*PE..nf*PE+PE-1, columns sf*SIMD..; PE j in bits j*SIMD.."""
    rows, columns = weight_bits.shape
    words = []
    for nf in range(rows // pe):
        for sf in range(columns // simd):
            word = 0
            for j in range(pe):
                for k in range(simd):
                    if weight_bits[nf * pe + j, sf * simd + k]:
                        word |= 1 << (j * simd + k)
            words.append(word)
    return words


def threshold_width(in_features: int) -> int:
    """Bits of a popcount threshold: 0..MW+1 (MW+1 meaning never)."""
    return (in_features + 1).bit_length()


def threshold_words(thresholds: np.ndarray, pe: int, width: int) -> list[int]:
    """Memory word nf holds the thresholds of rows nf*PE..nf*PE+PE-1, row j in bits j*width.."""
    return [sum(int(thresholds[nf * pe + j]) << (j * width) for j in range(pe))
            for nf in range(len(thresholds) // pe)]


class XnorPopcountMVU(wiring.Component):
    """One binary fully-connected layer.

    Input: one bipolar vector per transfer (bit i set means element i is +1). For each output row the unit counts
    p = popcount(xnor(w_row, x)). With `thresholds` the output is a bipolar vector, bit r = p_r >= thresholds[r];
    without, the output is the signed accumulators 2 p_r - MW (an ArrayLayout, element 0 in the low bits).

    Timing (see hbnn.compiler.cycles): the input is latched in the handshake cycle; the next (MH/PE)*(MW/SIMD) cycles
    each issue one weight-memory read; a data stage one cycle behind XNORs, popcounts and accumulates; the output
    register is loaded as the last word leaves the data stage. The next input is accepted while the last word is
    issued. If the output register is still full then, the whole unit stalls (back-pressure).
    """

    def __init__(self, *, weight_bits, thresholds=None, pe: int, simd: int):
        try:
            weight_bits, thresholds = self._validate(weight_bits, thresholds, pe, simd)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        rows, columns = weight_bits.shape
        self._weight_bits = weight_bits
        self._thresholds = thresholds
        self._pe = pe
        self._simd = simd
        self._accumulator_shape = signed(columns.bit_length() + 1)
        if thresholds is None:
            output_shape = data.ArrayLayout(self._accumulator_shape, rows)
        else:
            output_shape = unsigned(rows)
        super().__init__({
            "i_stream": In(stream.Signature(unsigned(columns))),
            "o_stream": Out(stream.Signature(output_shape)),
        })

    @staticmethod
    def _validate(weight_bits, thresholds, pe, simd):
        weight_bits = np.asarray(weight_bits, dtype=np.bool_)
        if weight_bits.ndim != 2 or 0 in weight_bits.shape:
            raise ValueError(f"weight_bits must be a non-empty 2-D array, not shape {weight_bits.shape}")
        rows, columns = weight_bits.shape
        for name, value, size in (("pe", pe, rows), ("simd", simd, columns)):
            check_positive_int(name, value)
            check_divides(name, value, size, f"the layer dimension {size}")
        if thresholds is not None:
            thresholds = np.asarray(thresholds, dtype=np.int64)
            if thresholds.shape != (rows,) or thresholds.min() < 0 or thresholds.max() > columns + 1:
                raise ValueError(f"thresholds must be {rows} integers in 0..{columns + 1}")
        return weight_bits, thresholds

    @property
    def pe(self) -> int:
        return self._pe

    @property
    def simd(self) -> int:
        return self._simd

    @property
    def out_features(self) -> int:
        return self._weight_bits.shape[0]

    @property
    def in_features(self) -> int:
        return self._weight_bits.shape[1]

    @property
    def cycles(self) -> int:
        return (self.out_features // self.pe) * (self.in_features // self.simd)

    def elaborate(self, platform) -> Module:
        m = Module()
        pe, simd = self.pe, self.simd
        rows, columns = self.out_features, self.in_features
        neuron_folds, synapse_folds = rows // pe, columns // simd
        steps = neuron_folds * synapse_folds
        count_width = columns.bit_length()  # popcounts 0..MW
        thresholded = self._thresholds is not None
        lane_width = 1 if thresholded else self._accumulator_shape.width

        # Memories are at least two words deep: a one-word memory has a zero-width address, which the Verilog
        # backend writes as [-1:0]. The padding word is never read.
        m.submodules.weights = weights = Memory(shape=unsigned(pe * simd), depth=max(steps, 2),
                                                init=weight_words(self._weight_bits, pe, simd))
        weight_port = weights.read_port()
        if thresholded:
            thr_width = threshold_width(columns)
            m.submodules.thresholds = thresholds = Memory(
                shape=unsigned(pe * thr_width), depth=max(neuron_folds, 2),
                init=threshold_words(self._thresholds, pe, thr_width))
            threshold_port = thresholds.read_port()

        advance = Signal()  # the pipeline moves this cycle; low only while a finished result waits for the output
        m.d.comb += weight_port.en.eq(advance)
        if thresholded:
            m.d.comb += threshold_port.en.eq(advance)

        # Issue stage: input vector, step counters, one weight-memory read per cycle.
        vector = Signal(columns)
        busy = Signal()
        # Counters are at least one bit wide: a zero-width signal comes out of the Verilog backend as [-1:0].
        neuron_fold = Signal(range(max(neuron_folds, 2)))
        synapse_fold = Signal(range(max(synapse_folds, 2)))
        address = Signal(range(max(steps, 2)))
        issue_last = Signal()
        m.d.comb += [
            issue_last.eq(busy & (address == steps - 1)),
            weight_port.addr.eq(address),
            self.i_stream.ready.eq(advance & (~busy | issue_last)),
        ]
        if thresholded:
            m.d.comb += threshold_port.addr.eq(neuron_fold)

        # Data stage registers, aligned with the memory's registered read data.
        staged = Signal()
        staged_chunk = Signal(simd)
        staged_first = Signal()
        staged_row_end = Signal()
        staged_last = Signal()
        staged_fold = Signal(range(max(neuron_folds, 2)))

        with m.If(advance):
            m.d.sync += [
                staged.eq(busy),
                staged_chunk.eq(vector.word_select(synapse_fold, simd)),
                staged_first.eq(synapse_fold == 0),
                staged_row_end.eq(synapse_fold == synapse_folds - 1),
                staged_last.eq(issue_last),
                staged_fold.eq(neuron_fold),
            ]
            with m.If(busy):
                with m.If(synapse_fold == synapse_folds - 1):
                    m.d.sync += synapse_fold.eq(0)
                    with m.If(neuron_fold == neuron_folds - 1):
                        m.d.sync += neuron_fold.eq(0)
                    with m.Else():
                        m.d.sync += neuron_fold.eq(neuron_fold + 1)
                with m.Else():
                    m.d.sync += synapse_fold.eq(synapse_fold + 1)
                with m.If(issue_last):
                    m.d.sync += [address.eq(0), busy.eq(0)]
                with m.Else():
                    m.d.sync += address.eq(address + 1)
            with m.If(self.i_stream.valid & self.i_stream.ready):
                m.d.sync += [vector.eq(self.i_stream.payload), busy.eq(1)]

        # Data stage: XNOR, popcount, accumulate PE rows; at a row end, produce PE output lanes.
        accumulators = [Signal(count_width, name=f"acc{j}") for j in range(pe)]
        lanes = []
        for j in range(pe):
            word = weight_port.data[j * simd:(j + 1) * simd]
            total = Signal(count_width, name=f"total{j}")
            agreement = Signal(simd, name=f"pe{j}_xnor")  # a signal: bit selects of an expression repeat it
            m.d.comb += agreement.eq(~(word ^ staged_chunk))
            matches = popcount(agreement)
            m.d.comb += total.eq(matches + Mux(staged_first, 0, accumulators[j]))
            with m.If(advance & staged):
                m.d.sync += accumulators[j].eq(total)
            if thresholded:
                threshold = threshold_port.data[j * thr_width:(j + 1) * thr_width]
                lanes.append(total >= threshold)
            else:
                lane = Signal(self._accumulator_shape, name=f"lane{j}")
                m.d.comb += lane.eq(Cat(Const(0, 1), total).as_signed() - columns)  # 2p - MW
                lanes.append(lane)

        chunk_width = pe * lane_width
        result = Signal(rows * lane_width)  # lanes of the image in progress
        result_next = Signal(rows * lane_width)
        m.d.comb += result_next.eq(result)
        with m.If(staged & staged_row_end):
            m.d.comb += result_next.word_select(staged_fold, chunk_width).eq(Cat(*lanes))
        with m.If(advance):
            m.d.sync += result.eq(result_next)

        # Output register and back-pressure.
        output_free = ~self.o_stream.valid | self.o_stream.ready
        finishing = staged & staged_last
        m.d.comb += advance.eq(~finishing | output_free)
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(finishing & output_free):
            m.d.sync += [self.o_stream.payload.eq(result_next), self.o_stream.valid.eq(1)]
        return m
