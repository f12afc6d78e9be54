"""XnorPopcountMVU in Amaranth's simulator against the numpy reference, with random stalls on both streams."""
import numpy as np
import pytest

from hbnn.compiler.cycles import LAYER_PIPELINE_DEPTH
from hbnn.hw.accelerator import Accelerator
from hbnn.hw.layout import StreamFormat
from hbnn.hw.xnor_popcount import XnorPopcountMVU
from hbnn.sim.amaranth_stream import stream_through


def reference(weight_bits, thresholds, x):
    accumulators = x @ np.where(weight_bits, 1, -1).T
    if thresholds is None:
        return accumulators
    popcounts = (accumulators + weight_bits.shape[1]) // 2
    return np.where(popcounts >= thresholds, 1, -1)


def simulate(dut, inputs, output_format, *, input_gaps=0.0, output_stalls=0.0, seed=0):
    """Streams `inputs`, returns (outputs, input handshake cycles, output handshake cycles)."""
    return stream_through(dut, inputs, StreamFormat("bipolar", inputs.shape[1]), output_format, outputs=len(inputs),
                          input_gaps=input_gaps, output_stalls=output_stalls, seed=seed)


def make_layer(rng, rows, columns, thresholded):
    weight_bits = rng.random((rows, columns)) < 0.5
    thresholds = rng.integers(0, columns + 2, rows) if thresholded else None
    return weight_bits, thresholds


def decoder(rows, columns, thresholded):
    if thresholded:
        return StreamFormat("bipolar", rows)
    return StreamFormat("signed", rows, columns.bit_length() + 1)


@pytest.mark.parametrize("rows, columns, pe, simd, thresholded", [
    (4, 8, 1, 1, True),      # fully folded
    (4, 8, 4, 8, True),      # fully parallel
    (6, 12, 2, 4, False),    # accumulators out, odd shapes
    (8, 16, 4, 2, True),
    (10, 32, 5, 32, False),
    (1, 3, 1, 3, False),     # one row, one step
])
def test_matches_reference_under_random_backpressure(rows, columns, pe, simd, thresholded):
    rng = np.random.default_rng(rows * 100 + columns)
    weight_bits, thresholds = make_layer(rng, rows, columns, thresholded)
    inputs = np.where(rng.random((12, columns)) < 0.5, 1, -1)
    dut = XnorPopcountMVU(weight_bits=weight_bits, thresholds=thresholds, pe=pe, simd=simd)
    outputs, _, _ = simulate(dut, inputs, decoder(rows, columns, thresholded), input_gaps=0.3, output_stalls=0.4,
                             seed=rows)
    np.testing.assert_array_equal(outputs, reference(weight_bits, thresholds, inputs))


@pytest.mark.parametrize("rows, columns, pe, simd", [(4, 8, 1, 1), (4, 8, 4, 8), (8, 16, 2, 4)])
def test_cycles_equal_the_model(rows, columns, pe, simd):
    rng = np.random.default_rng(7)
    weight_bits, thresholds = make_layer(rng, rows, columns, True)
    inputs = np.where(rng.random((6, columns)) < 0.5, 1, -1)
    dut = XnorPopcountMVU(weight_bits=weight_bits, thresholds=thresholds, pe=pe, simd=simd)
    _, in_cycles, out_cycles = simulate(dut, inputs, decoder(rows, columns, True))
    steps = (rows // pe) * (columns // simd)
    assert out_cycles[0] - in_cycles[0] == steps + LAYER_PIPELINE_DEPTH
    assert np.diff(out_cycles).tolist() == [steps] * (len(inputs) - 1)


def test_chained_layers_stall_for_the_slowest():
    rng = np.random.default_rng(3)
    first = make_layer(rng, 8, 16, True)
    second = make_layer(rng, 4, 8, False)
    dut = Accelerator([XnorPopcountMVU(weight_bits=first[0], thresholds=first[1], pe=8, simd=16),
                       XnorPopcountMVU(weight_bits=second[0], thresholds=None, pe=1, simd=2)])
    inputs = np.where(rng.random((10, 16)) < 0.5, 1, -1)
    outputs, in_cycles, out_cycles = simulate(dut, inputs, decoder(4, 8, False))
    expected = reference(*second, reference(*first, inputs))
    np.testing.assert_array_equal(outputs, expected)
    assert out_cycles[0] - in_cycles[0] == (1 + 2) + (16 + 2)
    assert np.diff(out_cycles).tolist() == [16] * 9
    outputs, _, _ = simulate(dut, inputs, decoder(4, 8, False), input_gaps=0.5, output_stalls=0.5, seed=5)
    np.testing.assert_array_equal(outputs, expected)


def test_rejects_a_folding_that_does_not_divide():
    with pytest.raises(ValueError, match="pe=3 does not divide the layer dimension 4"):
        XnorPopcountMVU(weight_bits=np.ones((4, 8), bool), pe=3, simd=1)
    with pytest.raises(TypeError, match="simd must be a positive integer, not 0"):
        XnorPopcountMVU(weight_bits=np.ones((4, 8), bool), pe=1, simd=0)
