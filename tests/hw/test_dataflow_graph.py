"""A residual block as a dataflow graph (fork -> [Mvau -> MultiThreshold -> WidthConverter] and [StreamFifo] ->
AddJoin) against numpy, and its schedule_graph against the RTL cycle for cycle under random gaps and stalls; an
undersized short-branch FIFO deadlocks in both; malformed graphs refused, naming the stream at fault."""
import numpy as np
import pytest
from amaranth.hdl import signed

from hbnn.hw.add_join import AddJoin
from hbnn.hw.dataflow_graph import DataflowGraph, Edge, Port, schedule_graph
from hbnn.hw.fork import Fork
from hbnn.hw.layout import StreamFormat
from hbnn.hw.mvau import Mvau
from hbnn.hw.stream_fifo import StreamFifo, StreamFifoHandshake
from hbnn.hw.threshold import MultiThreshold
from hbnn.hw.width_converter import WidthConverter
from hbnn.sim.amaranth_stream import stream_patterns


def residual_block(rng, channels, pe, simd, depth, levels=15):
    """(graph, weights, thresholds, descending, base): x -> x + codes(W x)."""
    weights = rng.integers(-128, 128, (channels, channels))
    mvau = Mvau(weights=weights, weight_kind="int8", input_kind="int8", pe=pe, simd=simd)
    bound = 128 * 128 * channels // 4
    thresholds = np.sort(rng.integers(-bound, bound, (channels, levels)), axis=1)
    descending = rng.random(channels) < 0.3
    base = -((levels + 1) // 2)
    threshold = MultiThreshold(thresholds=thresholds, descending=descending, pe=pe,
                               accumulator_bits=mvau.accumulator_bits, output_base=base, output_shape=signed(8))
    nodes = [Fork(element=signed(8), elements=simd), mvau, threshold,
             WidthConverter(element=signed(8), inputs=pe, outputs=simd),
             StreamFifo(element=signed(8), elements=simd, depth=depth),
             AddJoin(a_element=signed(8), b_element=signed(8), elements=simd)]
    edges = [Edge(Port(0, 0), Port(1, 0)), Edge(Port(1, 0), Port(2, 0)), Edge(Port(2, 0), Port(3, 0)),
             Edge(Port(3, 0), Port(5, 0)), Edge(Port(0, 1), Port(4, 0)), Edge(Port(4, 0), Port(5, 1))]
    return DataflowGraph(nodes, edges, Port(0, 0), Port(5, 0)), (weights, thresholds, descending, base)


def expected(x, weights, thresholds, descending, base):
    acc = x @ weights.T
    keys = np.where(descending, -acc, acc)
    return x + (keys[:, :, None] >= thresholds[None]).sum(axis=2) + base


CASES = [(8, 2, 2, 8), (8, 4, 4, 4), (6, 3, 2, 5), (4, 1, 4, 3)]  # channels, pe, simd, FIFO depth
FLOWS = [(1.0, 1.0), (0.6, 0.6), (0.3, 0.9), (0.9, 0.3)]


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("channels, pe, simd, depth", CASES)
def test_residual_block_matches_numpy_and_its_schedule(channels, pe, simd, depth, flow):
    rng = np.random.default_rng(channels * 10 + pe + simd)
    graph, params = residual_block(rng, channels, pe, simd, depth)
    images = 3
    x = rng.integers(-128, 128, (images, channels))
    in_format = StreamFormat("signed", simd, 8)
    payloads = [in_format.to_int(row) for row in x.reshape(-1, simd)]
    transfers = channels // simd
    cycles = 400
    patterns = np.random.default_rng(1).random((2, cycles)) < np.array(flow)[:, None]
    ins, outs, received = stream_patterns(graph, payloads, patterns[0], patterns[1], outputs=images * transfers)
    out_format = StreamFormat("signed", simd, 9)
    got = np.array([out_format.from_int(word) for word in received]).reshape(images, channels)
    np.testing.assert_array_equal(got, expected(x, *params))
    modelled = schedule_graph(graph.handshake_models(), graph.edges, graph.source, graph.sink, len(payloads), cycles,
                              input_valid=patterns[0].__getitem__, output_ready=patterns[1].__getitem__,
                              outputs=images * transfers)
    assert (list(modelled.inputs), list(modelled.outputs)) == (ins, outs)


@pytest.mark.parametrize("channels, pe, simd, depth", CASES + [(8, 8, 1, 1), (16, 1, 2, 16)])
def test_sleeping_through_quiet_spans_changes_no_handshake_in_a_graph(channels, pe, simd, depth):
    from hbnn.hw.dataflow import model_state

    graph, _ = residual_block(np.random.default_rng(channels), channels, pe, simd, depth)
    transfers = 20 * channels // simd
    lazy_models, plain_models = graph.handshake_models(), graph.handshake_models()
    lazy = schedule_graph(lazy_models, graph.edges, graph.source, graph.sink, transfers, 2_000)
    plain = schedule_graph(plain_models, graph.edges, graph.source, graph.sink, transfers, 2_000, skip_quiet=False)
    assert lazy == plain
    assert model_state(lazy_models) == model_state(plain_models)
    for component in (graph, *graph._nodes):  # only the models were stepped
        component._MustUse__silence = True


def test_an_undersized_short_branch_deadlocks_in_rtl_and_schedule():
    # The Mvau takes all 8 input transfers before its first output; the fork can hand the FIFO only 1 + 1 of them
    # (its depth and its own register), so the fork stalls and the Mvau never completes a row.
    rng = np.random.default_rng(0)
    graph, _ = residual_block(rng, channels=8, pe=8, simd=1, depth=1)
    payloads = list(range(8))
    on = np.ones(200, dtype=bool)
    ins, outs, _ = stream_patterns(graph, payloads, on, on, outputs=8)
    modelled = schedule_graph(graph.handshake_models(), graph.edges, graph.source, graph.sink, 8, 200, outputs=8)
    assert outs == [] and list(modelled.outputs) == [] and list(modelled.inputs) == ins and len(ins) < 8


def _nodes():
    return [Fork(element=signed(8), elements=2), StreamFifo(element=signed(8), elements=2, depth=2),
            AddJoin(a_element=signed(8), b_element=signed(8), elements=2)]


@pytest.mark.parametrize("edges, source, sink, match", [
    ([Edge(Port(0, 0), Port(2, 0)), Edge(Port(0, 1), Port(1, 0))], Port(0, 0), Port(2, 0),
     r"input stream\(s\) \[\(2, 1\)\] \(node, stream\) are not connected"),
    ([Edge(Port(0, 0), Port(2, 0)), Edge(Port(0, 0), Port(1, 0)), Edge(Port(1, 0), Port(2, 1))], Port(0, 0),
     Port(2, 0), r"output stream\(s\) \[\(0, 0\)\] \(node, stream\) are connected more than once"),
    ([Edge(Port(0, 0), Port(2, 0)), Edge(Port(0, 1), Port(1, 0)), Edge(Port(1, 0), Port(2, 1))], Port(0, 0),
     Port(2, 1), r"output stream\(s\) \[\(2, 1\)\] \(node, stream\) do not exist"),
])
def test_malformed_graphs_are_refused(edges, source, sink, match):
    nodes = _nodes()
    with pytest.raises(ValueError, match=match):
        DataflowGraph(nodes, edges, source, sink)
    for node in nodes:
        node._MustUse__silence = True


def test_mismatched_signatures_name_both_ends():
    nodes = [Fork(element=signed(8), elements=2), StreamFifo(element=signed(8), elements=2, depth=2),
             AddJoin(a_element=signed(8), b_element=signed(7), elements=2)]
    edges = [Edge(Port(0, 0), Port(2, 0)), Edge(Port(0, 1), Port(1, 0)), Edge(Port(1, 0), Port(2, 1))]
    with pytest.raises(ValueError, match=r"node 1 \(StreamFifo\)\.o_stream produces .* but node 2 \(AddJoin\)\.b_stream"):
        DataflowGraph(nodes, edges, Port(0, 0), Port(2, 0))
    for node in nodes:
        node._MustUse__silence = True


@pytest.mark.parametrize("channels, pe, simd", [(8, 8, 1), (8, 2, 2), (6, 3, 2)])
def test_bypass_depths_stream_as_if_unbounded(channels, pe, simd):
    from hbnn.hw.fifo_sizing import UNBOUNDED, bypass_depths

    rng = np.random.default_rng(channels + pe)
    probe_graph, _ = residual_block(rng, channels, pe, simd, depth=1)
    transfers, images = channels // simd, 4
    depth = bypass_depths(probe_graph, [4], transfers, transfers, images, 2000)[4]
    probe_graph._MustUse__silence = True  # analysed, never elaborated
    for node in probe_graph.nodes:
        node._MustUse__silence = True
    graph, params = residual_block(np.random.default_rng(channels + pe), channels, pe, simd, depth)
    x = np.random.default_rng(2).integers(-128, 128, (images, channels))
    payloads = [StreamFormat("signed", simd, 8).to_int(row) for row in x.reshape(-1, simd)]
    on = np.ones(2000, dtype=bool)
    ins, outs, received = stream_patterns(graph, payloads, on, on, outputs=images * transfers)
    got = np.array([StreamFormat("signed", simd, 9).from_int(word) for word in received]).reshape(images, channels)
    np.testing.assert_array_equal(got, expected(x, *params))
    models = graph.handshake_models()
    models[4] = StreamFifoHandshake(depth=UNBOUNDED)
    unbounded = schedule_graph(models, graph.edges, graph.source, graph.sink, len(payloads), 2000,
                               outputs=images * transfers)
    assert (ins, outs) == (list(unbounded.inputs), list(unbounded.outputs))
