"""Property-based tests (hypothesis): random shapes, foldings, lane kinds, thresholds and back-pressure, each
component against its reference. 100 examples per property in `make test`."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbnn.compiler.multithreshold import Steps
from hbnn.hw.layout import StreamFormat
from hbnn.hw.mvau import Mvau
from hbnn.hw.threshold import MultiThreshold
from hbnn.sim.amaranth_stream import stream_through

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = [("binary", "bipolar"), ("binary", "int8"), ("ternary", "int8"), ("int8", "int8")]


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def mvau_cases(draw):
    weight_kind, input_kind = draw(st.sampled_from(KINDS))
    rows, columns = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    pe, simd = draw(st.sampled_from(divisors(rows))), draw(st.sampled_from(divisors(columns)))
    seed = draw(st.integers(0, 2**32 - 1))
    gaps, stalls = draw(st.sampled_from([0.0, 0.3, 0.6])), draw(st.sampled_from([0.0, 0.3, 0.6]))
    return weight_kind, input_kind, rows, columns, pe, simd, seed, gaps, stalls


@SETTINGS
@given(mvau_cases())
def test_mvau_equals_numpy(case):
    weight_kind, input_kind, rows, columns, pe, simd, seed, gaps, stalls = case
    rng = np.random.default_rng(seed)
    if weight_kind == "binary":
        weights = np.where(rng.random((rows, columns)) < 0.5, 1, -1)
    elif weight_kind == "ternary":
        weights = rng.integers(-1, 2, (rows, columns))
    else:
        weights = rng.integers(-128, 128, (rows, columns))
    x = (np.where(rng.random((4, columns)) < 0.5, 1, -1) if input_kind == "bipolar"
         else rng.integers(-128, 128, (4, columns)))
    dut = Mvau(weights=weights, weight_kind=weight_kind, input_kind=input_kind, pe=pe, simd=simd)
    out, _, out_cycles = stream_through(dut, x.reshape(-1, simd), dut.input_format, dut.output_format,
                                        outputs=4 * dut.neuron_folds, input_gaps=gaps, output_stalls=stalls,
                                        seed=seed)
    np.testing.assert_array_equal(out.reshape(4, rows), x @ weights.T)
    if gaps == stalls == 0.0:
        lasts = out_cycles[dut.neuron_folds - 1::dut.neuron_folds]
        assert np.diff(lasts).tolist() == [dut.interval] * 3


@st.composite
def threshold_cases(draw):
    channels = draw(st.integers(1, 8))
    pe = draw(st.sampled_from(divisors(channels)))
    count = draw(st.integers(1, 20))
    bits = draw(st.integers(2, 12))
    base = draw(st.integers(-300, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    return channels, pe, count, bits, base, seed


@SETTINGS
@given(threshold_cases())
def test_multithreshold_equals_steps(case):
    channels, pe, count, bits, base, seed = case
    rng = np.random.default_rng(seed)
    limit = 1 << (bits - 1)
    thresholds = np.sort(rng.integers(-limit - 2, limit + 3, (channels, count)), axis=1)
    steps = Steps(thresholds=thresholds, descending=rng.random(channels) < 0.5, never=limit + 1)
    images = rng.integers(-limit, limit, (6, channels))
    dut = MultiThreshold(thresholds=steps.thresholds, descending=steps.descending, pe=pe, accumulator_bits=bits,
                         output_base=base)
    shape = dut.output_shape
    out_format = StreamFormat("signed" if shape.signed else "unsigned", pe, shape.width)
    out, _, _ = stream_through(dut, images.reshape(-1, pe), StreamFormat("signed", pe, bits), out_format,
                               outputs=6 * channels // pe,
                               input_gaps=0.3, output_stalls=0.3, seed=seed)
    np.testing.assert_array_equal(out.reshape(6, channels), steps.levels(images) + base)
