"""Multi-threshold unit: integer accumulators in, output levels out, by a pipelined binary search.

Channel c of an image has thresholds t[c, 0..T-1] (non-decreasing) and a direction; its output level is the number
of k with key >= t[c, k], where key = acc, or -acc for a descending channel (hbnn.compiler.multithreshold.Steps is
the reference). T = 1 is a sign; T = 255 an int8 requantization. With T padded to 2^N - 1, the level is found in N
compare stages, most significant bit first, as FINN's RTL thresholding does: stage s decides bit N-1-s and needs
only the 2^s thresholds that the bits above it can select, so each stage has its own small memory per lane.

Streams: i_stream carries PE accumulators per transfer (channels f*PE .. f*PE+PE-1 in transfer f of each group of
C/PE), o_stream PE codes, level + output_base (0 for a sign: 1 means +1; -128 for int8 codes -128..127). Timing: one transfer per cycle; a transfer accepted at cycle a leaves at cycle
a + LATENCY, LATENCY = N + 1 (N compare stages, then the output register). The whole pipeline stalls while the
output register is full and not taken.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .handshake import FOREVER, HandshakeModel
from .parameters import check_divides, check_positive_int
from .rom import rom

__all__ = ["MultiThreshold", "MultiThresholdHandshake"]


class MultiThreshold(wiring.Component):
    def __init__(self, *, thresholds, descending, pe: int, accumulator_bits: int, output_base: int = 0,
                 output_shape=None):
        try:
            thresholds, descending = self._validate(thresholds, descending, pe, accumulator_bits)
            if not isinstance(output_base, int) or isinstance(output_base, bool):
                raise TypeError(f"output_base must be an integer, not {output_base!r}")
            output_shape = self._validate_output_shape(output_shape, output_base, thresholds.shape[1])
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        channels, count = thresholds.shape
        self._pe = pe
        self._accumulator_bits = accumulator_bits
        self._stages = max(1, int(count).bit_length())  # 2^N - 1 >= T
        # Keys are acc or -acc: -2^(w-1)+1 .. 2^(w-1), in w+1 bits. Thresholds outside that range mean "always"
        # or "never"; clipping them to key_min and key_max + 1 keeps every comparison and fits w+1 bits.
        key_min, key_max = -(1 << (accumulator_bits - 1)), 1 << (accumulator_bits - 1)
        padded = np.full((channels, (1 << self._stages) - 1), key_max + 1, dtype=np.int64)
        padded[:, :count] = np.clip(thresholds, key_min, key_max + 1)
        self._thresholds = padded
        self._levels = count + 1
        self._descending = descending
        self._output_base = output_base
        self._output_shape = output_shape
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(signed(accumulator_bits), pe))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._output_shape, pe))),
        })

    @staticmethod
    def _validate(thresholds, descending, pe, accumulator_bits):
        thresholds = np.asarray(thresholds, dtype=np.int64)
        if thresholds.ndim != 2 or 0 in thresholds.shape:
            raise ValueError(f"thresholds must be a non-empty (channels, T) array, not shape {thresholds.shape}")
        if (np.diff(thresholds, axis=1) < 0).any():
            raise ValueError("each channel's thresholds must be non-decreasing")
        descending = np.asarray(descending, dtype=np.bool_)
        if descending.shape != thresholds.shape[:1]:
            raise ValueError(f"descending must have one flag per channel ({thresholds.shape[0]}), "
                             f"not shape {descending.shape}")
        check_positive_int("pe", pe)
        check_positive_int("accumulator_bits", accumulator_bits)
        check_divides("pe", pe, thresholds.shape[0], f"the {thresholds.shape[0]} channels")
        return thresholds, descending

    @staticmethod
    def _validate_output_shape(output_shape, output_base, count):
        # Output codes base .. base + T: levels for a sign (base 0: bit 1 means +1), int8 codes for base -128. A
        # wider shape lets fewer levels feed a wider consumer, e.g. 2-bit codes into an int8 Mvau.
        codes = range(output_base, output_base + count + 1)
        if output_shape is None:
            return Shape.cast(codes)
        shape = Shape.cast(output_shape)
        low, high = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed else \
            (0, (1 << shape.width) - 1)
        if codes[0] < low or codes[-1] > high:
            raise ValueError(f"output_shape {shape!r} cannot hold the codes {codes[0]}..{codes[-1]}")
        return shape

    @property
    def pe(self) -> int:
        return self._pe

    @property
    def accumulator_bits(self) -> int:
        return self._accumulator_bits

    @property
    def channels(self) -> int:
        return self._thresholds.shape[0]

    @property
    def stages(self) -> int:
        """Compare stages N; output levels are N-bit."""
        return self._stages

    @property
    def output_shape(self) -> Shape:
        """Shape of one output element: the level plus output_base (the codes' own range unless given)."""
        return self._output_shape

    @property
    def output_base(self) -> int:
        return self._output_base

    @property
    def latency(self) -> int:
        """Cycles from a transfer's input handshake to its output handshake, nothing stalled."""
        return self._stages + 1

    @property
    def interval(self) -> int:
        """Cycles between transfers, streaming undisturbed."""
        return 1

    def handshake_model(self) -> MultiThresholdHandshake:
        """A fresh cycle-level model of this unit's valid/ready protocol (hbnn.hw.handshake)."""
        return MultiThresholdHandshake(stages=self._stages)

    def _stage_words(self, stage: int, lane: int) -> list[int]:
        """Stage s, lane j, address f * 2^s + m: threshold index (m << (bit+1)) + 2^bit - 1, bit = N-1-s."""
        bit = self._stages - 1 - stage
        folds = self.channels // self.pe
        width = self._accumulator_bits + 1
        words = []
        for fold in range(folds):
            channel = fold * self.pe + lane
            for m in range(1 << stage):
                words.append(int(self._thresholds[channel, (m << (bit + 1)) + (1 << bit) - 1]) & ((1 << width) - 1))
        return words

    def elaborate(self, platform) -> Module:
        m = Module()
        pe, stages = self.pe, self._stages
        folds = self.channels // pe
        key_shape = signed(self._accumulator_bits + 1)
        advance = Signal()  # the pipeline moves this cycle; low while a full output register is not taken
        m.d.comb += [advance.eq(~self.o_stream.valid | self.o_stream.ready), self.i_stream.ready.eq(advance)]

        fold = Signal(range(max(folds, 2)))  # channel group of the next input transfer
        accepted = self.i_stream.valid & self.i_stream.ready
        with m.If(accepted):
            m.d.sync += fold.eq(Mux(fold == folds - 1, 0, fold + 1))

        # Descending flags per fold, read with stage 0's thresholds. Memories are at least two words deep: a
        # one-word memory has a zero-width address, which the Verilog backend writes as [-1:0].
        m.submodules.descending = descending = rom(
            pe, max(folds, 2), [sum(int(self._descending[f * pe + j]) << j for j in range(pe)) for f in range(folds)],
            style_depth=folds)
        descending_port = descending.read_port()
        m.d.comb += [descending_port.en.eq(advance), descending_port.addr.eq(fold)]

        # Stage registers: valid, fold, and per lane the key (raw accumulator in stage 0) and the level so far.
        valid = [Signal(name=f"s{s}_valid") for s in range(stages)]
        fold_at = [Signal(range(max(folds, 2)), name=f"s{s}_fold") for s in range(stages)]
        keys = [[Signal(key_shape, name=f"s{s}_key{j}") for j in range(pe)] for s in range(stages)]
        levels = [[Signal(stages, name=f"s{s}_level{j}") for j in range(pe)] for s in range(stages)]
        results = [[Signal(stages, name=f"s{s}_result{j}") for j in range(pe)] for s in range(stages)]
        compared_keys = [[Signal(key_shape, name=f"s{s}_cmpkey{j}") for j in range(pe)] for s in range(stages)]

        with m.If(advance):
            m.d.sync += [valid[0].eq(accepted), fold_at[0].eq(fold)]
            m.d.sync += [keys[0][j].eq(self.i_stream.payload[j]) for j in range(pe)]
            m.d.sync += [levels[0][j].eq(0) for j in range(pe)]
            for s in range(1, stages):
                m.d.sync += [valid[s].eq(valid[s - 1]), fold_at[s].eq(fold_at[s - 1])]
                m.d.sync += [keys[s][j].eq(compared_keys[s - 1][j]) for j in range(pe)]
                m.d.sync += [levels[s][j].eq(results[s - 1][j]) for j in range(pe)]

        for s in range(stages):
            bit = stages - 1 - s
            for j in range(pe):
                memory = rom(self._accumulator_bits + 1, max(folds << s, 2), self._stage_words(s, j),
                             style_depth=folds << s)
                m.submodules[f"stage{s}_lane{j}"] = memory
                port = memory.read_port()
                m.d.comb += port.en.eq(advance)
                # The address comes from the previous stage's result, so the data arrives with that result.
                if s == 0:
                    m.d.comb += [port.addr.eq(fold),
                                 compared_keys[s][j].eq(Mux(descending_port.data[j], -keys[s][j], keys[s][j]))]
                else:
                    m.d.comb += [port.addr.eq(Cat(results[s - 1][j][bit + 1:], fold_at[s - 1])),
                                 compared_keys[s][j].eq(keys[s][j])]
                reached = compared_keys[s][j] >= port.data.as_signed()
                m.d.comb += results[s][j].eq(levels[s][j] | (reached << bit))

        # Output register.
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(advance & valid[stages - 1]):
            m.d.sync += self.o_stream.valid.eq(1)
            m.d.sync += [self.o_stream.payload[j].eq(results[stages - 1][j] + self._output_base) for j in range(pe)]
        return m


class MultiThresholdHandshake(HandshakeModel):
    """MultiThreshold.elaborate's control, without the data: the N stage valids (a bit mask, stage s in bit s) and
    the output register's valid. Everything moves together unless a full output register is not taken."""

    def __init__(self, *, stages: int):
        self._last = stages - 1
        self._mask = (1 << stages) - 1
        self._stage_valid = 0
        self.valid = False

    def ready(self, out_ready: bool) -> bool:
        return not self.valid or out_ready

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        # No handshake: a held output stalls everything; else the stages shift in nothing until the oldest reaches
        # the output register.
        if self.valid or not self._stage_valid:
            return FOREVER
        return self._last - (self._stage_valid.bit_length() - 1) + 1

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        if not self.valid:
            self._stage_valid = (self._stage_valid << cycles) & self._mask

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        if self.valid and out_ready:
            self.valid = False
        elif self.valid:
            return  # stalled
        if self._stage_valid >> self._last:
            self.valid = True
        self._stage_valid = ((self._stage_valid << 1) | bool(in_valid)) & self._mask
