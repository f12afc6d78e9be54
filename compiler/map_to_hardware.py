"""Maps a compiled graph onto the Amaranth components of hbnn.hw, node by node in topological order:

- SlidingWindow -> hw.sliding_window.SlidingWindow (line buffer, SIMD channels of one pixel per transfer, SIMD the
  reading layer's);
- Dense -> Mvau, one vector per output pixel;
- MultiThreshold -> hw.threshold.MultiThreshold on the accumulators (or pool sums, or residual sums) before it;
- Pool -> a depthwise SlidingWindow (each window's K*K pixels of one channel group in a row) and a WindowReduce;
- ElementwiseAdd -> AddJoin, the addend of the short branch (fewer matrix-vector units since the fork, or where
  that ties, the one that arrives first) through a bypass StreamFifo sized from the cycle analysis
  (hbnn.hw.fifo_sizing: deep enough that the design streams as if the FIFO were unbounded);
- ChannelPad -> hw.channel_pad.ChannelPad (pad transfers around each pixel's channels);
- Flatten -> nothing: the stream's order is already the flattened one;
- a value with several readers (a residual block's input) -> a Fork, one output stream per reader.

A WidthConverter goes wherever one stage's elements per transfer differ from the next one's, and a StreamFifo in
front of every Mvau that no sliding window feeds (a window's line buffer already holds what the layer is not yet
taking). A graph without forks maps to a chain (hbnn.hw.dataflow.Dataflow), any other to a DataflowGraph.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import wiring

from ..hw.add_join import AddJoin
from ..hw.channel_pad import ChannelPad as ChannelPadUnit
from ..hw.dataflow import Dataflow
from ..hw.dataflow_graph import DataflowGraph, Edge, Port
from ..hw.fifo_sizing import first_arrivals, steady_bypass_depths
from ..hw.fork import Fork
from ..hw.layout import StreamFormat
from ..hw.mvau import AbcBases, Mvau
from ..hw.pool import WindowReduce
from ..hw.sliding_window import SlidingWindow as WindowUnit
from ..hw.stream_fifo import StreamFifo
from ..hw.threshold import MultiThreshold as ThresholdUnit
from ..hw.verilog_export import to_verilog
from ..hw.width_converter import WidthConverter
from .check import GraphError, check_graph
from .ir import Bipolar, ChannelPad, Dense, ElementwiseAdd, Flatten, Graph, MultiThreshold, Pool, SlidingWindow

__all__ = ["TOP_NAME", "Stage", "MappedDesign", "map_design", "map_stages", "emit_verilog", "stream_format",
           "stream_formats"]

TOP_NAME = "hbnn_top"
MAPPED = (SlidingWindow, Dense, MultiThreshold, Pool, Flatten, ElementwiseAdd, ChannelPad)
ACCUMULATING = (Mvau, WindowReduce, AddJoin)  # what a threshold unit may read (through forks)


@dataclass(frozen=True, eq=False)
class Stage:
    """One component of the dataflow chain and the graph node it implements (None for a width converter or FIFO)."""
    node: str | None
    component: wiring.Component
    transfers_in: int  # input transfers per image
    transfers_out: int  # output transfers per image


def element_shape(dtype) -> Shape:
    if isinstance(dtype, Bipolar):
        return unsigned(1)
    return signed(dtype.width) if dtype.signed else unsigned(dtype.width)


def element_code(dtype, code: int) -> int:
    """A code as the stream element holds it: a bipolar +1 is the bit 1, -1 the bit 0."""
    return int(code > 0) if isinstance(dtype, Bipolar) else code


def stream_format(dtype, elements: int, transfers: int) -> StreamFormat:
    if isinstance(dtype, Bipolar):
        return StreamFormat("bipolar", elements, 1, transfers)
    return StreamFormat("signed" if dtype.signed else "unsigned", elements, dtype.width, transfers)


def _elements(component, stream: str) -> tuple[Shape, int]:
    """(element shape, elements per transfer) of a component's stream (`o_streams[k]` for a fork's k-th reader)."""
    if stream.startswith("o_streams["):
        signature = component.signature.members["o_streams"].signature
    else:
        signature = component.signature.members[stream].signature
    layout = signature.members["payload"].shape
    return layout.elem_shape, layout.length


def fifo_depth(transfers: int) -> int:
    """One vector of a matrix-vector unit's input transfers, at least 3 (a shallower buffered FIFO refills only every
    other cycle)."""
    return max(3, transfers)


@dataclass(frozen=True, eq=False)
class MappedDesign:
    """The mapped components (stages, in topological order) and the streams between them. `bypass_fifos`: the
    FIFOs in front of residual adds, by stage index, each with the edge it buffers (for reports). `image_ends`: the
    undisturbed stream's image ends up to a repeated state, where the FIFO sizing already stepped them (the cycle
    analysis reuses them)."""
    stages: tuple[Stage, ...]
    edges: tuple[Edge, ...]
    source: Port
    sink: Port
    bypass_fifos: tuple[tuple[int, str], ...] = ()
    image_ends: tuple = ()

    @property
    def is_chain(self) -> bool:
        return (self.source == Port(0, 0) and self.sink == Port(len(self.stages) - 1, 0)
                and list(self.edges) == [Edge(Port(k, 0), Port(k + 1, 0)) for k in range(len(self.stages) - 1)])

    def accelerator(self) -> Dataflow | DataflowGraph:
        """The top component: a Dataflow for a chain, a DataflowGraph otherwise. Each call wraps the same stage
        components, so elaborate at most one accelerator per mapping (map again for a second)."""
        components = [stage.component for stage in self.stages]
        if self.is_chain:
            return Dataflow(components)
        return DataflowGraph(components, self.edges, self.source, self.sink)

    def cycle_bound(self) -> int:
        """Cycles within which one image passes the whole design, nothing overlapping (generous)."""
        return sum(getattr(stage.component, "latency", 0) + stage.transfers_in + stage.transfers_out + 1
                   for stage in self.stages) + 16


def map_stages(graph: Graph) -> list[Stage]:
    """The stages of a graph that maps to a chain (no residual sums, no forks)."""
    design = map_design(graph)
    if not design.is_chain:
        raise GraphError("the graph forks (a residual block): it maps to a DataflowGraph, not a chain; use "
                         "map_design")
    return list(design.stages)


def map_design(graph: Graph) -> MappedDesign:
    """The graph's components and streams; bypass FIFOs on the short branches, sized exactly (hbnn.hw.fifo_sizing)."""
    design = _Mapper(graph).run()  # a FIFO on both addends of every join, to tell the branches apart
    if not design.bypass_fifos:
        return design
    short = _short_branches(design)
    _silence(design)
    design = _Mapper(graph, buffered=short).run()
    fifos = [index for index, _ in design.bypass_fifos]
    depths, ends = steady_bypass_depths(_provisional(design), fifos, *_image_transfers(design),
                                        design.cycle_bound())
    stages = list(design.stages)
    for index, depth in depths.items():
        old = stages[index]
        old.component._MustUse__silence = True
        fifo = StreamFifo(element=old.component.element, elements=old.component.elements, depth=depth)
        stages[index] = Stage(None, fifo, old.transfers_in, old.transfers_out)
    return MappedDesign(tuple(stages), design.edges, design.source, design.sink, design.bypass_fifos, ends)


def _short_branches(design: MappedDesign) -> set[str]:
    """Per join, the bypass edge of its short branch: fewer matrix-vector units between it and the fork (a stage
    that holds an image's worth before answering), or where both have as many, the one whose data arrives first in
    the undisturbed stream with both FIFOs unbounded."""
    units = {index: _units_since_fork(design, index) for index, _ in design.bypass_fifos}
    joins: dict[str, list[tuple[int, str]]] = {}
    for index, edge in design.bypass_fifos:
        joins.setdefault(edge.split(" -> ")[1], []).append((index, edge))
    arrivals = None
    short = set()
    for branches in joins.values():
        fewest = min(units[index] for index, _ in branches)
        tied = [(index, edge) for index, edge in branches if units[index] == fewest]
        if len(tied) > 1 and arrivals is None:
            arrivals = first_arrivals(_provisional(design), [index for index, _ in design.bypass_fifos],
                                      *_image_transfers(design), design.cycle_bound())
        short.add(min(tied, key=lambda branch: (arrivals or {}).get(branch[0], math.inf))[1])
    return short


def _units_since_fork(design: MappedDesign, index: int) -> int:
    """Matrix-vector units on the path from the nearest fork (or the source) to stage `index`."""
    count = 0
    while True:
        into = [edge for edge in design.edges if edge.target.node == index]
        if not into or isinstance(design.stages[index].component, Fork):
            return count
        index = into[0].source.node
        count += isinstance(design.stages[index].component, Mvau)


def _provisional(design: MappedDesign) -> DataflowGraph:
    accelerator = design.accelerator()
    accelerator._MustUse__silence = True  # only its handshake models are stepped
    return accelerator


def _silence(design: MappedDesign) -> None:
    for stage in design.stages:  # a mapping made only to be measured; never elaborated
        stage.component._MustUse__silence = True


def _image_transfers(design: MappedDesign) -> tuple[int, int]:
    return design.stages[design.source.node].transfers_in, design.stages[design.sink.node].transfers_out


class _Mapper:
    """Walks the graph in topological order, appending stages and recording each value's output ports: one per
    reader (a Fork's streams where a value has several), taken in the order the readers come."""

    def __init__(self, graph: Graph, buffered: set[str] | None = None):
        self.graph = graph
        self.buffered = buffered  # the bypass edges ("value -> add") that get a FIFO; None: every addend
        self.types = check_graph(graph)
        self.stages: list[Stage] = []
        self.edges: list[Edge] = []
        self.source: Port | None = None
        self.bypass: list[tuple[int, str]] = []
        # value -> [(port or None for the graph input, transfers per image)], one per reader still to come
        self.ports: dict[str, list[tuple[Port | None, int]]] = {}
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise GraphError(f"hardware maps one input and one output so far; the graph has {len(graph.inputs)} and "
                             f"{len(graph.outputs)}")
        (name, _), = graph.inputs
        if self._reader_count(name) != 1:
            raise GraphError(f"the input {name!r} is read {self._reader_count(name)} times; hardware maps one reader "
                             "of the network input")
        self.ports[name] = [(None, 0)]

    def _reader_count(self, value: str) -> int:
        return len(self.graph.readers(value)) + self.graph.outputs.count(value)

    def run(self) -> MappedDesign:
        for node in self.graph.nodes:
            if not isinstance(node, MAPPED):
                raise GraphError(f"layer {node.name!r} ({type(node).__name__}) has no hardware mapping; run the "
                                 "compile pipeline first (it folds channel ops and quantizers into thresholds)")
            getattr(self, f"_{type(node).__name__}")(node)
        sink, _ = self._take(self.graph.outputs[0])
        if sink is None:
            raise GraphError("the graph's output is its input: there is nothing to map")
        return MappedDesign(tuple(self.stages), tuple(self.edges), self.source, sink, tuple(self.bypass))

    # --- streams ------------------------------------------------------------------------------------------------

    def _take(self, value: str) -> tuple[Port | None, int]:
        return self.ports[value].pop(0)

    def _layout(self, port: Port | None, value: str) -> tuple[Shape, int | None]:
        """(element shape, elements per transfer or None for the graph input) of what the port carries: the
        producing stage's elements (an accumulator may be wider than the IR's bound)."""
        if port is None:
            return element_shape(self.types[value].dtype), None
        component = self.stages[port.node].component
        name = f"o_streams[{port.stream}]" if isinstance(component, Fork) else "o_stream"
        return _elements(component, name)

    def _add(self, stage: Stage, inputs: list[Port | None]) -> int:
        """Appends a stage whose input streams come from `inputs` (None: the graph input)."""
        index = len(self.stages)
        self.stages.append(stage)
        for stream, port in enumerate(inputs):
            if port is None:
                self.source = Port(index, stream)
            else:
                self.edges.append(Edge(port, Port(index, stream)))
        return index

    def _publish(self, value: str, port: Port, transfers: int) -> None:
        """The value leaves through `port`; a Fork gives each of several readers its own stream."""
        readers = self._reader_count(value)
        if readers <= 1:
            self.ports[value] = [(port, transfers)]
            return
        element, elements = self._layout(port, value)
        fork = self._add(Stage(None, Fork(element=element, elements=elements, readers=readers), transfers, transfers),
                         [port])
        self.ports[value] = [(Port(fork, k), transfers) for k in range(readers)]

    def _feed(self, value: str, consumed: int, *, fifo_depth: int | None = None) -> tuple[Port | None, int]:
        """The value's next port, through a width converter to `consumed` elements per transfer where it differs
        and a StreamFifo of `fifo_depth` if given (none in front of the graph input: the host packs it)."""
        port, transfers = self._take(value)
        if port is None:
            return None, 0
        element, produced = self._layout(port, value)
        if produced != consumed:
            converter = WidthConverter(element=element, inputs=produced, outputs=consumed)
            total = transfers * produced
            port = Port(self._add(Stage(None, converter, transfers, total // consumed), [port]), 0)
            transfers = total // consumed
        if fifo_depth is not None:
            fifo = StreamFifo(element=element, elements=consumed, depth=fifo_depth)
            port = Port(self._add(Stage(None, fifo, transfers, transfers), [port]), 0)
        return port, transfers

    # --- nodes --------------------------------------------------------------------------------------------------

    def _window(self, node, name: str, simd: int, pad_value: int, depthwise: bool) -> Port:
        element, _ = self._layout(self.ports[node.inputs[0]][0][0], node.inputs[0])
        channels, height, width = self.types[node.inputs[0]].shape
        unit = WindowUnit(element=element, channels=channels, height=height, width=width, kernel=node.kernel,
                          stride=node.stride, padding=node.padding, simd=simd, pad_value=pad_value,
                          depthwise=depthwise)
        port, _ = self._feed(node.inputs[0], simd)
        stage = Stage(name, unit, unit.input_format.transfers, unit.output_format.transfers)
        return Port(self._add(stage, [port]), 0)

    def _SlidingWindow(self, node: SlidingWindow) -> None:
        readers = self.graph.readers(node.name)
        if len(readers) != 1 or not isinstance(readers[0], Dense) or readers[0].folding is None:
            raise GraphError(f"sliding window {node.name!r} must feed one folded layer (run set_folding first)")
        dtype = self.types[node.inputs[0]].dtype
        port = self._window(node, node.name, readers[0].folding.simd, element_code(dtype, node.pad_code),
                            depthwise=False)
        self._publish(node.name, port, self.stages[port.node].transfers_out)

    def _Dense(self, node: Dense) -> None:
        if node.folding is None:
            raise GraphError(f"layer {node.name!r} has no folding; run set_folding first")
        dtype = self.types[node.inputs[0]].dtype
        _, height, width = self.types[node.name].shape
        bases = None
        if node.weight_kind == "abc":
            side_by_side = node.weight_bases if node.folding.bases is None else node.folding.bases
            bases = AbcBases(tuple(map(tuple, node.coefficients.tolist())), node.ranks, side_by_side)
        input_kind = "levels" if bases is not None else "bipolar" if isinstance(dtype, Bipolar) else "int8"
        mvau = Mvau(weights=node.weights, weight_kind=node.weight_kind, input_kind=input_kind,
                    pe=node.folding.pe, simd=node.folding.simd, vectors=height * width, bias=node.bias, bases=bases)
        upstream = self.ports[node.inputs[0]][0][0]
        windowed = upstream is not None and isinstance(self.stages[upstream.node].component, WindowUnit)
        port, _ = self._feed(node.inputs[0], node.folding.simd,
                             fifo_depth=None if windowed else fifo_depth(mvau.synapse_folds))
        index = self._add(Stage(node.name, mvau, mvau.input_format.transfers, mvau.output_format.transfers), [port])
        self._publish(node.name, Port(index, 0), mvau.output_format.transfers)

    def _MultiThreshold(self, node: MultiThreshold) -> None:
        port, transfers = self._take(node.inputs[0])
        if port is None or not isinstance(self._origin(port), ACCUMULATING):
            raise GraphError(f"threshold {node.name!r} does not follow a layer's accumulators, a pool's sums or a "
                             "residual sum")
        element, lanes = self._layout(port, node.inputs[0])
        unit = ThresholdUnit(thresholds=node.thresholds, descending=node.descending, pe=lanes,
                             accumulator_bits=element.width, output_base=node.base,
                             output_shape=element_shape(node.dtype))
        index = self._add(Stage(node.name, unit, transfers, transfers), [port])
        self._publish(node.name, Port(index, 0), transfers)

    def _origin(self, port: Port):
        """The component that produces what a port carries, looking through forks."""
        component = self.stages[port.node].component
        while isinstance(component, Fork):
            into = next(edge for edge in self.edges if edge.target.node == port.node)
            port = into.source
            component = self.stages[port.node].component
        return component

    def _Pool(self, node: Pool) -> None:
        if node.simd is None:
            raise GraphError(f"pool {node.name!r} has no SIMD; run set_folding first")
        dtype = self.types[node.inputs[0]].dtype
        element, _ = self._layout(self.ports[node.inputs[0]][0][0], node.inputs[0])
        lowest = 0 if isinstance(dtype, Bipolar) or not element.signed else -(1 << (element.width - 1))  # bit 0: -1
        port = self._window(node, f"{node.name}.window", node.simd, lowest if node.kind == "max" else 0,
                            depthwise=True)
        channels, height, width = self.types[node.name].shape
        reduce = WindowReduce(element=element, simd=node.simd, window=node.area, kind=node.kind,
                              groups=height * width * channels // node.simd)
        index = self._add(Stage(node.name, reduce, reduce.input_format.transfers, reduce.output_format.transfers),
                          [port])
        self._publish(node.name, Port(index, 0), reduce.output_format.transfers)

    def _Flatten(self, node: Flatten) -> None:
        port, transfers = self._take(node.inputs[0])  # the wire order is the flattened order already
        if port is None:
            raise GraphError(f"flatten {node.name!r} reads the network input: flatten on the host instead")
        self._publish(node.name, port, transfers)

    def _ChannelPad(self, node: ChannelPad) -> None:
        if node.simd is None:
            raise GraphError(f"channel pad {node.name!r} has no SIMD; run set_folding first")
        channels, height, width = self.types[node.inputs[0]].shape
        element, _ = self._layout(self.ports[node.inputs[0]][0][0], node.inputs[0])
        unit = ChannelPadUnit(element=element, channels=channels, before=node.before, after=node.after,
                              simd=node.simd, pixels=height * width,
                              pad_value=element_code(self.types[node.inputs[0]].dtype, node.pad_code))
        port, _ = self._feed(node.inputs[0], node.simd)
        transfers_in, transfers_out = unit.transfers
        index = self._add(Stage(node.name, unit, transfers_in, transfers_out), [port])
        self._publish(node.name, Port(index, 0), transfers_out)

    def _ElementwiseAdd(self, node: ElementwiseAdd) -> None:
        if node.simd is None:
            raise GraphError(f"residual add {node.name!r} has no SIMD; run set_folding first")
        ports, elements = [], []
        for value in node.inputs:
            upstream = self.ports[value][0][0]
            if upstream is None:
                raise GraphError(f"residual add {node.name!r} reads the network input {value!r} directly")
            elements.append(self._layout(upstream, value)[0])
            edge = f"{value} -> {node.name}"
            buffered = self.buffered is None or edge in self.buffered
            port, transfers = self._feed(value, node.simd, fifo_depth=2 if buffered else None)  # sized by map_design
            ports.append(port)
            if buffered:
                self.bypass.append((port.node, edge))
        join = AddJoin(a_element=elements[0], b_element=elements[1], elements=node.simd)
        index = self._add(Stage(node.name, join, transfers, transfers), ports)
        self._publish(node.name, Port(index, 0), transfers)


def stream_formats(graph: Graph, design: MappedDesign) -> tuple[StreamFormat, StreamFormat]:
    """(input, output) formats of the mapped design: the input's codes SIMD at a time, the last stage's elements (a
    matrix-vector unit's accumulators are as wide as its lanes need, which may differ from the IR's bound)."""
    types = check_graph(graph)
    (_, input_tensor), = graph.inputs
    first, last = design.stages[design.source.node], design.stages[design.sink.node]
    element, elements = _elements(last.component, "o_stream")
    output_type = types[graph.outputs[0]].dtype
    output = (stream_format(output_type, elements, last.transfers_out) if isinstance(output_type, Bipolar)
              else StreamFormat("signed" if element.signed else "unsigned", elements, element.width,
                                last.transfers_out))
    _, simd = _elements(first.component, ("i_stream", "a_stream", "b_stream")[design.source.stream])
    return stream_format(input_tensor.dtype, simd, first.transfers_in), output


def emit_verilog(accelerator: Dataflow | DataflowGraph) -> str:
    return to_verilog(accelerator, TOP_NAME)
