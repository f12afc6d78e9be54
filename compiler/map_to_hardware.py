"""Maps a compiled graph onto the Amaranth components of hbnn.hw: one Mvau per Dense, one MultiThreshold per
MultiThreshold node, a WidthConverter wherever one stage's elements per transfer differ from the next one's, and a
StreamFifo in front of every Mvau but the first.

Only chains are mapped so far (each value read by the next node only); fork/join streams come with residuals.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.back import verilog
from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import wiring

from ..hw.dataflow import Dataflow
from ..hw.layout import StreamFormat
from ..hw.mvau import Mvau
from ..hw.stream_fifo import StreamFifo
from ..hw.threshold import MultiThreshold as ThresholdUnit
from ..hw.width_converter import WidthConverter
from .check import GraphError, check_graph
from .ir import Bipolar, Dense, Graph, MultiThreshold

__all__ = ["TOP_NAME", "Stage", "map_stages", "emit_verilog", "stream_format", "stream_formats"]

TOP_NAME = "hbnn_top"


@dataclass(frozen=True, eq=False)
class Stage:
    """One component of the dataflow chain and the graph node it implements (None for a width converter or FIFO)."""
    node: str | None
    component: wiring.Component
    transfers_in: int  # input transfers per image
    transfers_out: int  # output transfers per image


def element_shape(dtype) -> Shape:
    return unsigned(1) if isinstance(dtype, Bipolar) else signed(dtype.width)


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
        if not isinstance(node, (Dense, MultiThreshold)):
            raise GraphError(f"layer {node.name!r} ({type(node).__name__}) has no hardware mapping; run the compile "
                             "pipeline first (it folds channel ops and quantizers into thresholds)")
        previous = node.name
    if graph.outputs != (previous,):
        raise GraphError(f"the output {graph.outputs[0]!r} is not the chain's last value {previous!r}")
    return list(graph.nodes)


def map_stages(graph: Graph) -> list[Stage]:
    types = check_graph(graph)
    stages: list[Stage] = []
    mvau = None
    for node in _chain(graph):
        if isinstance(node, Dense):
            if node.folding is None:
                raise GraphError(f"layer {node.name!r} has no folding; run set_folding first")
            if node.bias is not None:
                raise GraphError(f"layer {node.name!r} has integer bias codes but no threshold after it to fold "
                                 "them into; the matrix-vector unit adds no bias")
            input_type = types[node.inputs[0]].dtype
            mvau = Mvau(weights=node.weights, weight_kind=node.weight_kind,
                        input_kind="bipolar" if isinstance(input_type, Bipolar) else "int8",
                        pe=node.folding.pe, simd=node.folding.simd)
            _append_converted(stages, Stage(node.name, mvau, mvau.synapse_folds, mvau.neuron_folds))
        else:
            if not isinstance(stages[-1].component, Mvau):
                raise GraphError(f"threshold {node.name!r} does not follow a layer's accumulators")
            unit = ThresholdUnit(thresholds=node.thresholds, descending=node.descending, pe=mvau.pe,
                                 accumulator_bits=mvau.accumulator_bits, output_base=node.base,
                                 output_shape=element_shape(node.dtype))
            stages.append(Stage(node.name, unit, mvau.neuron_folds, mvau.neuron_folds))
    return stages


def _elements(component, stream: str) -> tuple[Shape, int]:
    layout = component.signature.members[stream].signature.members["payload"].shape
    return layout.elem_shape, layout.length


def fifo_depth(transfers: int) -> int:
    """One image of a matrix-vector unit's input transfers, at least 3 (a shallower buffered FIFO refills only every
    other cycle)."""
    return max(3, transfers)


def _append_converted(stages: list[Stage], stage: Stage) -> None:
    """Appends a matrix-vector unit's stage, with a width converter in front where the previous stage's elements per
    transfer differ, and a FIFO of one image's input transfers. The unit takes its input only during its first
    neuron fold; without the FIFO its producer stalls during the other folds, and chained layers slow each other
    down (e.g. two 32-cycle layers streaming at 48 cycles per image, tests/hw/test_dataflow.py)."""
    if stages:
        element, produced = _elements(stages[-1].component, "o_stream")
        _, consumed = _elements(stage.component, "i_stream")
        if produced != consumed:
            converter = WidthConverter(element=element, inputs=produced, outputs=consumed)
            total = stages[-1].transfers_out * produced
            stages.append(Stage(None, converter, stages[-1].transfers_out, total // consumed))
        fifo = StreamFifo(element=element, elements=consumed, depth=fifo_depth(stage.transfers_in))
        stages.append(Stage(None, fifo, stage.transfers_in, stage.transfers_in))
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
    return stream_format(input_tensor.dtype, first.component.simd, first.transfers_in), output


def emit_verilog(accelerator: Dataflow) -> str:
    # emit_src=False: source-location attributes carry absolute paths and would make the output machine-dependent.
    return verilog.convert(accelerator, name=TOP_NAME, emit_src=False)
