"""Maps a compiled graph onto the Amaranth components of hbnn.hw, node by node along the chain:

- SlidingWindow -> hw.sliding_window.SlidingWindow (line buffer, SIMD channels of one pixel per transfer, SIMD the
  reading layer's);
- Dense -> Mvau, one vector per output pixel;
- MultiThreshold -> hw.threshold.MultiThreshold on the accumulators (or pool sums) before it;
- Pool -> a depthwise SlidingWindow (each window's K*K pixels of one channel group in a row) and a WindowReduce;
- Flatten -> nothing: the stream's order is already the flattened one.

A WidthConverter goes wherever one stage's elements per transfer differ from the next one's, and a StreamFifo in
front of every Mvau that no sliding window feeds (a window's line buffer already holds what the layer is not yet
taking). Only chains are mapped so far (each value read by the next node only); fork/join streams come with
residuals.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import wiring

from ..hw.dataflow import Dataflow
from ..hw.layout import StreamFormat
from ..hw.mvau import Mvau
from ..hw.pool import WindowReduce
from ..hw.sliding_window import SlidingWindow as WindowUnit
from ..hw.stream_fifo import StreamFifo
from ..hw.threshold import MultiThreshold as ThresholdUnit
from ..hw.verilog_export import to_verilog
from ..hw.width_converter import WidthConverter
from .check import GraphError, check_graph
from .ir import Bipolar, Dense, Flatten, Graph, MultiThreshold, Pool, SlidingWindow

__all__ = ["TOP_NAME", "Stage", "map_stages", "emit_verilog", "stream_format", "stream_formats"]

TOP_NAME = "hbnn_top"
MAPPED = (SlidingWindow, Dense, MultiThreshold, Pool, Flatten)


@dataclass(frozen=True, eq=False)
class Stage:
    """One component of the dataflow chain and the graph node it implements (None for a width converter or FIFO)."""
    node: str | None
    component: wiring.Component
    transfers_in: int  # input transfers per image
    transfers_out: int  # output transfers per image


def element_shape(dtype) -> Shape:
    return unsigned(1) if isinstance(dtype, Bipolar) else signed(dtype.width)


def element_code(dtype, code: int) -> int:
    """A code as the stream element holds it: a bipolar +1 is the bit 1, -1 the bit 0."""
    return int(code > 0) if isinstance(dtype, Bipolar) else code


def stream_format(dtype, elements: int, transfers: int) -> StreamFormat:
    if isinstance(dtype, Bipolar):
        return StreamFormat("bipolar", elements, 1, transfers)
    return StreamFormat("signed" if dtype.signed else "unsigned", elements, dtype.width, transfers)


def _chain(graph: Graph) -> list:
    """The nodes in order, checked to form one chain from the input to the one output."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise GraphError(f"hardware maps one input and one output so far; the graph has {len(graph.inputs)} and "
                         f"{len(graph.outputs)}")
    previous = graph.inputs[0][0]
    for node in graph.nodes:
        if node.inputs != (previous,):
            raise GraphError(f"layer {node.name!r} reads {list(node.inputs)}, not the previous value {previous!r}: "
                             "only chains are mapped to hardware so far")
        if not isinstance(node, MAPPED):
            raise GraphError(f"layer {node.name!r} ({type(node).__name__}) has no hardware mapping; run the compile "
                             "pipeline first (it folds channel ops and quantizers into thresholds)")
        previous = node.name
    if graph.outputs != (previous,):
        raise GraphError(f"the output {graph.outputs[0]!r} is not the chain's last value {previous!r}")
    return list(graph.nodes)


def _window(node, element: Shape, shape, simd: int, pad_value: int, depthwise: bool) -> Stage:
    channels, height, width = shape
    unit = WindowUnit(element=element, channels=channels, height=height, width=width,
                      kernel=node.kernel, stride=node.stride, padding=node.padding, simd=simd,
                      pad_value=pad_value, depthwise=depthwise)
    return Stage(node.name if not depthwise else f"{node.name}.window", unit, unit.input_format.transfers,
                 unit.output_format.transfers)


def map_stages(graph: Graph) -> list[Stage]:
    types = check_graph(graph)
    nodes = _chain(graph)
    stages: list[Stage] = []
    for index, node in enumerate(nodes):
        dtype = types[node.inputs[0]].dtype
        # What the stream carries: the producing stage's elements (an accumulator may be wider than the IR's bound).
        element = _elements(stages[-1].component, "o_stream")[0] if stages else element_shape(dtype)
        if isinstance(node, SlidingWindow):
            reader = nodes[index + 1] if index + 1 < len(nodes) else None
            if not isinstance(reader, Dense) or reader.folding is None:
                raise GraphError(f"sliding window {node.name!r} must feed a folded layer (run set_folding first)")
            _append(stages, _window(node, element, types[node.inputs[0]].shape, reader.folding.simd,
                                    element_code(dtype, node.pad_code), depthwise=False), fifo=False)
        elif isinstance(node, Dense):
            if node.folding is None:
                raise GraphError(f"layer {node.name!r} has no folding; run set_folding first")
            _, height, width = types[node.name].shape
            mvau = Mvau(weights=node.weights, weight_kind=node.weight_kind,
                        input_kind="bipolar" if isinstance(dtype, Bipolar) else "int8",
                        pe=node.folding.pe, simd=node.folding.simd, vectors=height * width, bias=node.bias)
            windowed = bool(stages) and isinstance(stages[-1].component, WindowUnit)
            _append(stages, Stage(node.name, mvau, mvau.input_format.transfers, mvau.output_format.transfers),
                    fifo=not windowed)
        elif isinstance(node, MultiThreshold):
            if not stages or not isinstance(stages[-1].component, (Mvau, WindowReduce)):
                raise GraphError(f"threshold {node.name!r} does not follow a layer's accumulators or a pool's sums")
            element, lanes = _elements(stages[-1].component, "o_stream")
            unit = ThresholdUnit(thresholds=node.thresholds, descending=node.descending, pe=lanes,
                                 accumulator_bits=element.width, output_base=node.base,
                                 output_shape=element_shape(node.dtype))
            stages.append(Stage(node.name, unit, stages[-1].transfers_out, stages[-1].transfers_out))
        elif isinstance(node, Pool):
            if node.simd is None:
                raise GraphError(f"pool {node.name!r} has no SIMD; run set_folding first")
            lowest = 0 if isinstance(dtype, Bipolar) else -(1 << (element.width - 1))  # the bit 0 is -1
            _append(stages, _window(node, element, types[node.inputs[0]].shape, node.simd,
                                    lowest if node.kind == "max" else 0, depthwise=True), fifo=False)
            channels, height, width = types[node.name].shape
            reduce = WindowReduce(element=element, simd=node.simd, window=node.area, kind=node.kind,
                                  groups=height * width * channels // node.simd)
            stages.append(Stage(node.name, reduce, reduce.input_format.transfers, reduce.output_format.transfers))
        # Flatten: the wire order is the flattened order already.
    return stages


def _elements(component, stream: str) -> tuple[Shape, int]:
    layout = component.signature.members[stream].signature.members["payload"].shape
    return layout.elem_shape, layout.length


def fifo_depth(transfers: int) -> int:
    """One vector of a matrix-vector unit's input transfers, at least 3 (a shallower buffered FIFO refills only every
    other cycle)."""
    return max(3, transfers)


def _append(stages: list[Stage], stage: Stage, *, fifo: bool) -> None:
    """Appends a stage, with a width converter in front where the previous stage's elements per transfer differ,
    and (for a matrix-vector unit with `fifo`) a FIFO of one vector's input transfers. The unit takes its input only
    during its first neuron fold; without the FIFO its producer stalls during the other folds, and chained layers
    slow each other down (e.g. two 32-cycle layers streaming at 48 cycles per image, tests/hw/test_dataflow.py)."""
    if stages:
        element, produced = _elements(stages[-1].component, "o_stream")
        _, consumed = _elements(stage.component, "i_stream")
        if produced != consumed:
            converter = WidthConverter(element=element, inputs=produced, outputs=consumed)
            total = stages[-1].transfers_out * produced
            stages.append(Stage(None, converter, stages[-1].transfers_out, total // consumed))
        if fifo:
            depth = fifo_depth(stage.component.synapse_folds)
            stages.append(Stage(None, StreamFifo(element=element, elements=consumed, depth=depth),
                                stage.transfers_in, stage.transfers_in))
    stages.append(stage)


def stream_formats(graph: Graph, stages: list[Stage]) -> tuple[StreamFormat, StreamFormat]:
    """(input, output) formats of the mapped chain: the input's codes SIMD at a time, the last stage's elements (a
    matrix-vector unit's accumulators are as wide as its lanes need, which may differ from the IR's bound)."""
    types = check_graph(graph)
    (_, input_tensor), = graph.inputs
    first, last = stages[0], stages[-1]
    element, elements = _elements(last.component, "o_stream")
    output_type = types[graph.outputs[0]].dtype
    output = (stream_format(output_type, elements, last.transfers_out) if isinstance(output_type, Bipolar)
              else StreamFormat("signed" if element.signed else "unsigned", elements, element.width,
                                last.transfers_out))
    _, simd = _elements(first.component, "i_stream")
    return stream_format(input_tensor.dtype, simd, first.transfers_in), output


def emit_verilog(accelerator: Dataflow) -> str:
    return to_verilog(accelerator, TOP_NAME)
