"""StreamFifo in Amaranth's simulator: the transfers come out in order, and its handshake model (hbnn.hw.handshake)
matches it cycle for cycle, undisturbed, under seeded random valid/ready patterns, and filled then drained. Then its
stated timing, that its ready does not wait on the downstream ready, its memory style, and its checks."""
import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Value, signed, unsigned
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbnn.sim.amaranth_stream import stream_patterns
from hbnn.hw.dataflow import Dataflow, image_transfers
from hbnn.hw.handshake import schedule
from hbnn.hw.lint import lint_verilog
from hbnn.hw.memory_style import LUT_DEPTH
from hbnn.hw.stream_fifo import StreamFifo

CYCLES = 400
DEPTHS = [1, 2, 3, 8, 33]
# (input valid probability, output ready probability): undisturbed, then gaps and stalls in several mixes.
FLOWS = [(1.0, 1.0), (0.6, 0.6), (0.3, 0.9), (0.9, 0.3)]


def simulate(dut, payloads, in_pattern, out_pattern, *, probe=None):
    """Stops after every payload has come out (hbnn.sim.amaranth_stream)."""
    return stream_patterns(dut, payloads, in_pattern, out_pattern, outputs=len(payloads), probe=probe)


def assert_twins(depth, in_pattern, out_pattern, transfers, seed, *, element=signed(5), elements=3):
    """The FIFO and its model, fed the same patterns: identical handshakes, and every payload out in order."""
    dut = StreamFifo(element=element, elements=elements, depth=depth)
    bits = Value.cast(dut.i_stream.payload).shape().width
    payloads = [int(word) for word in np.random.default_rng(seed).integers(0, 1 << bits, transfers)]
    ins, outs, received = simulate(dut, payloads, in_pattern, out_pattern)
    assert received == payloads, "the simulation ran out of cycles, or the FIFO lost its order"
    modelled = schedule([dut.handshake_model()], transfers, len(in_pattern), input_valid=in_pattern.__getitem__,
                        output_ready=out_pattern.__getitem__, outputs=transfers)
    assert list(modelled.inputs) == ins
    assert list(modelled.outputs) == outs
    return ins, outs


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_model_is_cycle_exact(depth, flow):
    rng = np.random.default_rng(depth * 100 + int(10 * flow[0]))
    in_pattern, out_pattern = rng.random(CYCLES) < flow[0], rng.random(CYCLES) < flow[1]
    assert_twins(depth, in_pattern, out_pattern, 60, seed=depth)


@pytest.mark.parametrize("depth", DEPTHS)
def test_model_is_cycle_exact_filled_then_drained(depth):
    # The sink waits until the FIFO has long been full, takes a few, waits again, then drains it; the source
    # stops once, so the FIFO also runs empty.
    cycles = np.arange(CYCLES)
    in_pattern = (cycles < 120) | (cycles >= 160)
    out_pattern = ((cycles >= 50) & (cycles < 55)) | (cycles >= 90)
    transfers = depth + 40
    ins, outs = assert_twins(depth, in_pattern, out_pattern, transfers, seed=depth)
    # Full: exactly `depth` taken before the sink first takes one.
    assert sum(cycle < 50 for cycle in ins) == depth


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 12), st.sampled_from([0.2, 0.5, 0.8, 1.0]), st.sampled_from([0.2, 0.5, 0.8, 1.0]),
       st.integers(0, 2**32 - 1))
def test_random_depths_and_flows_match_the_model(depth, valid, ready, seed):
    rng = np.random.default_rng(seed)
    in_pattern, out_pattern = rng.random(CYCLES) < valid, rng.random(CYCLES) < ready
    assert_twins(depth, in_pattern, out_pattern, 30, seed, element=unsigned(1), elements=2)


# The stated timing, from the model alone (the model is the FIFO, above).

def unelaborated(*components):
    """Components used for their models or checks only: not unused designs (Amaranth warns of those)."""
    for component in components:
        component._MustUse__silence = True


@pytest.mark.parametrize("depth", DEPTHS)
def test_model_states_latency_interval_and_depth(depth):
    dut = StreamFifo(element=unsigned(1), elements=1, depth=depth)
    unelaborated(dut)
    assert dut.depth == depth and dut.memory_depth == (2 if depth == 2 else depth - 1)
    one = schedule([dut.handshake_model()], 1, 20)
    assert one.outputs[0] - one.inputs[0] == dut.latency == (1 if depth == 1 else 2)
    streaming = schedule([dut.handshake_model()], 20, 100)
    assert set(np.diff(streaming.outputs).tolist()) == {dut.interval}
    assert dut.interval == (1 if depth >= 3 else 2)
    # A sink that never takes: the FIFO holds `depth` transfers, then stops taking.
    blocked = schedule([dut.handshake_model()], 50, 100, output_ready=lambda cycle: False)
    assert len(blocked.inputs) == depth


def test_ready_waits_on_state_alone_and_the_output_is_registered():
    # Each cycle, flip the downstream ready and the upstream valid/payload: the FIFO's input ready and its output
    # valid and payload must not move within the cycle.
    dut = StreamFifo(element=unsigned(4), elements=2, depth=4)
    rng = np.random.default_rng(0)
    in_pattern, out_pattern = rng.random(200) < 0.6, rng.random(200) < 0.5
    seen = []

    def probe(ctx):
        before = (ctx.get(dut.i_stream.ready), ctx.get(dut.o_stream.valid), ctx.get(Value.cast(dut.o_stream.payload)))
        ready, valid = ctx.get(dut.o_stream.ready), ctx.get(dut.i_stream.valid)
        ctx.set(dut.o_stream.ready, not ready)
        ctx.set(dut.i_stream.valid, not valid)
        after = (ctx.get(dut.i_stream.ready), ctx.get(dut.o_stream.valid), ctx.get(Value.cast(dut.o_stream.payload)))
        ctx.set(dut.o_stream.ready, ready)
        ctx.set(dut.i_stream.valid, valid)
        seen.append(before == after)

    payloads = list(range(40))
    _, _, received = simulate(dut, [p % 256 for p in payloads], in_pattern, out_pattern, probe=probe)
    assert received == payloads and all(seen) and len(seen) > 40


# Memory: LUT RAM when shallow, block RAM when deep (hbnn.hw.memory_style), on the FIFO's own memory.

@pytest.mark.parametrize("depth, style", [(2, "distributed"), (LUT_DEPTH + 1, "distributed"),
                                          (LUT_DEPTH + 2, "block"), (1000, "block")])
def test_the_memory_style_reaches_the_verilog(depth, style):
    text = verilog.convert(StreamFifo(element=unsigned(8), elements=2, depth=depth), name="fifo", emit_src=False)
    assert text.count("ram_style") == 1
    assert f'(* ram_style = "{style}" *)' in text


@pytest.mark.parametrize("depth", [1, 2, 3, LUT_DEPTH + 2])
def test_the_verilog_is_lint_clean(tmp_path, depth):
    # Depth 2 especially: SyncFIFOBuffered(2)'s one-word memory would have a zero-width address ([-1:0]).
    path = tmp_path / "fifo.v"
    path.write_text(verilog.convert(StreamFifo(element=unsigned(1), elements=16, depth=depth), name="fifo"))
    result = lint_verilog(path, "fifo")
    assert result.clean, result.output


def test_depth_one_is_a_register_without_memory():
    text = verilog.convert(StreamFifo(element=unsigned(8), elements=2, depth=1), name="fifo", emit_src=False)
    assert "ram_style" not in text and "reg [15:0] storage" not in text


# Checks, and its place in a Dataflow.

@pytest.mark.parametrize("arguments, message", [
    (dict(element=unsigned(1), elements=0, depth=2), "elements must be a positive integer, not 0"),
    (dict(element=unsigned(1), elements=2, depth=0), "depth must be a positive integer, not 0"),
    (dict(element=unsigned(1), elements=2, depth=2.0), "depth must be a positive integer, not 2.0"),
    (dict(element="int8", elements=2, depth=2), "shape"),
])
def test_bad_parameters_are_refused(arguments, message):
    with pytest.raises(TypeError, match=message):
        StreamFifo(**arguments)


def test_in_a_dataflow_it_keeps_the_transfers():
    first = StreamFifo(element=signed(3), elements=4, depth=3)
    second = StreamFifo(element=signed(3), elements=4, depth=5)
    dut = Dataflow([first, second])
    assert dut.signature.members["i_stream"] == first.signature.members["i_stream"]
    assert first.signature.members["i_stream"].signature.flip() == first.signature.members["o_stream"].signature
    assert image_transfers([first, second], input_transfers=7) == [(7, 7), (7, 7)]
    unelaborated(dut, first, second)
