"""Dataflow chains (Mvau -> MultiThreshold -> WidthConverter -> Mvau ...) in Amaranth's simulator, with real data:
the outputs equal numpy's, and every handshake at the chain's input and output equals the chained handshake models'
(hbnn.hw.handshake), undisturbed and under seeded random valid/ready patterns; chain_timing equals the undisturbed
simulation measured as sim.design.measure_timing measures it. Then Dataflow's checks, MultiThreshold's
output_shape, and a StreamFifo in front of an Mvau, which stops chained Mvaus from coupling."""
import itertools
import numpy as np
import pytest
from amaranth.hdl import Shape, signed, unsigned
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbnn.sim.amaranth_stream import stream_patterns
from hbnn.hw.dataflow import Dataflow, chain_timing, image_transfers, stream_images
from hbnn.hw.handshake import schedule
from hbnn.hw.layout import StreamFormat
from hbnn.hw.mvau import Mvau
from hbnn.hw.stream_fifo import StreamFifo
from hbnn.hw.threshold import MultiThreshold
from hbnn.hw.width_converter import WidthConverter
from hbnn.sim.amaranth_stream import stream_through

CYCLES = 1500
FLOWS = [(1.0, 1.0), (0.6, 0.6), (0.3, 0.9), (0.9, 0.3)]


def wire_format(component, name):
    """The StreamFormat of one of the component's streams, from its payload layout."""
    layout = component.signature.members[name].signature.members["payload"].shape
    shape = Shape.cast(layout.elem_shape)
    return StreamFormat("signed" if shape.signed else "unsigned", layout.length, shape.width)


def simulate(dut, payloads, outputs, in_pattern, out_pattern):
    return stream_patterns(dut, payloads, in_pattern, out_pattern, outputs=outputs)


# A chain from a plan: Mvau layers, each but the last followed by a MultiThreshold coding for the next layer's
# input kind and, where its PE differs from the next SIMD, a WidthConverter.

def bipolar(rng, shape):
    return np.where(rng.random(shape) < 0.5, 1, -1)


def build_chain(rng, layers, images, *, tail="mvau", levels=15, keep_wires=False):
    """layers: (weight_kind, input_kind, rows, pe, simd), the first with its columns as a sixth entry. tail: "mvau",
    "threshold" (a last MultiThreshold) or "converter" (and a WidthConverter to one element per transfer).
    Returns (stages, input elements (images, columns), the expected output elements (transfers, elements))."""
    columns = layers[0][5]
    x = bipolar(rng, (images, columns)) if layers[0][1] == "bipolar" else rng.integers(-128, 128, (images, columns))
    first = x
    stages = []
    for index, (weight_kind, input_kind, rows, pe, simd, *_) in enumerate(layers):
        weights = bipolar(rng, (rows, columns)) if weight_kind == "binary" else rng.integers(-128, 128, (rows, columns))
        mvau = Mvau(weights=weights, weight_kind=weight_kind, input_kind=input_kind, pe=pe, simd=simd)
        stages.append(mvau)
        x = x @ weights.T
        following = layers[index + 1] if index + 1 < len(layers) else None
        if following is None and tail == "mvau":
            break
        # Sign for a bipolar consumer; `levels` int8 codes, centred, for an int8 one or at the end.
        signs = following is not None and following[1] == "bipolar"
        count = 1 if signs else levels
        base = 0 if signs else -((count + 1) // 2)
        thresholds = np.sort(rng.integers(x.min(), x.max() + 1, (rows, count)), axis=1)
        descending = rng.random(rows) < 0.3
        threshold = MultiThreshold(thresholds=thresholds, descending=descending, pe=pe,
                                   accumulator_bits=mvau.accumulator_bits, output_base=base,
                                   output_shape=signed(8) if following is not None and not signs else None)
        stages.append(threshold)
        keys = np.where(descending, -x, x)
        codes = (keys[:, :, None] >= thresholds[None]).sum(axis=2) + base
        x = (2 * codes - 1) if signs else codes
        outputs = following[4] if following is not None else (1 if tail == "converter" else pe)
        if outputs != pe or keep_wires:
            stages.append(WidthConverter(element=threshold.output_shape, inputs=pe, outputs=outputs))
        if following is None:
            x = codes
            break
        columns = rows
    out_format = wire_format(stages[-1], "o_stream")
    return stages, first, x.reshape(-1, out_format.elements)


def unelaborated(*components):
    """Components used for their models or checks only: not unused designs (Amaranth warns of those)."""
    for component in components:
        component._MustUse__silence = True


def run_chain(stages, x, flow, seed):
    """The Dataflow in simulation and its models, fed the same patterns; the same handshakes; the outputs."""
    rng = np.random.default_rng(seed)
    in_pattern, out_pattern = rng.random(CYCLES) < flow[0], rng.random(CYCLES) < flow[1]
    dut = Dataflow(stages)
    in_format = stages[0].input_format
    payloads = [in_format.to_int(row) for row in x.reshape(-1, in_format.elements)]
    (_, per_image), = image_transfers(stages)[-1:]
    outputs = len(x) * per_image
    ins, outs, received = simulate(dut, payloads, outputs, in_pattern, out_pattern)
    assert len(outs) == outputs, "the simulation ran out of cycles"
    for models in ([stage.handshake_model() for stage in stages], [dut.handshake_model()]):
        modelled = schedule(models, len(payloads), CYCLES, input_valid=in_pattern.__getitem__,
                            output_ready=out_pattern.__getitem__, outputs=outputs)
        assert list(modelled.inputs) == ins
        assert list(modelled.outputs) == outs
    out_format = wire_format(dut, "o_stream")
    return np.array([out_format.from_int(word) for word in received]).reshape(outputs, -1), ins, outs


CHAINS = {
    # binary layers, a sign between them, 2 -> 4 gathered
    "gather": dict(layers=[("binary", "bipolar", 8, 2, 3, 12), ("binary", "bipolar", 6, 3, 4)]),
    # fully parallel into fully folded: the 4 -> 1 split back-pressures the first layer within an image
    "split": dict(layers=[("binary", "bipolar", 4, 4, 8, 8), ("binary", "bipolar", 2, 1, 1)]),
    # int8 layers, 15-level codes widened to int8, 3 -> 2 split then gathered, then a last threshold
    "int8": dict(layers=[("int8", "int8", 6, 3, 2, 4), ("binary", "int8", 4, 1, 2)], tail="threshold"),
    # 255 levels (8 compare stages), a pass-through converter, a final converter to single elements
    "wires": dict(layers=[("binary", "int8", 4, 2, 2, 4), ("int8", "int8", 3, 3, 2)], levels=255, keep_wires=True),
    "two stages": dict(layers=[("binary", "bipolar", 4, 2, 2, 6)], tail="threshold", levels=3),
    "three stages": dict(layers=[("binary", "bipolar", 6, 3, 3, 6)], tail="converter"),
    "four layers": dict(layers=[("binary", "bipolar", 4, 1, 2, 4), ("binary", "bipolar", 4, 2, 1),
                                ("binary", "int8", 6, 3, 4), ("int8", "int8", 2, 2, 3)]),
}


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("name", CHAINS)
def test_chains_match_numpy_and_their_models(name, flow):
    rng = np.random.default_rng(len(name))
    stages, x, expected = build_chain(rng, images=3, **CHAINS[name])
    out, _, _ = run_chain(stages, x, flow, seed=len(name) + int(10 * flow[0]))
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", CHAINS)
def test_chain_timing_equals_the_undisturbed_simulation(name):
    rng = np.random.default_rng(len(name))
    images = 4
    stages, x, _ = build_chain(rng, images=images, **CHAINS[name])
    timing = chain_timing(stages, images)
    _, ins, outs = run_chain(stages, x, (1.0, 1.0), seed=0)
    assert timing.input_cycles == tuple(ins) and timing.output_cycles == tuple(outs)
    # As measure_timing measures a co-simulation.
    ends = outs[timing.output_transfers - 1::timing.output_transfers]
    starts = ins[::timing.input_transfers]
    gaps = np.diff(ends)
    assert timing.latency == ends[0] - starts[0]
    assert timing.interval_spread == (gaps.min(), gaps.max())
    assert timing.initiation_interval == gaps.max()


@pytest.mark.parametrize("name", CHAINS)
def test_stream_images_equals_a_finite_stream_and_finds_the_repeat(name):
    # An endless stream's image ends equal a 12-image stream's (later images never delay earlier ones), and the
    # gaps after a repeated end state follow the repeat.
    stages, _, _ = build_chain(np.random.default_rng(len(name)), images=1, **CHAINS[name])
    images = 12
    timing = chain_timing(stages, images)
    ends = timing.output_cycles[timing.output_transfers - 1::timing.output_transfers]
    streamed = list(itertools.islice(stream_images(stages), images))
    assert [end.cycle for end in streamed] == [end - timing.input_cycles[0] for end in ends]
    repeat = next(end for end in streamed if end.repeats is not None)
    period = repeat.image - repeat.repeats
    gaps = np.diff(ends)
    assert all(gaps[i] == gaps[i - period] for i in range(repeat.image, images - 1))
    unelaborated(*stages)


def test_chain_latency_is_not_the_sum_of_latencies():
    # The split's back-pressure holds the first Mvau's outputs within an image; the stages overlap.
    stages, _, _ = build_chain(np.random.default_rng(0), images=1, **CHAINS["split"])
    timing = chain_timing(stages, 1)
    assert timing.latency != sum(stage.latency for stage in stages)
    unelaborated(*stages)


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def chains(draw):
    count = draw(st.integers(1, 3))
    columns = draw(st.integers(1, 8))
    layers = []
    for index in range(count):
        weight_kind, input_kind = draw(st.sampled_from([("binary", "bipolar"), ("binary", "int8"), ("int8", "int8")]))
        rows = draw(st.integers(1, 8))
        layer = (weight_kind, input_kind, rows, draw(st.sampled_from(divisors(rows))),
                 draw(st.sampled_from(divisors(columns))))
        layers.append(layer + (columns,) if index == 0 else layer)
        columns = rows
    tail = draw(st.sampled_from(["mvau", "threshold", "converter"]))
    levels = draw(st.sampled_from([1, 3, 15]))
    flow = (draw(st.sampled_from([0.3, 0.7, 1.0])), draw(st.sampled_from([0.3, 0.7, 1.0])))
    return dict(layers=layers, tail=tail, levels=levels), flow, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains())
def test_random_chains_match_numpy_and_their_models(case):
    plan, flow, seed = case
    stages, x, expected = build_chain(np.random.default_rng(seed), images=2, **plan)
    out, _, _ = run_chain(stages, x, flow, seed)
    np.testing.assert_array_equal(out, expected)


# Dataflow's checks.

def test_mismatched_streams_name_both_stages():
    first = Mvau(weights=np.ones((4, 4), int), weight_kind="binary", input_kind="bipolar", pe=2, simd=2)
    second = Mvau(weights=np.ones((4, 4), int), weight_kind="binary", input_kind="bipolar", pe=2, simd=2)
    with pytest.raises(ValueError, match=r"stage 0 \(Mvau\) produces .*ArrayLayout\(signed\(4\), 2\).* but "
                                         r"stage 1 \(Mvau\) consumes .*ArrayLayout\(unsigned\(1\), 2\)"):
        Dataflow([first, second])
    with pytest.raises(ValueError, match="at least one stage"):
        Dataflow([])
    unelaborated(first, second)


def test_ends_are_the_first_input_and_the_last_output():
    stages, _, _ = build_chain(np.random.default_rng(1), images=1, **CHAINS["gather"])
    dut = Dataflow(stages)
    assert dut.stages == tuple(stages)
    assert dut.signature.members["i_stream"] == stages[0].signature.members["i_stream"]
    assert dut.signature.members["o_stream"] == stages[-1].signature.members["o_stream"]
    unelaborated(dut, *stages)


def test_transfers_per_image_follow_the_elements():
    stages, _, _ = build_chain(np.random.default_rng(2), images=1, **CHAINS["int8"])
    # Mvau 4 -> 6 (2 in, 2 out), threshold 2 of 3, converter 3 -> 2 (2 in, 3 out), Mvau 6 -> 4, threshold.
    assert image_transfers(stages) == [(2, 2), (2, 2), (2, 3), (3, 4), (4, 4)]
    assert image_transfers(stages[1:], input_transfers=2) == [(2, 2), (2, 3), (3, 4), (4, 4)]
    with pytest.raises(ValueError, match=r"stage 0 \(MultiThreshold\) does not state its transfers per image"):
        image_transfers(stages[1:])
    with pytest.raises(ValueError, match=r"stage 1 \(WidthConverter\) cannot regroup an image of 3 elements into "
                                         r"whole transfers of 2"):
        image_transfers(stages[1:], input_transfers=1)
    with pytest.raises(ValueError, match=r"stage 2 \(Mvau\) takes 3 transfers per image, not the 6 that arrive"):
        image_transfers(stages[1:], input_transfers=4)
    with pytest.raises(ValueError, match="images must be a positive integer, not 0"):
        chain_timing(stages, 0)
    unelaborated(*stages)


# MultiThreshold's output_shape: fewer levels into a wider consumer.

def test_a_wider_output_shape_carries_the_same_codes():
    rng = np.random.default_rng(3)
    thresholds = np.sort(rng.integers(-20, 20, (4, 3)), axis=1)
    descending = np.array([False, True, False, True])
    dut = MultiThreshold(thresholds=thresholds, descending=descending, pe=2, accumulator_bits=6, output_base=-2,
                         output_shape=signed(8))
    assert dut.output_shape == signed(8)
    narrow = MultiThreshold(thresholds=thresholds, descending=descending, pe=2, accumulator_bits=6, output_base=-2)
    assert narrow.output_shape == signed(2)
    unelaborated(narrow)
    acc = rng.integers(-32, 32, (5, 4))
    out, _, _ = stream_through(dut, acc.reshape(-1, 2), StreamFormat("signed", 2, 6), StreamFormat("signed", 2, 8),
                               outputs=10, input_gaps=0.3, output_stalls=0.3)
    keys = np.where(descending, -acc, acc)
    np.testing.assert_array_equal(out.reshape(5, 4), (keys[:, :, None] >= thresholds[None]).sum(axis=2) - 2)


@pytest.mark.parametrize("shape, base, message", [
    (unsigned(2), -2, r"output_shape unsigned\(2\) cannot hold the codes -2..1"),
    (signed(2), 0, r"output_shape signed\(2\) cannot hold the codes 0..3"),
    (unsigned(8), 253, r"output_shape unsigned\(8\) cannot hold the codes 253..256"),
])
def test_an_output_shape_too_narrow_for_the_codes_is_refused(shape, base, message):
    with pytest.raises(ValueError, match=message):
        MultiThreshold(thresholds=np.zeros((2, 3), int), descending=np.zeros(2, bool), pe=1, accumulator_bits=4,
                       output_base=base, output_shape=shape)
    with pytest.raises(TypeError):
        MultiThreshold(thresholds=np.zeros((2, 3), int), descending=np.zeros(2, bool), pe=1, accumulator_bits=4,
                       output_shape="int8")


# A StreamFifo in front of an Mvau. The Mvau takes its input transfers only during its first neuron fold, so without
# a buffer its producer's output register fills while it runs its other folds, the producer stalls, and the layers
# couple: the chain streams slower than its slowest layer. Both layers here take 32 cycles per image.

FIFO_CHAINS = {
    # PE 4 into SIMD 4, no converter: the next Mvau takes 8 transfers per image. Coupled: 48 cycles per image.
    "direct": [("binary", "bipolar", 32, 4, 16, 64), ("binary", "bipolar", 4, 1, 4)],
    # PE 4 gathered into SIMD 16: 2 transfers per image. The gatherer's and the threshold unit's registers already
    # hold a whole image, so this chain does not couple without a FIFO.
    "gathered": [("binary", "bipolar", 32, 4, 16, 64), ("binary", "bipolar", 16, 1, 16)],
}


def with_fifo(stages, depth):
    """The stages with a StreamFifo of `depth` in front of the last Mvau; "image": its input transfers per image."""
    index = max(i for i, stage in enumerate(stages) if isinstance(stage, Mvau))
    layout = stages[index].signature.members["i_stream"].signature.members["payload"].shape
    if depth == "image":
        depth = stages[index].input_format.transfers
    return [*stages[:index], StreamFifo(element=layout.elem_shape, elements=layout.length, depth=depth),
            *stages[index:]]


@pytest.mark.parametrize("name, depth, interval", [
    ("direct", None, 48), ("direct", 4, 35), ("direct", 5, 32), ("direct", "image", 32),
    ("gathered", None, 32), ("gathered", 1, 33), ("gathered", "image", 32),
])
def test_a_fifo_decouples_chained_mvaus(name, depth, interval):
    layers = FIFO_CHAINS[name]
    stages, x, expected = build_chain(np.random.default_rng(4), layers=layers, images=5)
    if depth is not None:
        stages = with_fifo(stages, depth)
    timing = chain_timing(stages, len(x))
    out, ins, outs = run_chain(stages, x, (1.0, 1.0), seed=0)  # also the models, cycle for cycle
    np.testing.assert_array_equal(out, expected)
    assert timing.input_cycles == tuple(ins) and timing.output_cycles == tuple(outs)
    assert timing.interval_spread == (interval, interval)
    assert max(stage.interval for stage in stages if isinstance(stage, Mvau)) == 32
    if depth is not None:
        out, _, _ = run_chain(stages, x, (0.6, 0.6), seed=1)  # under gaps and stalls too
        np.testing.assert_array_equal(out, expected)
