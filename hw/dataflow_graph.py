"""A dataflow accelerator whose stages form a directed acyclic graph (forks and joins: residual blocks), and the
cycle-level schedule of its handshake models.

Nodes are components; an edge connects one node's output stream to another's input stream (stream_ports gives
each component's streams in order: i_stream, or a_stream and b_stream; o_stream, or o_streams[0..]). One input
stream is left open as the accelerator's i_stream and one output stream as its o_stream; every other stream is on
exactly one edge. Every edge's two signatures must be equal.

`schedule_graph` steps the nodes' models together, as hbnn.hw.handshake.schedule does a chain's: each cycle the
output valids (state only), then the input readies in reverse topological order (a join's needs its inputs'
valids, known by then), then the clocks. A width converter between equal counts is wires (a PassThrough model):
the schedule splices it out.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .dataflow import ImageEnd, image_ends
from .handshake import Handshakes, PassThrough, PortHandshakeModel, as_ports

__all__ = ["Port", "Edge", "stream_ports", "DataflowGraph", "schedule_graph", "stream_graph_images"]

INPUT_NAMES = ("i_stream", "a_stream", "b_stream")


@dataclass(frozen=True)
class Port:
    node: int
    stream: int  # index into the node's input or output streams (stream_ports)


@dataclass(frozen=True)
class Edge:
    source: Port  # an output stream
    target: Port  # an input stream


def stream_ports(component) -> tuple[list[str], list[str]]:
    """(input stream names, output stream names) of a component, in port order."""
    members = component.signature.members
    inputs = [name for name in INPUT_NAMES if name in members]
    if "o_streams" in members:
        outputs = [f"o_streams[{k}]" for k in range(members["o_streams"].dimensions[0])]
    else:
        outputs = ["o_stream"] if "o_stream" in members else []
    return inputs, outputs


def _stream(component, name: str):
    if name.startswith("o_streams["):
        return component.o_streams[int(name[len("o_streams["):-1])]
    return getattr(component, name)


def _signature(component, name: str, flipped: bool):
    if name.startswith("o_streams["):
        member = component.signature.members["o_streams"]
    else:
        member = component.signature.members[name]
    signature = member.signature
    return signature.flip() if flipped else signature


def topological_order(nodes: int, edges: Sequence[Edge]) -> list[int]:
    following = {node: [] for node in range(nodes)}
    waiting = [0] * nodes
    for edge in edges:
        following[edge.source.node].append(edge.target.node)
        waiting[edge.target.node] += 1
    ready = [node for node in range(nodes) if waiting[node] == 0]
    order = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for target in following[node]:
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    if len(order) != nodes:
        raise ValueError("the edges form a cycle: a dataflow graph must be acyclic")
    return order


def _describe(index: int, component) -> str:
    return f"node {index} ({type(component).__name__})"


class DataflowGraph(wiring.Component):
    def __init__(self, nodes: Sequence[wiring.Component], edges: Sequence[Edge], source: Port, sink: Port):
        nodes, edges = tuple(nodes), tuple(edges)
        try:
            self._order = self._check(nodes, edges, source, sink)
        except ValueError:
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        self._nodes, self._edges, self._source, self._sink = nodes, edges, source, sink
        source_name = stream_ports(nodes[source.node])[0][source.stream]
        sink_name = stream_ports(nodes[sink.node])[1][sink.stream]
        super().__init__({"i_stream": In(_signature(nodes[source.node], source_name, flipped=True)),
                          "o_stream": Out(_signature(nodes[sink.node], sink_name, flipped=False))})

    @staticmethod
    def _check(nodes, edges, source: Port, sink: Port) -> list[int]:
        if not nodes:
            raise ValueError("a dataflow graph needs at least one node")
        inputs = {(index, k) for index, node in enumerate(nodes) for k in range(len(stream_ports(node)[0]))}
        outputs = {(index, k) for index, node in enumerate(nodes) for k in range(len(stream_ports(node)[1]))}
        used_inputs = [(edge.target.node, edge.target.stream) for edge in edges] + [(source.node, source.stream)]
        used_outputs = [(edge.source.node, edge.source.stream) for edge in edges] + [(sink.node, sink.stream)]
        for kind, used, existing in (("input", used_inputs, inputs), ("output", used_outputs, outputs)):
            unknown = sorted(set(used) - existing)
            if unknown:
                raise ValueError(f"{kind} stream(s) {unknown} (node, stream) do not exist")
            twice = sorted({port for port in used if used.count(port) > 1})
            if twice:
                raise ValueError(f"{kind} stream(s) {twice} (node, stream) are connected more than once")
            open_ = sorted(existing - set(used))
            if open_:
                raise ValueError(f"{kind} stream(s) {open_} (node, stream) are not connected")
        for edge in edges:
            producer, consumer = nodes[edge.source.node], nodes[edge.target.node]
            out_name = stream_ports(producer)[1][edge.source.stream]
            in_name = stream_ports(consumer)[0][edge.target.stream]
            produced = _signature(producer, out_name, flipped=False)
            consumed = _signature(consumer, in_name, flipped=True)
            if produced != consumed:
                raise ValueError(f"{_describe(edge.source.node, producer)}.{out_name} produces {produced!r}, but "
                                 f"{_describe(edge.target.node, consumer)}.{in_name} consumes {consumed!r}")
        return topological_order(len(nodes), edges)

    @property
    def nodes(self) -> tuple[wiring.Component, ...]:
        return self._nodes

    @property
    def edges(self) -> tuple[Edge, ...]:
        return self._edges

    @property
    def source(self) -> Port:
        return self._source

    @property
    def sink(self) -> Port:
        return self._sink

    def handshake_models(self) -> list:
        """Fresh models of every node, in node order."""
        return [node.handshake_model() for node in self._nodes]

    def elaborate(self, platform) -> Module:
        m = Module()
        for index, node in enumerate(self._nodes):
            m.submodules[f"node{index}"] = node
        for edge in self._edges:
            producer, consumer = self._nodes[edge.source.node], self._nodes[edge.target.node]
            wiring.connect(m, _stream(producer, stream_ports(producer)[1][edge.source.stream]),
                           _stream(consumer, stream_ports(consumer)[0][edge.target.stream]))
        source = self._nodes[self._source.node]
        sink = self._nodes[self._sink.node]
        wiring.connect(m, wiring.flipped(self.i_stream),
                       _stream(source, stream_ports(source)[0][self._source.stream]))
        wiring.connect(m, _stream(sink, stream_ports(sink)[1][self._sink.stream]), wiring.flipped(self.o_stream))
        return m


def _always(cycle: int) -> bool:
    return True


def _splice_wires(models, edges, source: Port, sink: Port):
    """Pass-through nodes (one input, one output, wires) removed: their edges joined end to end."""
    edges = list(edges)
    for index, model in enumerate(models):
        if not isinstance(model, PassThrough):
            continue
        into = next((edge for edge in edges if edge.target.node == index), None)
        out = next((edge for edge in edges if edge.source.node == index), None)
        if into is not None and out is not None:
            edges = [edge for edge in edges if edge not in (into, out)] + [Edge(into.source, out.target)]
        elif into is None and out is not None:  # the graph's input goes straight on
            edges.remove(out)
            source = out.target
        elif out is None and into is not None:
            edges.remove(into)
            sink = into.source
        else:
            raise ValueError("a graph of wires alone has no schedule")
    return edges, source, sink


def schedule_graph(models: Sequence, edges: Sequence[Edge], source: Port, sink: Port, transfers: int, cycles: int,
                   *, input_valid: Callable[[int], bool] = _always, output_ready: Callable[[int], bool] = _always,
                   outputs: int | None = None, probe: Callable[[int], None] | None = None,
                   skip_quiet: bool = True) -> Handshakes:
    """Steps the models (one per node, in node order, from their present state) for at most `cycles` cycles, or
    until `outputs` output handshakes at the sink; the source offers its next transfer whenever input_valid(cycle)
    holds while any of `transfers` are left, the sink is ready when output_ready(cycle). probe(cycle) runs after
    each cycle's clock edge (the FIFO sizing reads the FIFOs' levels there). With source and sink always willing
    and `skip_quiet`, one-stream models sleep through their quiet spans as in hbnn.hw.handshake.schedule; the
    handshakes are the same either way, and so are the FIFO levels a probe reads (a FIFO sleeps only while its level
    stands still), but other models' state may be as of their falling asleep until the run returns."""
    inputs, taken = [], []
    left = transfers
    wanted = outputs if outputs is not None else -1
    if skip_quiet and input_valid is _always and output_ready is _always:
        run = _compiled_graph_code(models, edges, source, sink, lazy=True, probed=probe is not None)
        inputs, taken, stepped = run(transfers, cycles, wanted, probe)
        return Handshakes(tuple(inputs), tuple(taken), stepped)
    step = _compiled_graph_code(models, edges, source, sink, lazy=False)
    for cycle in range(cycles):
        fired_in, fired_out = step(left > 0 and input_valid(cycle), output_ready(cycle))
        if probe is not None:
            probe(cycle)
        if fired_in:
            inputs.append(cycle)
            left -= 1
        if fired_out:
            taken.append(cycle)
            if len(taken) == wanted:
                return Handshakes(tuple(inputs), tuple(taken), cycle + 1)
    return Handshakes(tuple(inputs), tuple(taken), cycles)


def _compiled_graph_code(models: Sequence, edges: Sequence[Edge], source: Port, sink: Port, *, lazy: bool,
                         probed: bool = False):
    """The graph as straight-line Python, generated for these models and edges (as hbnn.hw.handshake does for a
    chain): each cycle the output valids (state), then the input readies in reverse topological order (a join's
    needs its inputs' valids, known by then), then every clock edge. lazy=False: one cycle,
    step(source_valid, sink_ready) -> (input handshake, output handshake). lazy=True: the whole loop with the source
    always offering and the sink always ready, every model sleeping through its quiet spans (see
    hbnn.hw.handshake._compiled_lazy_run; a sleeping model's valids stand still, so they are not read again),
    run(transfers, cycles, wanted, probe) -> (input cycles, output cycles, cycles stepped), calling probe(cycle)
    after each cycle's clocks if `probed`."""
    edges, source, sink = _splice_wires(models, edges, source, sink)
    live = sorted({edge.source.node for edge in edges} | {edge.target.node for edge in edges}
                  | {source.node, sink.node})
    into = {(edge.target.node, edge.target.stream): (edge.source.node, edge.source.stream) for edge in edges}
    out_of = {(edge.source.node, edge.source.stream): (edge.target.node, edge.target.stream) for edge in edges}
    index = {node: position for position, node in enumerate(live)}
    order = [live[position] for position in topological_order(
        len(live), [Edge(Port(index[e.source.node], e.source.stream), Port(index[e.target.node], e.target.stream))
                    for e in edges])]
    arity = {node: (sum(1 for (n, _) in into if n == node) + (node == source.node),
                    sum(1 for (n, _) in out_of if n == node) + (node == sink.node)) for node in live}
    several = {node: isinstance(models[node], PortHandshakeModel) for node in live}

    def in_valid(node, k):
        if (node, k) == (source.node, source.stream):
            return "source_valid"
        return "v{}_{}".format(*into[(node, k)])

    def out_ready(node, k):
        if (node, k) == (sink.node, sink.stream):
            return "sink_ready"
        return "r{}_{}".format(*out_of[(node, k)])

    ins = {node: [in_valid(node, k) for k in range(arity[node][0])] for node in live}
    outs = {node: [out_ready(node, k) for k in range(arity[node][1])] for node in live}
    names: dict[str, object] = {}
    for node in live:
        model = models[node] if several[node] else as_ports(models[node]).model
        names[f"m{node}"] = model
        kinds = ("readies", "clock", "quiet", "skip") if several[node] else ("ready", "clock", "quiet", "skip")
        names.update({f"{kind}{node}": getattr(model, kind) for kind in kinds})

    def call(node, kind):  # a model's method on this cycle's signals
        if several[node]:
            return f"{kind}{node}(({', '.join(ins[node])},), ({', '.join(outs[node])},))"
        return f"{kind}{node}({ins[node][0]}, {outs[node][0]})"

    def read_valids(node, pad):
        if several[node]:
            return [f"{pad}vs{node} = m{node}.valids"] + [f"{pad}v{node}_{k} = vs{node}[{k}]"
                                                         for k in range(arity[node][1])]
        return [f"{pad}v{node}_0 = m{node}.valid"]

    def set_readies(node, pad):
        if several[node]:
            return [f"{pad}rs{node} = {call(node, 'readies')}"] + [f"{pad}r{node}_{k} = rs{node}[{k}]"
                                                                  for k in range(arity[node][0])]
        return [f"{pad}r{node}_0 = ready{node}({outs[node][0]})"]

    signals = {node: ins[node] + outs[node] for node in live}  # what a sleeping model watches
    saved = {node: [f"s{node}_{k}" for k in range(len(signals[node]))] for node in live}
    remembered = {node: [f"c{node}_{k}" for k in range(arity[node][0])] for node in live}  # its readies

    if not lazy:
        lines = ["def step(source_valid, sink_ready):"]
        for node in live:
            lines += read_valids(node, "    ")
        for node in reversed(order):
            lines += set_readies(node, "    ")
        lines += [f"    {call(node, 'clock')}" for node in live]
        lines.append(f"    return source_valid and r{source.node}_{source.stream}, "
                     f"v{sink.node}_{sink.stream} and sink_ready")
        exec("\n".join(lines), names)  # noqa: S102 - generated from the fixed template above, no outside text
        return names["step"]

    lines = ["def run(left, cycles, wanted, probe):", "    inputs = []", "    outputs = []", "    cycle = 0",
             "    sink_ready = True"]
    for node in live:
        # asleep, the signals it sleeps on, its readies, its first deferred cycle and the last of its span
        lines.append(f"    a{node} = False")
        lines.append(f"    b{node} = w{node} = 0")
    lines += ["    while cycle < cycles:", "        source_valid = left > 0"]
    for node in live:
        lines.append(f"        if not a{node}:")
        lines += read_valids(node, "            ")
    for node in reversed(order):
        changed = " or ".join(f"{signal} != {old}" for signal, old in zip(signals[node], saved[node]))
        lines += [f"        if a{node}:",
                  f"            if {changed} or cycle >= w{node}:",
                  f"                skip{node}(cycle - b{node}, ({', '.join(saved[node][:arity[node][0]])},), "
                  f"({', '.join(saved[node][arity[node][0]:])},))" if several[node] else
                  f"                skip{node}(cycle - b{node}, {saved[node][0]}, {saved[node][1]})",
                  f"                a{node} = False"]
        lines += set_readies(node, "                ")
        lines.append("            else:")
        lines += [f"                r{node}_{k} = {old}" for k, old in enumerate(remembered[node])]
        lines.append("        else:")
        lines += set_readies(node, "            ")
    for node in live:
        fired = " or ".join([f"({valid} and r{node}_{k})" for k, valid in enumerate(ins[node])]
                            + [f"(v{node}_{k} and {ready})" for k, ready in enumerate(outs[node])])
        lines += [f"        if not a{node}:",
                  f"            if not ({fired}) and (q := {call(node, 'quiet')}) > 1:",
                  f"                a{node}, b{node}, w{node} = True, cycle, cycle + q - 1"]
        lines += [f"                {old} = {signal}" for signal, old in zip(signals[node], saved[node])]
        lines += [f"                {old} = r{node}_{k}" for k, old in enumerate(remembered[node])]
        lines += ["            else:", f"                {call(node, 'clock')}"]
    if probed:
        lines.append("        probe(cycle)")
    lines += [f"        if source_valid and r{source.node}_{source.stream}:", "            inputs.append(cycle)",
              "            left -= 1",
              "        cycle += 1",
              f"        if v{sink.node}_{sink.stream}:", "            outputs.append(cycle - 1)",
              "            if len(outputs) == wanted:", "                break"]
    for node in live:  # wake everyone: the deferred clock edges
        arguments = (f"({', '.join(saved[node][:arity[node][0]])},), ({', '.join(saved[node][arity[node][0]:])},)"
                     if several[node] else f"{saved[node][0]}, {saved[node][1]}")
        lines += [f"    if a{node}:", f"        skip{node}(cycle - b{node}, {arguments})"]
    lines.append("    return inputs, outputs, cycle")
    exec("\n".join(lines), names)  # noqa: S102 - generated from the fixed template above, no outside text
    return names["run"]


def stream_graph_images(graph: DataflowGraph, transfers_in: int, transfers_out: int, bound: int, *,
                        models: Sequence | None = None,
                        probe: Callable[[int], None] | None = None) -> Iterator[ImageEnd]:
    """hbnn.hw.dataflow.stream_images for a graph: steps the models (the graph's own, fresh, unless given) image by
    image without end, source always valid and sink always ready, yielding each image's last output cycle and the
    earlier image whose end state this one's repeats. `bound`: cycles within which any one image must come out
    (else the graph deadlocked); transfers_in/out: per image at the source and the sink."""
    models = list(models) if models is not None else graph.handshake_models()

    def run_image() -> Handshakes:
        return schedule_graph(models, graph.edges, graph.source, graph.sink, transfers_in * (bound + 1), bound,
                              outputs=transfers_out, probe=probe)

    return image_ends(run_image, models, transfers_out, "graph")
