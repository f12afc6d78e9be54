"""Each component's handshake model (hbnn.hw.handshake) against the component in Amaranth's simulator, cycle for
cycle: every input and every output handshake in the same cycle, undisturbed and under seeded random valid/ready
patterns fed to both. Then the scheduler's own rules and the stated latencies."""
import math

import numpy as np
import pytest
from amaranth.hdl import Value, signed, unsigned
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbnn.sim.amaranth_stream import stream_patterns
from hbnn.hw.handshake import Chained, HandshakeModel, PassThrough, schedule
from hbnn.hw.mvau import Mvau
from hbnn.hw.threshold import MultiThreshold
from hbnn.hw.width_converter import WidthConverter

CYCLES = 600
# (input valid probability, output ready probability): undisturbed, then gaps and stalls in several mixes.
FLOWS = [(1.0, 1.0), (0.6, 0.6), (0.3, 0.9), (0.9, 0.3)]


def simulate(dut, payloads, outputs, in_pattern, out_pattern):
    """(input handshake cycles, output handshake cycles) under the patterns (hbnn.sim.amaranth_stream)."""
    ins, outs, _ = stream_patterns(dut, payloads, in_pattern, out_pattern, outputs=outputs)
    return ins, outs


def assert_twins(dut, transfers, outputs, flow, seed):
    """The component and its model, fed the same patterns: identical handshakes, and every output arrives."""
    rng = np.random.default_rng(seed)
    in_pattern, out_pattern = rng.random(CYCLES) < flow[0], rng.random(CYCLES) < flow[1]
    bits = Value.cast(dut.i_stream.payload).shape().width
    payloads = [int(word) for word in rng.integers(0, 1 << min(bits, 62), transfers)]
    measured = simulate(dut, payloads, outputs, in_pattern, out_pattern)
    modelled = schedule([dut.handshake_model()], transfers, CYCLES, input_valid=in_pattern.__getitem__,
                        output_ready=out_pattern.__getitem__, outputs=outputs)
    assert len(measured[1]) == outputs, "the simulation ran out of cycles"
    assert list(modelled.inputs) == measured[0]
    assert list(modelled.outputs) == measured[1]


def mvau(rows, columns, pe, simd, weight_kind="binary", input_kind="bipolar", seed=0):
    rng = np.random.default_rng(seed)
    weights = (np.where(rng.random((rows, columns)) < 0.5, 1, -1) if weight_kind == "binary"
               else rng.integers(-128, 128, (rows, columns)))
    return Mvau(weights=weights, weight_kind=weight_kind, input_kind=input_kind, pe=pe, simd=simd)


def threshold(channels, count, pe, bits=6, seed=0):
    rng = np.random.default_rng(seed)
    limit = 1 << (bits - 1)
    thresholds = np.sort(rng.integers(-limit, limit, (channels, count)), axis=1)
    return MultiThreshold(thresholds=thresholds, descending=rng.random(channels) < 0.5, pe=pe,
                          accumulator_bits=bits)


MVAU_SHAPES = [
    (4, 6, 1, 1),     # PE = SIMD = 1: fully folded
    (4, 6, 4, 6),     # fully parallel: one cycle per image
    (6, 8, 2, 4),
    (6, 4, 1, 4),     # one synapse fold, several neuron folds
    (4, 6, 4, 2),     # one neuron fold: inputs all the time
    (1, 1, 1, 1),
]


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("rows, columns, pe, simd", MVAU_SHAPES)
def test_mvau_model_is_cycle_exact(rows, columns, pe, simd, flow):
    dut = mvau(rows, columns, pe, simd)
    images = 3
    assert_twins(dut, images * dut.synapse_folds, images * dut.neuron_folds, flow, seed=rows * 31 + simd)


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("rows, columns, pe, simd, passes", [(4, 6, 1, 1, 3), (4, 6, 4, 6, 2), (6, 8, 2, 4, 3),
                                                             (4, 6, 4, 2, 2)])
def test_time_multiplexed_abc_mvau_model_is_cycle_exact(rows, columns, pe, simd, passes, flow):
    from hbnn.hw.mvau import AbcBases

    rng = np.random.default_rng(rows + passes)
    planes = np.where(rng.random((passes, rows, columns)) < 0.5, 1, -1)
    dut = Mvau(weights=planes, weight_kind="abc", input_kind="levels", pe=pe, simd=simd,
               bases=AbcBases(((3, -2),) * passes, (2, 1), 1))
    images = 3
    assert_twins(dut, images * dut.synapse_folds, images * dut.neuron_folds, flow, seed=rows * 31 + simd)


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("channels, count, pe", [
    (4, 1, 1),       # sign, fully folded: one compare stage
    (4, 1, 4),       # sign, fully parallel
    (6, 3, 2),       # two stages
    (4, 20, 2),      # five stages
])
def test_multithreshold_model_is_cycle_exact(channels, count, pe, flow):
    dut = threshold(channels, count, pe)
    transfers = 4 * channels // pe
    assert_twins(dut, transfers, transfers, flow, seed=channels * 7 + count)


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("inputs, outputs", [
    (4, 1), (8, 2),  # split
    (1, 4), (2, 8),  # gather
    (6, 4), (4, 6), (5, 3),  # split, then gather
    (3, 3),  # wires
])
def test_width_converter_model_is_cycle_exact(inputs, outputs, flow):
    dut = WidthConverter(element=signed(3), inputs=inputs, outputs=outputs)
    groups = 4
    assert_twins(dut, groups * dut.group // inputs, groups * dut.group // outputs, flow, seed=inputs * 10 + outputs)


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def components(draw):
    """A builder of a component and (input transfers, output transfers): components are built in the test, since
    Hypothesis may draw and then drop an example (and Amaranth warns of components never elaborated)."""
    kind = draw(st.sampled_from(["mvau", "threshold", "converter"]))
    repeats = draw(st.integers(1, 3))
    if kind == "mvau":
        rows, columns = draw(st.integers(1, 8)), draw(st.integers(1, 8))
        pe, simd = draw(st.sampled_from(divisors(rows))), draw(st.sampled_from(divisors(columns)))
        return lambda: (mvau(rows, columns, pe, simd), repeats * (columns // simd), repeats * (rows // pe))
    if kind == "threshold":
        channels, count = draw(st.integers(1, 6)), draw(st.integers(1, 9))
        pe = draw(st.sampled_from(divisors(channels)))
        return lambda: (threshold(channels, count, pe), repeats * channels // pe, repeats * channels // pe)
    inputs, outputs = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    group = math.lcm(inputs, outputs)
    return lambda: (WidthConverter(element=unsigned(2), inputs=inputs, outputs=outputs),
                    repeats * group // inputs, repeats * group // outputs)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(components(), st.sampled_from([0.2, 0.5, 0.8, 1.0]), st.sampled_from([0.2, 0.5, 0.8, 1.0]),
       st.integers(0, 2**32 - 1))
def test_random_components_match_their_models(build, valid, ready, seed):
    dut, transfers, outputs = build()
    assert_twins(dut, transfers, outputs, (valid, ready), seed)


# The stated timing, from the models alone.

def unelaborated(component):
    """A component used for its model only: not an unused design (Amaranth warns of those on collection)."""
    component._MustUse__silence = True
    return component


@pytest.mark.parametrize("rows, columns, pe, simd", MVAU_SHAPES)
def test_mvau_model_states_the_documented_timing(rows, columns, pe, simd):
    dut = unelaborated(mvau(rows, columns, pe, simd))
    folds, images = dut.neuron_folds, 4
    run = schedule([dut.handshake_model()], images * dut.synapse_folds, 10_000, outputs=images * folds)
    first = run.inputs[0]
    # Output transfer nf of image 0 leaves at a + (nf+1)*SF + 1; images follow every NF*SF cycles.
    assert list(run.outputs[:folds]) == [first + (nf + 1) * dut.synapse_folds + 1 for nf in range(folds)]
    assert run.outputs[folds - 1] - first == dut.latency
    assert np.diff(run.outputs[folds - 1::folds]).tolist() == [dut.interval] * (images - 1)


@pytest.mark.parametrize("count", [1, 3, 4, 255])
def test_multithreshold_model_states_latency_and_interval(count):
    dut = unelaborated(threshold(2, count, 1, bits=10))
    run = schedule([dut.handshake_model()], 5, 100, outputs=5)
    assert [o - i for i, o in zip(run.inputs, run.outputs)] == [dut.latency] * 5
    assert np.diff(run.outputs).tolist() == [dut.interval] * 4


@pytest.mark.parametrize("inputs, outputs", [(4, 1), (1, 4), (6, 4), (4, 6), (5, 3), (3, 3)])
def test_width_converter_model_states_the_latency(inputs, outputs):
    dut = unelaborated(WidthConverter(element=unsigned(1), inputs=inputs, outputs=outputs))
    run = schedule([dut.handshake_model()], dut.group // inputs, 100, outputs=dut.group // outputs)
    assert run.outputs[-1] - run.inputs[0] == dut.latency


# The scheduler.

class Delay(HandshakeModel):
    """A one-register stage that takes a transfer only while empty: one every other cycle."""

    def __init__(self):
        self.valid = False

    def ready(self, out_ready):
        return not self.valid

    def clock(self, in_valid, out_ready):
        if self.valid and out_ready:
            self.valid = False
        elif in_valid and not self.valid:
            self.valid = True


def test_schedule_follows_the_patterns_and_stops():
    run = schedule([Delay()], 3, 50)
    assert run.inputs == (0, 2, 4) and run.outputs == (1, 3, 5) and run.cycles == 50
    stalled = schedule([Delay()], 3, 50, input_valid=lambda c: c >= 10, output_ready=lambda c: c % 4 == 3)
    assert stalled.inputs == (10, 12, 16) and stalled.outputs == (11, 15, 19)
    early = schedule([Delay()], 3, 50, outputs=2)
    assert early.outputs == (1, 3) and early.cycles == 4
    assert schedule([Delay()], 3, 4).outputs == (1, 3)


def test_the_ready_chain_is_combinational():
    # Two registers back to back take one transfer per cycle only where ready passes through: here it does not.
    run = schedule([Delay(), Delay()], 3, 50)
    assert run.inputs == (0, 2, 4) and run.outputs == (2, 4, 6)


def test_pass_throughs_drop_out_of_a_chain():
    assert schedule([PassThrough(), Delay(), PassThrough()], 3, 50).outputs == (1, 3, 5)
    wires = schedule([PassThrough()], 3, 50, output_ready=lambda c: c % 2 == 1)
    assert wires.inputs == wires.outputs == (1, 3, 5)
    nested = Chained([Chained([Delay(), PassThrough()]), Delay()])
    assert len(nested.models) == 2
    with pytest.raises(TypeError, match="pass-through has no valid"):
        PassThrough().valid


@st.composite
def model_chains(draw):
    """Chains of the components' handshake models with drawn parameters (any parameters give a deterministic
    machine, so the two ways of stepping must agree on each, deadlocks included)."""
    from hbnn.hw.channel_pad import ChannelPadHandshake
    from hbnn.hw.mvau import MvauHandshake
    from hbnn.hw.pool import WindowReduceHandshake
    from hbnn.hw.sliding_window import SlidingWindowHandshake
    from hbnn.hw.stream_fifo import StreamFifoHandshake
    from hbnn.hw.threshold import MultiThresholdHandshake
    from hbnn.hw.width_converter import GatherHandshake, SplitHandshake

    small = st.integers(1, 5)

    def sliding_window():
        rows = draw(st.integers(1, 4))
        output_rows = draw(st.integers(1, 4))
        return SlidingWindowHandshake(buffer_rows=rows, row_transfers=draw(small), output_row_transfers=draw(small),
                                      needed=draw(st.lists(st.integers(0, rows), min_size=output_rows,
                                                           max_size=output_rows)),
                                      releases=draw(st.lists(st.integers(0, 2), min_size=output_rows,
                                                             max_size=output_rows)))

    makers = [
        lambda: MvauHandshake(neuron_folds=draw(small), synapse_folds=draw(st.integers(1, 12)),
                              passes=draw(st.integers(1, 3))),
        lambda: MultiThresholdHandshake(stages=draw(small)),
        lambda: SplitHandshake(parts=draw(small)),
        lambda: GatherHandshake(parts=draw(small)),
        lambda: StreamFifoHandshake(depth=draw(st.integers(1, 6))),
        lambda: WindowReduceHandshake(window=draw(small)),
        lambda: ChannelPadHandshake(draw(st.integers(0, 2)), draw(small), draw(st.integers(0, 2))),
        sliding_window,
    ]
    kinds = draw(st.lists(st.integers(0, len(makers) - 1), min_size=1, max_size=8))
    return [makers[kind]() for kind in kinds]


@settings(max_examples=300, deadline=None)
@given(model_chains(), st.data())
def test_sleeping_through_quiet_spans_changes_no_handshake(chain, data):
    import copy

    from hbnn.hw.dataflow import model_state

    transfers = data.draw(st.integers(1, 60))
    cycles = data.draw(st.integers(1, 600))
    outputs = data.draw(st.one_of(st.none(), st.integers(1, 20)))
    plain_models = copy.deepcopy(chain)
    lazy = schedule(chain, transfers, cycles, outputs=outputs)
    plain = schedule(plain_models, transfers, cycles, outputs=outputs, skip_quiet=False)
    assert lazy == plain
    # Every deferred clock edge is applied before it returns: the states it leaves are the same.
    assert model_state(chain) == model_state(plain_models)
