"""The accelerator behind AXI4-Stream ports, as an AXI DMA (simple mode) on a Zynq feeds and drains it.

    s_axis (DMA words) -> width converter -> drop padding -> hbnn_top -> append padding -> width converter -> m_axis

Frames follow hbnn.hw.dma_layout: each image is whole DMA words, its transfers packed in the low bytes, zero padding
after the last. The accelerator itself (the build's `hbnn_top.v`) is instantiated by name, not elaborated again, so
the wrapper is generated in a moment and the accelerator's Verilog is the build's, byte for byte.

TLAST: AXI DMA's stream-to-memory channel ends a transfer on TLAST, so the last output word of a batch must carry
it. The batch is what the memory-to-stream channel sent, and that channel sets TLAST on its last word; the top
remembers, per image in flight, whether its input carried TLAST (a small FIFO of flags, written when an image's
last word arrives and read when its last output word leaves) and raises m_axis_tlast on that image's last output
word. No register needs writing before a batch. The flag FIFO holds `images_in_flight` images; when full, the top
holds the next image's last input word until an image has left, which costs throughput only if the accelerator
holds more images than that (the packaging sizes it from the cycle model: latency / interval plus slack).

Ports follow Xilinx's interface conventions (s_axis_*/m_axis_*, ap_clk, ap_rst_n active low), with
X_INTERFACE_INFO / X_INTERFACE_PARAMETER attributes, so that Vivado's IP integrator takes the module as a
reference with two AXI4-Stream interfaces on one clock and reset. TKEEP of the output is all ones: every output
byte is meant (padding included, the frame is whole words); the input's TKEEP is not read.
"""
from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, Mux, ResetSignal, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .dma_layout import DmaLayout
from .frame_padding import AppendPadding, DropPadding
from .width_converter import WidthConverter

__all__ = ["AxiStreamTop", "AXIS_TOP_NAME", "ACCELERATOR_PORTS"]

AXIS_TOP_NAME = "hbnn_axis"
# The accelerator's ports as Amaranth writes a Dataflow(Graph) component's signature to Verilog.
ACCELERATOR_PORTS = ("clk", "rst", "i_stream__valid", "i_stream__ready", "i_stream__payload",
                     "o_stream__valid", "o_stream__ready", "o_stream__payload")


def _stream_members(prefix: str, direction, flipped, data_bits: int, *, keep: bool) -> dict:
    members = {f"{prefix}_tdata": direction(data_bits), f"{prefix}_tvalid": direction(1),
               f"{prefix}_tready": flipped(1), f"{prefix}_tlast": direction(1)}
    if keep:
        members[f"{prefix}_tkeep"] = direction(data_bits // 8)
    return members


class AxiStreamTop(wiring.Component):
    """input_layout / output_layout: the accelerator's input and output streams framed in DMA words;
    accelerator: the module name of the accelerator's Verilog (its ports are ACCELERATOR_PORTS);
    clock_hz: the fabric clock, for Vivado's FREQ_HZ."""

    def __init__(self, input_layout: DmaLayout, output_layout: DmaLayout, *, accelerator: str = "hbnn_top",
                 images_in_flight: int = 8, clock_hz: int = 100_000_000):
        if images_in_flight < 2:
            self._MustUse__silence = True
            raise ValueError(f"images_in_flight must be at least 2, not {images_in_flight!r}")
        self.input_layout, self.output_layout = input_layout, output_layout
        self.accelerator, self.images_in_flight = accelerator, images_in_flight
        super().__init__({
            "ap_clk": In(1), "ap_rst_n": In(1),
            **_stream_members("s_axis", In, Out, 8 * input_layout.dma_bytes, keep=False),
            **_stream_members("m_axis", Out, In, 8 * output_layout.dma_bytes, keep=True),
        })
        self._annotate(clock_hz)

    def _annotate(self, clock_hz: int) -> None:
        """Vivado's interface attributes on the ports."""
        self.ap_clk.attrs.update(X_INTERFACE_INFO="xilinx.com:signal:clock:1.0 ap_clk CLK",
                                 X_INTERFACE_PARAMETER=f"ASSOCIATED_BUSIF s_axis:m_axis, ASSOCIATED_RESET "
                                                       f"ap_rst_n, FREQ_HZ {int(clock_hz)}")
        self.ap_rst_n.attrs.update(X_INTERFACE_INFO="xilinx.com:signal:reset:1.0 ap_rst_n RST",
                                   X_INTERFACE_PARAMETER="POLARITY ACTIVE_LOW")
        for name in self.signature.members:
            prefix, _, signal = name.partition("_axis_")
            if signal:  # s_axis_tdata -> interface s_axis, signal TDATA
                getattr(self, name).attrs["X_INTERFACE_INFO"] = (f"xilinx.com:interface:axis:1.0 {prefix}_axis "
                                                                 f"{signal.upper()}")

    def elaborate(self, platform) -> Module:
        m = Module()
        m.domains.sync = domain = ClockDomain(local=True)
        m.d.comb += [domain.clk.eq(self.ap_clk), domain.rst.eq(~self.ap_rst_n)]
        into, out = self.input_layout, self.output_layout

        m.submodules.flags = flags = fifo.SyncFIFOBuffered(width=1, depth=self.images_in_flight)

        # In: DMA words -> transfers of `transfer_bytes` -> without the frame's padding -> the accelerator.
        m.submodules.unpack = unpack = WidthConverter(element=unsigned(8), inputs=into.dma_bytes,
                                                      outputs=into.transfer_bytes)
        word_in = Signal(range(into.image_words))
        last_word_in = word_in == into.image_words - 1
        tlast_seen = Signal()
        open_in = ~last_word_in | flags.w_rdy  # an image's last word waits for room for its flag
        taken_in = self.s_axis_tvalid & self.s_axis_tready
        m.d.comb += [
            unpack.i_stream.payload.as_value().eq(self.s_axis_tdata),
            unpack.i_stream.valid.eq(self.s_axis_tvalid & open_in),
            self.s_axis_tready.eq(unpack.i_stream.ready & open_in),
            flags.w_data.eq(tlast_seen | self.s_axis_tlast),
            flags.w_en.eq(taken_in & last_word_in),
        ]
        with m.If(taken_in):
            m.d.sync += [word_in.eq(Mux(last_word_in, 0, word_in + 1)),
                         tlast_seen.eq(~last_word_in & (tlast_seen | self.s_axis_tlast))]
        to_accelerator = self._framing(m, unpack.o_stream, into, DropPadding, "drop_padding")

        # The accelerator, as the build wrote it.
        transfer_out = data.ArrayLayout(unsigned(8), out.transfer_bytes)
        from_accelerator = stream.Signature(transfer_out).create(path=("from_accelerator",))
        payload_out = Signal(out.stream.payload_bits)
        m.d.comb += from_accelerator.payload.as_value().eq(payload_out)  # zero above the payload
        m.submodules.accelerator = Instance(
            self.accelerator,
            i_clk=ClockSignal(), i_rst=ResetSignal(),
            i_i_stream__valid=to_accelerator.valid, o_i_stream__ready=to_accelerator.ready,
            i_i_stream__payload=to_accelerator.payload.as_value()[:into.stream.payload_bits],
            o_o_stream__valid=from_accelerator.valid, i_o_stream__ready=from_accelerator.ready,
            o_o_stream__payload=payload_out,
        )

        # Out: the accelerator -> with the frame's padding -> DMA words, TLAST on a batch's last.
        framed = self._framing(m, from_accelerator, out, AppendPadding, "append_padding")
        m.submodules.pack = pack = WidthConverter(element=unsigned(8), inputs=out.transfer_bytes,
                                                  outputs=out.dma_bytes)
        wiring.connect(m, framed, pack.i_stream)
        word_out = Signal(range(out.image_words))
        last_word_out = word_out == out.image_words - 1
        open_out = ~last_word_out | flags.r_rdy  # never taken before its flag is there (it always is: see above)
        given_out = self.m_axis_tvalid & self.m_axis_tready
        m.d.comb += [
            self.m_axis_tdata.eq(pack.o_stream.payload.as_value()),
            self.m_axis_tkeep.eq(-1),
            self.m_axis_tvalid.eq(pack.o_stream.valid & open_out),
            pack.o_stream.ready.eq(self.m_axis_tready & open_out),
            self.m_axis_tlast.eq(last_word_out & flags.r_data),
            flags.r_en.eq(given_out & last_word_out),
        ]
        with m.If(given_out):
            m.d.sync += word_out.eq(Mux(last_word_out, 0, word_out + 1))
        return m

    @staticmethod
    def _framing(m: Module, source, layout: DmaLayout, padding, name: str):
        """`source` through `padding` (DropPadding or AppendPadding) when the frame has padding transfers."""
        if not layout.pad_transfers:
            return source
        m.submodules[name] = unit = padding(source.payload.shape(), keep=layout.stream.transfers,
                                            pad=layout.pad_transfers)
        wiring.connect(m, source, unit.i_stream)
        return unit.o_stream

def accelerator_blackbox(name: str, input_bits: int, output_bits: int) -> str:
    """A Verilog black box with the accelerator's ports: synthesizes or lints the top without the accelerator."""
    widths = {"i_stream__payload": input_bits, "o_stream__payload": output_bits}
    outputs = {"i_stream__ready", "o_stream__valid", "o_stream__payload"}
    declarations = "".join(
        f"  {'output' if port in outputs else 'input'} {f'[{widths[port] - 1}:0] ' if port in widths else ''}"
        f"{port};\n" for port in ACCELERATOR_PORTS)
    return f"(* blackbox *)\nmodule {name}({', '.join(ACCELERATOR_PORTS)});\n{declarations}endmodule\n"
