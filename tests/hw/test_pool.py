"""WindowReduce against numpy under random gaps and stalls; its handshake model against the component cycle for cycle;
the stated latency and interval measured; bad parameters refused, each naming the parameter."""
import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbnn.hw.handshake import schedule
from hbnn.hw.pool import WindowReduce
from hbnn.sim.amaranth_stream import handshake_twins, stream_through

BIPOLAR = "bipolar"


def build(bits, kind, window, simd, groups):
    """bits: BIPOLAR, n (signed(n)) or "un" (unsigned(n): ABC-Net levels)."""
    element = unsigned(1) if bits == BIPOLAR else unsigned(int(bits[1:])) if isinstance(bits, str) else signed(bits)
    return WindowReduce(element=element, simd=simd, window=window, kind=kind, groups=groups)


def random_images(rng, bits, images, groups, window, simd):
    """(images, groups, window, simd) elements; some groups all at the range's ends, so that a sum reaches the output
    width's limits and a maximum may be the lowest value."""
    shape = (images, groups, window, simd)
    if bits == BIPOLAR:
        # Half the groups mostly -1, so that a maximum over a large window is not +1 everywhere.
        dense = np.where(rng.random(shape) < 0.5, 1, -1)
        sparse = np.where(rng.random(shape) < 1.5 / window, 1, -1)
        values = np.where(rng.random(shape[:2] + (1, 1)) < 0.5, dense, sparse)
        values[0, 0] = -1  # an all -1 group: the OR is 0
        values[-1, -1] = 1
        return values
    if isinstance(bits, str):  # unsigned levels
        low, high = 0, (1 << int(bits[1:])) - 1
    else:
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    values = rng.integers(low, high + 1, shape)
    values[0, 0] = low
    values[-1, -1] = high
    return values


def reference(values, kind):
    return values.max(axis=2) if kind == "max" else values.sum(axis=2)


# (element bits or bipolar, kind, window, simd, groups per image)
CASES = [
    (BIPOLAR, "max", 1, 1, 5),
    (BIPOLAR, "max", 4, 8, 4),
    (BIPOLAR, "max", 9, 3, 3),
    (BIPOLAR, "max", 49, 2, 2),
    (8, "max", 1, 4, 4),
    (8, "max", 4, 5, 4),
    (8, "max", 9, 1, 3),
    (8, "max", 49, 8, 2),
    (12, "max", 9, 4, 3),
    ("u2", "max", 4, 3, 4),  # ABC-Net levels 0..3
    ("u2", "max", 9, 2, 3),
    (8, "sum", 1, 3, 4),
    (8, "sum", 4, 2, 4),
    (8, "sum", 9, 7, 3),
    (8, "sum", 49, 8, 2),
    (12, "sum", 4, 6, 3),
    (2, "sum", 49, 1, 2),
]


@pytest.mark.parametrize("bits, kind, window, simd, groups", CASES)
def test_reduction_equals_numpy_under_backpressure(bits, kind, window, simd, groups):
    seed = window * 100 + simd * 10 + groups
    rng = np.random.default_rng(seed)
    images = 3
    values = random_images(rng, bits, images, groups, window, simd)
    dut = build(bits, kind, window, simd, groups)
    assert dut.input_format.frame_shape == (groups * window, simd)
    assert dut.output_format.frame_shape == (groups, simd)
    out, _, _ = stream_through(dut, values.reshape(-1, simd), dut.input_format, dut.output_format,
                               outputs=images * groups, input_gaps=0.3, output_stalls=0.4, seed=seed)
    expected = reference(values, kind)
    np.testing.assert_array_equal(out.reshape(expected.shape), expected)
    assert len(np.unique(out)) > 1  # not a constant output
    if bits != BIPOLAR and kind == "sum":
        limit = 1 << (dut.output_bits - 1)
        assert expected.min() >= -limit and expected.max() < limit  # the stated width holds every sum


@st.composite
def cases(draw):
    kind = draw(st.sampled_from(["max", "sum"]))
    bits = draw(st.sampled_from(([BIPOLAR] if kind == "max" else []) + [2, 3, 8, 12]))
    window = draw(st.sampled_from([1, 2, 3, 4, 9, 16, 25, 49]))
    simd, groups = draw(st.integers(1, 8)), draw(st.integers(1, 3))
    flow = draw(st.sampled_from([0.0, 0.3, 0.6])), draw(st.sampled_from([0.0, 0.3, 0.6]))
    return bits, kind, window, simd, groups, flow, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_random_reductions_equal_numpy(case):
    bits, kind, window, simd, groups, (gaps, stalls), seed = case
    rng = np.random.default_rng(seed)
    images = 2
    values = random_images(rng, bits, images, groups, window, simd)
    dut = build(bits, kind, window, simd, groups)
    out, _, _ = stream_through(dut, values.reshape(-1, simd), dut.input_format, dut.output_format,
                               outputs=images * groups, input_gaps=gaps, output_stalls=stalls, seed=seed)
    expected = reference(values, kind)
    np.testing.assert_array_equal(out.reshape(expected.shape), expected)


def unelaborated(component):
    """A component used for its properties only: not an unused design (Amaranth warns of those)."""
    component._MustUse__silence = True
    return component


def test_output_width():
    widths = {window: unelaborated(build(8, "sum", window, 1, 1)).output_bits
              for window in (1, 2, 3, 4, 5, 9, 49, 64, 65)}
    assert widths == {1: 8, 2: 9, 3: 10, 4: 10, 5: 11, 9: 12, 49: 14, 64: 14, 65: 15}
    for window, bits in widths.items():  # the tightest width: window * -128 needs it, one bit fewer does not
        assert -(1 << (bits - 1)) <= window * -128 < -(1 << (bits - 2))
    maximum = unelaborated(build(12, "max", 9, 2, 1))
    assert maximum.output_bits == 12 and maximum.output_element == signed(12)
    bipolar = unelaborated(build(BIPOLAR, "max", 9, 2, 7))
    assert bipolar.output_element == unsigned(1)
    assert bipolar.output_format.kind == bipolar.input_format.kind == "bipolar"
    assert (bipolar.input_format.transfers, bipolar.output_format.transfers) == (63, 7)


# The handshake model, cycle for cycle.

CYCLES = 400
FLOWS = [(1.0, 1.0), (0.6, 0.6), (0.3, 0.9), (0.9, 0.3)]


def assert_twins(dut, transfers, outputs, flow, seed):
    """The component and its model fed the same per-cycle valid/ready patterns: identical handshakes, and every
    output arrives."""
    rng = np.random.default_rng(seed)
    in_pattern, out_pattern = rng.random(CYCLES) < flow[0], rng.random(CYCLES) < flow[1]
    measured, modelled = handshake_twins(dut, transfers, outputs, in_pattern, out_pattern, seed=seed)
    assert len(measured[1]) == outputs, "the simulation ran out of cycles"
    assert modelled == measured


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("bits, kind, window, simd", [
    (BIPOLAR, "max", 1, 2),  # a window of one: a register stage
    (8, "sum", 2, 1),
    (8, "max", 4, 3),
    (BIPOLAR, "max", 9, 1),
])
def test_model_is_cycle_exact(bits, kind, window, simd, flow):
    groups = 3
    dut = build(bits, kind, window, simd, groups)
    images = max(1, 40 // (groups * window))
    assert_twins(dut, images * groups * window, images * groups, flow, seed=window * 10 + simd)


# The stated timing.

@pytest.mark.parametrize("bits, kind, window, simd, groups", [
    (BIPOLAR, "max", 1, 1, 3), (8, "max", 4, 2, 3), (8, "sum", 9, 3, 2), (8, "sum", 49, 1, 1)])
def test_latency_and_interval_equal_the_measured(bits, kind, window, simd, groups):
    rng = np.random.default_rng(window)
    images = 4
    values = random_images(rng, bits, images, groups, window, simd)
    dut = build(bits, kind, window, simd, groups)
    _, in_cycles, out_cycles = stream_through(dut, values.reshape(-1, simd), dut.input_format, dut.output_format,
                                              outputs=images * groups)
    assert in_cycles == list(range(images * groups * window))  # one input per cycle, never stalled
    lasts = out_cycles[groups - 1::groups]
    assert lasts[0] - in_cycles[0] == dut.latency == groups * window
    assert np.diff(lasts).tolist() == [dut.interval] * (images - 1)
    assert dut.interval == groups * window
    # The model states the same.
    run = schedule([dut.handshake_model()], images * groups * window, 10_000, outputs=images * groups)
    assert list(run.inputs) == in_cycles and list(run.outputs) == out_cycles


@pytest.mark.parametrize("bits, kind, window", [(BIPOLAR, "max", 1), (8, "max", 4), (8, "sum", 9), (3, "sum", 1)])
def test_verilog_is_lint_clean(tmp_path, bits, kind, window):
    from amaranth.back import verilog

    from hbnn.hw.lint import lint_verilog

    path = tmp_path / "hbnn_top.v"
    path.write_text(verilog.convert(build(bits, kind, window, 3, 2), name="hbnn_top", emit_src=False))
    result = lint_verilog(path, "hbnn_top")
    assert result.clean, result.output


# Bad parameters.

@pytest.mark.parametrize("arguments, error, message", [
    (dict(element=unsigned(1), kind="sum"), ValueError, "kind 'sum' needs signed elements"),
    (dict(kind="avg"), ValueError, r"kind must be one of \('max', 'sum'\), not 'avg'"),
    (dict(window=0), TypeError, "window must be a positive integer, not 0"),
    (dict(simd=0), TypeError, "simd must be a positive integer, not 0"),
    (dict(groups=-1), TypeError, "groups must be a positive integer, not -1"),
    (dict(element=unsigned(4), kind="sum"), ValueError, "element must be signed"),
    (dict(element=signed(1)), ValueError, "element must be signed"),
    (dict(element="int8"), TypeError, "element must be a shape"),
])
def test_bad_parameters_are_refused(arguments, error, message):
    parameters = dict(element=signed(8), simd=2, window=4, kind="max", groups=3) | arguments
    with pytest.raises(error, match=message):
        WindowReduce(**parameters)
