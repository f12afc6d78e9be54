"""MultiThreshold against hbnn.compiler.multithreshold.Steps (the reference), with random back-pressure, measured
latency and interval equal to the component's, in Amaranth's simulator and once through Verilator."""
import numpy as np
import pytest
from hbnn.compiler.multithreshold import Steps
from hbnn.hw.layout import StreamFormat
from hbnn.hw.threshold import MultiThreshold
from hbnn.sim.amaranth_stream import stream_through


def random_steps(rng, channels, count, bits):
    """Thresholds spread over the key range and a little beyond; some falling and some constant channels."""
    limit = 1 << (bits - 1)
    thresholds = np.sort(rng.integers(-limit - 3, limit + 4, (channels, count)), axis=1)
    thresholds[0] = -limit - 5  # always at the top level
    if channels > 1:
        thresholds[1] = limit + 5  # never above level 0
    descending = rng.random(channels) < 0.4
    return Steps(thresholds=thresholds, descending=descending, never=limit + 1)


def output_format(dut):
    shape = dut.output_shape
    return StreamFormat("signed" if shape.signed else "unsigned", dut.pe, shape.width)


def simulate(dut, transfers, *, input_gaps=0.0, output_stalls=0.0, seed=0):
    """Streams (n, PE) accumulators; returns (levels (n, PE), input handshake cycles, output handshake cycles)."""
    return stream_through(dut, transfers, StreamFormat("signed", dut.pe, dut.accumulator_bits),
                          output_format(dut), outputs=len(transfers),
                          input_gaps=input_gaps, output_stalls=output_stalls, seed=seed)


def accumulators(rng, steps, bits, random_images):
    """(images, channels): every threshold and its neighbours as keys (so negated for falling channels), then
    random accumulators."""
    limit = 1 << (bits - 1)
    keys = np.concatenate([steps.thresholds + d for d in (-1, 0, 1)], axis=1).T  # (3T, channels)
    probes = np.where(steps.descending, -keys, keys)
    values = rng.integers(-limit, limit, (random_images, steps.thresholds.shape[0]))
    return np.clip(np.concatenate([probes, values]), -limit, limit - 1)


@pytest.mark.parametrize("channels, count, pe, bits", [
    (4, 1, 1, 6),      # sign, fully folded
    (4, 1, 4, 6),      # sign, fully parallel
    (6, 3, 2, 5),      # 2 levels bits, T = 3 exactly
    (8, 5, 4, 7),      # T = 5 padded to 7
    (3, 255, 1, 12),   # int8 requantization, 8 stages
    (16, 255, 16, 20),
])
def test_levels_equal_the_reference_under_backpressure(channels, count, pe, bits):
    rng = np.random.default_rng(channels * 1000 + count)
    steps = random_steps(rng, channels, count, bits)
    images = accumulators(rng, steps, bits, 20)
    dut = MultiThreshold(thresholds=steps.thresholds, descending=steps.descending, pe=pe, accumulator_bits=bits)
    transfers = images.reshape(-1, pe)
    outputs, _, _ = simulate(dut, transfers, input_gaps=0.3, output_stalls=0.4, seed=count)
    np.testing.assert_array_equal(outputs.reshape(images.shape), steps.levels(images))
    assert len(np.unique(outputs)) > 1  # the comparison is not trivial


@pytest.mark.parametrize("count, pe", [(1, 2), (255, 1), (6, 3)])
def test_latency_and_interval_equal_the_component(count, pe):
    rng = np.random.default_rng(count)
    steps = random_steps(rng, 6, count, 10)
    dut = MultiThreshold(thresholds=steps.thresholds, descending=steps.descending, pe=pe, accumulator_bits=10)
    transfers = rng.integers(-512, 512, (12, pe))
    _, in_cycles, out_cycles = simulate(dut, transfers)
    assert out_cycles[0] - in_cycles[0] == dut.latency == dut.stages + 1
    assert np.diff(out_cycles).tolist() == [dut.interval] * (len(transfers) - 1)


def test_verilog_through_verilator_equals_the_reference(tmp_path):
    from amaranth.back import verilog

    from hbnn.sim.design import Design
    from hbnn.sim.flow_control import FlowControl

    rng = np.random.default_rng(11)
    channels, pe, bits = 12, 4, 16
    steps = random_steps(rng, channels, 255, bits)
    dut = MultiThreshold(thresholds=steps.thresholds, descending=steps.descending, pe=pe, accumulator_bits=bits)
    path = tmp_path / "hbnn_top.v"
    path.write_text(verilog.convert(dut, name="hbnn_top", emit_src=False))
    design = Design(path, "hbnn_top", StreamFormat("signed", pe, bits, channels // pe),
                    StreamFormat("unsigned", pe, dut.stages, channels // pe), latency=dut.latency + 2,
                    interval=channels // pe, sim_root=tmp_path / "sim", label="MultiThreshold")
    images = accumulators(rng, steps, bits, 200)
    stimulus = design.stimulus(images.reshape(len(images), channels // pe, pe))
    run = design.run(stimulus, FlowControl(0.3, 0.3, seed=2))
    levels = design.output.unpack(run.outputs).reshape(images.shape)
    np.testing.assert_array_equal(levels, steps.levels(images))


def test_int8_codes_with_an_output_base():
    rng = np.random.default_rng(8)
    steps = random_steps(rng, 4, 255, 14)
    images = accumulators(rng, steps, 14, 20)
    dut = MultiThreshold(thresholds=steps.thresholds, descending=steps.descending, pe=2, accumulator_bits=14,
                         output_base=-128)
    assert dut.output_shape.signed and dut.output_shape.width == 8
    outputs, _, _ = simulate(dut, images.reshape(-1, 2), input_gaps=0.2, output_stalls=0.2, seed=3)
    np.testing.assert_array_equal(outputs.reshape(images.shape), steps.levels(images) - 128)
    assert outputs.min() == -128 and outputs.max() == 127


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="pe=3 does not divide the 4 channels"):
        MultiThreshold(thresholds=np.zeros((4, 1)), descending=np.zeros(4), pe=3, accumulator_bits=4)
    with pytest.raises(ValueError, match="non-decreasing"):
        MultiThreshold(thresholds=[[2, 1]], descending=[False], pe=1, accumulator_bits=4)
    with pytest.raises(TypeError, match="accumulator_bits must be a positive integer"):
        MultiThreshold(thresholds=[[1]], descending=[False], pe=1, accumulator_bits=0)
