"""Stream FIFO between dataflow stages: the same transfers out as in, `depth` of them held.

Why: an Mvau takes its input transfers only during its first neuron fold, so between images its producer's single
output register fills and the producer stalls; chained Mvaus then couple and stream slower than the slowest of them.
A FIFO in front of the consumer (FINN puts one between layers) lets the producer run ahead by `depth` transfers.

Built on amaranth.lib.fifo.SyncFIFOBuffered, not SyncFIFO:
- its output is registered: valid is a register and the payload the memory's synchronous read register, where
  SyncFIFO reads its memory asynchronously, straight onto the output (and an asynchronous read cannot go to block
  RAM at all);
- its input ready is `not full` from state alone, as SyncFIFO's is, so the ready chain from the sink back to the
  source ends here: the stages after a FIFO add no combinational path to the stages before it.
The price is a cycle of latency (2 cycles, SyncFIFO's 1). Neither takes a transfer into a full FIFO in the cycle an
entry leaves it: that is what keeps the ready off the downstream ready.

Depth D holds D transfers: D - 1 in a memory with a registered read port, one in the output register (D = 1 is that
register alone). D = 2 is built as SyncFIFOBuffered(3) with its input held to one memory entry, since the one-word
memory of SyncFIFOBuffered(2) would have a zero-width address, which the Verilog backend writes as [-1:0]
(Verilator's ASCRANGE); its handshakes are SyncFIFOBuffered(2)'s exactly (the same model, the same tests).
The memory goes to LUT RAM when shallow and block RAM when deep, as hbnn.hw.memory_style decides. amaranth.lib.fifo
takes no memory attributes, so they are set on its memory once the FIFO has built it (see `_StyledSyncFIFOBuffered`).

Timing, nothing stalled: a transfer taken at cycle a can leave at a + LATENCY (2; 1 for D = 1). One transfer per
cycle needs D >= 3; D = 1 and D = 2 take a transfer every other cycle (D = 2: the one memory word is free again
only the cycle after it is read).
"""
from __future__ import annotations

from amaranth.hdl import Module, Shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .handshake import FOREVER, HandshakeModel
from .memory_style import memory_attrs
from .parameters import check_positive_int

__all__ = ["StreamFifo", "StreamFifoHandshake"]


class _StyledSyncFIFOBuffered(SyncFIFOBuffered):
    """SyncFIFOBuffered with memory_style's ram_style on its memory. The FIFO makes its memory in elaborate, with
    no way to pass attributes, so they are added to that memory's attribute dict (lib.memory.Memory.attrs, read
    when the memory elaborates) right after: this leans on the FIFO naming its memory "storage" (Amaranth 0.5)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if self.depth > 1:
            storage = m.submodules.storage
            if not isinstance(storage, Memory):
                raise TypeError(f"SyncFIFOBuffered's storage is a {type(storage).__name__}, not a Memory")
            storage.attrs.update(memory_attrs(self.depth - 1, writable=True))
        return m


class StreamFifo(wiring.Component):
    def __init__(self, *, element, elements: int, depth: int):
        try:
            check_positive_int("elements", elements)
            check_positive_int("depth", depth)
            element = Shape.cast(element)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        self._element, self._elements, self._depth = element, elements, depth
        layout = data.ArrayLayout(element, elements)
        super().__init__({
            "i_stream": In(stream.Signature(layout)),
            "o_stream": Out(stream.Signature(layout)),
        })

    @property
    def element(self) -> Shape:
        return self._element

    @property
    def elements(self) -> int:
        return self._elements

    @property
    def depth(self) -> int:
        """Transfers held: D - 1 in memory, one in the output register."""
        return self._depth

    @property
    def memory_depth(self) -> int:
        """Words of the FIFO's memory (0: the output register alone; 2 for depth 2, of which one is used)."""
        return self._fifo_depth - 1

    @property
    def _fifo_depth(self) -> int:
        return 3 if self._depth == 2 else self._depth

    @property
    def latency(self) -> int:
        """Cycles from an input handshake into the empty FIFO to the first cycle that transfer can leave: written
        into memory, then read into the output register (one cycle for the output register alone, D = 1)."""
        return 1 if self._depth == 1 else 2

    @property
    def interval(self) -> int:
        """Cycles between transfers, streaming undisturbed: 1 from depth 3."""
        return 1 if self._depth >= 3 else 2

    def handshake_model(self) -> StreamFifoHandshake:
        """A fresh cycle-level model of this FIFO's valid/ready protocol (hbnn.hw.handshake)."""
        return StreamFifoHandshake(depth=self._depth)

    def elaborate(self, platform) -> Module:
        m = Module()
        width = Shape.cast(self.i_stream.payload.shape()).width
        m.submodules.fifo = fifo = _StyledSyncFIFOBuffered(width=width, depth=self._fifo_depth)
        # Depth 2: ready while the memory is empty (level counts the output register too), as SyncFIFOBuffered(2)'s
        # one-word memory would be; the FIFO's own w_rdy (two words free) then always holds.
        writable = fifo.w_rdy if self._fifo_depth == self._depth else fifo.level == fifo.r_rdy
        m.d.comb += [
            fifo.w_data.eq(self.i_stream.payload.as_value()),
            fifo.w_en.eq(self.i_stream.valid & writable),
            self.i_stream.ready.eq(writable),
            self.o_stream.payload.as_value().eq(fifo.r_data),
            self.o_stream.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o_stream.ready),
        ]
        return m


class StreamFifoHandshake(HandshakeModel):
    """SyncFIFOBuffered's control, without the data: how many entries the memory holds and the output register's
    valid. Ready is "memory not full", from state alone; the memory's oldest entry moves to the output register
    whenever that register is empty or being taken, so an entry written at cycle a is read at a + 1 and can leave
    at a + 2. Depth 1 is the output register alone: ready while it is empty."""

    def __init__(self, *, depth: int):
        self._inner_depth = depth - 1
        self._inner_level = 0
        self.valid = False

    @property
    def memory_level(self) -> int:
        """Transfers in the memory now (the output register's not counted)."""
        return self._inner_level

    def ready(self, out_ready: bool) -> bool:
        if self._inner_depth == 0:
            return not self.valid
        return self._inner_level != self._inner_depth

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        # No handshake: only an empty output register with entries behind it moves.
        return 1 if self._inner_depth and not self.valid and self._inner_level else FOREVER

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        pass

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        write = in_valid and self.ready(out_ready)
        if self._inner_depth == 0:
            if self.valid and out_ready:
                self.valid = False
            if write:
                self.valid = True
            return
        move = self._inner_level != 0 and (not self.valid or out_ready)  # memory -> output register
        self._inner_level += int(write) - int(move)
        if move:
            self.valid = True
        elif out_ready:
            self.valid = False
