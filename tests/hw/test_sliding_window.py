"""SlidingWindow against a numpy im2col under random gaps and stalls, several images back to back; its handshake
model against the RTL cycle for cycle; the stated latency and interval against the model and the RTL; input ready
independent of output ready; parameter errors."""
import numpy as np
import pytest
from amaranth.hdl import Value, signed, unsigned

from hbnn.hw.handshake import schedule
from hbnn.hw.sliding_window import SlidingWindow
from hbnn.sim.amaranth_stream import handshake_twins, stream_patterns, stream_through

BIPOLAR = unsigned(1)


def window(element=BIPOLAR, *, channels, simd, height, width, kernel, stride, padding, pad_value=0,
           depthwise=False):
    return SlidingWindow(element=element, channels=channels, height=height, width=width, kernel=kernel,
                         stride=stride, padding=padding, simd=simd, pad_value=pad_value, depthwise=depthwise)


def unelaborated(component):
    """A component used for its model and properties only: not an unused design."""
    component._MustUse__silence = True
    return component


def im2col(images, kernel, stride, padding, pad, simd, depthwise):
    """(N, H, W, C) element values -> output transfers (N*OH*OW*K*K*CF, SIMD) in the stream's order."""
    n, height, width, channels = images.shape
    padded = np.full((n, height + 2 * padding, width + 2 * padding, channels), pad, dtype=np.int64)
    padded[:, padding:padding + height, padding:padding + width] = images
    rows = (height + 2 * padding - kernel) // stride + 1
    columns = (width + 2 * padding - kernel) // stride + 1
    transfers = []
    for image in padded:
        for oy in range(rows):
            for ox in range(columns):
                patch = image[oy * stride:oy * stride + kernel, ox * stride:ox * stride + kernel]
                patch = patch.reshape(kernel, kernel, channels // simd, simd)  # (ky, kx, f, element)
                if depthwise:
                    patch = patch.transpose(2, 0, 1, 3)  # (f, ky, kx, element)
                transfers.append(patch.reshape(-1, simd))
    return np.concatenate(transfers)


# (channels, simd, height, width, kernel, stride, padding, element, pad_value, depthwise). R = K + S rows;
# heights are not multiples of R, so the buffer's rows wrap mid-image.
CASES = [
    (4, 1, 5, 5, 3, 1, 1, signed(8), 0, False),
    (4, 2, 6, 5, 3, 1, 0, BIPOLAR, 1, False),
    (4, 4, 5, 6, 3, 2, 1, signed(8), -5, False),
    (2, 1, 7, 6, 5, 1, 2, BIPOLAR, 1, False),
    (2, 2, 7, 7, 5, 2, 2, signed(8), -128, False),
    (2, 1, 5, 5, 5, 1, 0, signed(8), 0, False),      # one window per image
    (3, 3, 5, 5, 1, 1, 0, signed(8), 0, False),      # 1x1: a pass-through in another order
    (4, 2, 6, 7, 1, 2, 0, BIPOLAR, 0, False),        # K < S: rows and columns skipped
    (1, 1, 6, 5, 3, 1, 1, BIPOLAR, 0, False),
    (4, 2, 6, 5, 2, 2, 0, signed(8), 0, True),       # a 2x2 pool
    (4, 1, 5, 7, 3, 2, 1, BIPOLAR, 0, True),         # a padded 3x3 pool, stride 2
    (4, 4, 7, 5, 3, 1, 1, signed(8), -128, True),
    (4, 2, 6, 6, 5, 2, 2, signed(8), 7, True),
]


def case_id(case):
    channels, simd, height, width, kernel, stride, padding, element, pad, depthwise = case
    kind = "bipolar" if element == BIPOLAR else f"s{element.width}"
    return (f"C{channels}s{simd}-{height}x{width}-k{kernel}s{stride}p{padding}-{kind}"
            f"{'-dw' if depthwise else ''}")


def build(case):
    channels, simd, height, width, kernel, stride, padding, element, pad, depthwise = case
    return window(element, channels=channels, simd=simd, height=height, width=width, kernel=kernel,
                  stride=stride, padding=padding, pad_value=pad, depthwise=depthwise)


def images_for(case, count, seed):
    channels, _, height, width, *_, element, _, _ = case
    rng = np.random.default_rng(seed)
    if element == BIPOLAR:
        return np.where(rng.random((count, height, width, channels)) < 0.5, 1, -1)
    return rng.integers(-128, 128, (count, height, width, channels))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_windows_equal_im2col_under_backpressure(case):
    channels, simd, height, width, kernel, stride, padding, element, pad, depthwise = case
    dut = build(case)
    images = images_for(case, 3, seed=sum(case[:7]))
    pad_element = (1 if pad else -1) if element == BIPOLAR else pad  # bipolar code 1 is +1
    expected = im2col(images, kernel, stride, padding, pad_element, simd, depthwise)
    assert len(expected) == 3 * dut.output_format.transfers
    out, _, _ = stream_through(dut, images.reshape(-1, simd), dut.input_format, dut.output_format,
                               outputs=len(expected), input_gaps=0.4, output_stalls=0.4, seed=3)
    np.testing.assert_array_equal(out, expected)


def test_formats_and_geometry():
    dut = unelaborated(window(signed(8), channels=6, simd=2, height=7, width=5, kernel=3, stride=2, padding=1,
                              pad_value=-1))
    assert (dut.output_height, dut.output_width, dut.buffer_rows, dut.channel_folds) == (4, 3, 5, 3)
    assert dut.input_format.as_dict() == {"kind": "signed", "elements": 2, "element_bits": 8,
                                          "transfers": 7 * 5 * 3}
    assert dut.output_format.as_dict() == {"kind": "signed", "elements": 2, "element_bits": 8,
                                           "transfers": 4 * 3 * 9 * 3}
    bipolar = unelaborated(window(channels=4, simd=4, height=5, width=5, kernel=2, stride=2, padding=0))
    assert bipolar.input_format.kind == bipolar.output_format.kind == "bipolar"
    assert bipolar.output_format.transfers == 2 * 2 * 4


# The handshake model, cycle for cycle (hbnn.hw.handshake; tests/hw/test_handshake.py does the same for the others).

FLOWS = [(1.0, 1.0), (0.6, 0.6), (0.3, 0.9), (0.9, 0.3)]
TWIN_CASES = [
    (2, 1, 5, 5, 3, 1, 1, BIPOLAR, 1, False),
    (2, 2, 6, 5, 3, 2, 0, BIPOLAR, 0, False),   # stride 2: an unread last row, `ahead` below zero
    (2, 1, 5, 6, 1, 2, 0, BIPOLAR, 0, False),   # the writer sets the pace
    (2, 1, 6, 5, 2, 2, 0, BIPOLAR, 0, True),
    (1, 1, 7, 5, 5, 1, 2, BIPOLAR, 0, False),
    (4, 2, 5, 4, 3, 3, 1, BIPOLAR, 0, True),    # S = K: no overlap
]


def assert_twins(dut, images, flow, seed):
    """The component and its model fed the same seeded valid/ready patterns: identical handshakes, every output
    arrives."""
    transfers, outputs = images * dut.input_format.transfers, images * dut.output_format.transfers
    cycles = int((dut.latency + images * dut.interval) / min(flow) * 1.3) + 50
    rng = np.random.default_rng(seed)
    in_pattern, out_pattern = rng.random(cycles) < flow[0], rng.random(cycles) < flow[1]
    measured, modelled = handshake_twins(dut, transfers, outputs, in_pattern, out_pattern, seed=seed)
    assert len(measured[1]) == outputs, "the simulation ran out of cycles"
    assert modelled == measured


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("case", TWIN_CASES, ids=case_id)
def test_model_is_cycle_exact(case, flow):
    assert_twins(build(case), 2, flow, seed=sum(case[:7]) + int(flow[0] * 10))


def test_input_ready_ignores_output_ready():
    """Input ready is state only: flipping o_stream.ready (and i_stream.valid) within a cycle changes neither it
    nor the registered output. Checked in the RTL over two images with gaps and stalls, and in the model at
    every cycle."""
    dut = build(TWIN_CASES[0])
    source, sink = dut.i_stream, dut.o_stream
    checked = []

    def probe(ctx):
        before = (ctx.get(source.ready), ctx.get(sink.valid), ctx.get(Value.cast(sink.payload)))
        valid, ready = ctx.get(source.valid), ctx.get(sink.ready)
        for flipped_valid, flipped_ready in ((valid, not ready), (not valid, ready), (not valid, not ready)):
            ctx.set(source.valid, flipped_valid)
            ctx.set(sink.ready, flipped_ready)
            assert (ctx.get(source.ready), ctx.get(sink.valid), ctx.get(Value.cast(sink.payload))) == before
        ctx.set(source.valid, valid)
        ctx.set(sink.ready, ready)
        checked.append(before[0])

    images = 2
    rng = np.random.default_rng(7)
    cycles = 3 * (dut.latency + images * dut.interval)
    in_pattern, out_pattern = rng.random(cycles) < 0.7, rng.random(cycles) < 0.5
    payloads = [int(word) for word in rng.integers(0, 2, images * dut.input_format.transfers)]
    _, outs, _ = stream_patterns(dut, payloads, in_pattern, out_pattern,
                                 outputs=images * dut.output_format.transfers, probe=probe)
    assert len(outs) == images * dut.output_format.transfers
    assert 0 in checked and 1 in checked  # the input was held off at times, so both states were seen

    model = dut.handshake_model()
    for cycle in range(cycles):
        assert model.ready(False) == model.ready(True)
        model.clock(bool(in_pattern[cycle]), bool(out_pattern[cycle]))


# Timing.

TIMING_CASES = [
    (4, 2, 6, 5, 3, 1, 1, BIPOLAR, 0, False),   # the reader sets the pace, a stall at each image's start
    (2, 1, 7, 6, 1, 2, 0, BIPOLAR, 0, False),   # the writer sets the pace
    (2, 2, 6, 6, 2, 2, 0, signed(8), 0, True),  # a pool: both equal
    (2, 1, 7, 5, 5, 2, 2, signed(8), 0, False),
    (1, 1, 10, 3, 2, 3, 1, BIPOLAR, 0, False),  # K < S: the stall is inside the image
]


@pytest.mark.parametrize("case", TIMING_CASES, ids=case_id)
def test_latency_and_interval_equal_the_rtl(case):
    dut = build(case)
    images = 4
    per_image = dut.output_format.transfers
    transfers = images_for(case, images, seed=1).reshape(-1, dut.simd)
    _, ins, outs = stream_through(dut, transfers, dut.input_format, dut.output_format,
                                  outputs=images * per_image)
    lasts = outs[per_image - 1::per_image]
    assert lasts[0] - ins[0] == dut.latency
    assert np.diff(lasts)[1:].tolist() == [dut.interval] * (images - 2)


def test_latency_and_interval_equal_the_model():
    """The closed forms against the model (itself held to the RTL above) over a spread of shapes."""
    rng = np.random.default_rng(11)
    images = 4
    for _ in range(150):
        kernel, stride = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        padding = int(rng.integers(0, kernel))
        height, width = (int(rng.integers(max(1, kernel - 2 * padding), 10)) for _ in range(2))
        folds = int(rng.integers(1, 3))
        dut = unelaborated(window(channels=folds, simd=1, height=height, width=width, kernel=kernel,
                                  stride=stride, padding=padding))
        per_image = dut.output_format.transfers
        run = schedule([dut.handshake_model()], images * dut.input_format.transfers, 100_000,
                       outputs=images * per_image)
        lasts = run.outputs[per_image - 1::per_image]
        shape = (kernel, stride, padding, height, width, folds)
        assert lasts[0] - run.inputs[0] == dut.latency, shape
        assert np.diff(lasts)[1:].tolist() == [dut.interval] * (images - 2), shape


def test_interval_is_the_slower_side_for_plain_layers():
    # A 3x3 convolution: the reader's OH*L plus the wait for the next image's first two rows; a 1x1 stride-2
    # one: the writer's H*T.
    conv = unelaborated(window(channels=64, simd=8, height=32, width=32, kernel=3, stride=1, padding=0))
    assert conv.interval == 30 * (30 * 9 * 8) + 2 * (32 * 8)
    assert conv.latency == 3 * 32 * 8 + 30 * (30 * 9 * 8)
    subsample = unelaborated(window(channels=4, simd=4, height=8, width=8, kernel=1, stride=2, padding=0))
    assert subsample.interval == 8 * 8


# Errors.

@pytest.mark.parametrize("arguments, error, message", [
    (dict(simd=3), ValueError, r"simd=3 does not divide channels=4"),
    (dict(kernel=4), ValueError, r"kernel=4 is larger than the padded height 2 \+ 2\*0"),
    (dict(kernel=4, padding=1, width=1), ValueError, r"kernel=4 is larger than the padded width 1 \+ 2\*1"),
    (dict(pad_value=2), ValueError, r"pad_value=2 does not fit the element"),
    (dict(element=signed(8), pad_value=128), ValueError, r"pad_value=128 does not fit the element"),
    (dict(padding=3), ValueError, r"padding=3 must be less than kernel=3"),
    (dict(padding=-1), TypeError, r"padding must be a non-negative integer"),
    (dict(stride=0), TypeError, r"stride must be a positive integer"),
    (dict(channels=2.0), TypeError, r"channels must be a positive integer"),
])
def test_bad_parameters_are_refused(arguments, error, message):
    parameters = dict(element=BIPOLAR, channels=4, simd=1, height=2, width=5, kernel=3, stride=1, padding=0)
    if "kernel" not in arguments:
        parameters["height"] = 5
    parameters.update(arguments)
    with pytest.raises(error, match=message):
        window(**parameters)
