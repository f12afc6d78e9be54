"""ChannelPad against numpy's channel padding under random gaps and stalls; its handshake model against the
component cycle for cycle; one transfer per cycle and latency 1 undisturbed; bad parameters refused."""
import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

from hbnn.hw.channel_pad import ChannelPad
from hbnn.hw.handshake import schedule
from hbnn.hw.layout import StreamFormat
from hbnn.sim.amaranth_stream import stream_patterns


@pytest.mark.parametrize("seed", range(10))
def test_pads_every_pixel_and_matches_its_model(seed):
    rng = np.random.default_rng(seed)
    simd = int(rng.choice([1, 2, 4]))
    channels, before, after = (simd * int(rng.integers(1, 4)), simd * int(rng.integers(0, 3)),
                               simd * int(rng.integers(0, 3)))
    pixels = int(rng.integers(1, 5))
    bipolar = seed % 3 == 0
    element = unsigned(1) if bipolar else signed(8)
    pad = int(rng.integers(0, 2)) if bipolar else int(rng.integers(-128, 128))
    fmt = StreamFormat("bipolar" if bipolar else "signed", simd, 1 if bipolar else 8)
    x = (rng.integers(0, 2, (pixels, channels)) if bipolar else rng.integers(-128, 128, (pixels, channels)))
    codes = np.where(x == 1, 1, -1) if bipolar else x
    payloads = [fmt.to_int(row) for row in codes.reshape(-1, simd)]
    dut = ChannelPad(element=element, channels=channels, before=before, after=after, simd=simd, pixels=pixels,
                     pad_value=pad)
    outputs = pixels * (before + channels + after) // simd
    cycles = 8 * outputs + 40
    patterns = rng.random((2, cycles)) >= np.array([[rng.choice([0.0, 0.4])], [rng.choice([0.0, 0.4])]])
    ins, outs, received = stream_patterns(dut, payloads, patterns[0], patterns[1], outputs=outputs)
    got = np.array([fmt.from_int(word) for word in received]).reshape(pixels, -1)
    pad_code = (1 if pad else -1) if bipolar else pad
    np.testing.assert_array_equal(got, np.pad(codes, ((0, 0), (before, after)), constant_values=pad_code))
    modelled = schedule([dut.handshake_model()], len(payloads), cycles, input_valid=patterns[0].__getitem__,
                        output_ready=patterns[1].__getitem__, outputs=outputs)
    assert (list(modelled.inputs), list(modelled.outputs)) == (ins, outs)


def test_undisturbed_one_output_per_cycle():
    dut = ChannelPad(element=signed(4), channels=2, before=1, after=1, simd=1, pixels=3)
    ins, outs, _ = stream_patterns(dut, list(range(6)), [1] * 20, [1] * 20, outputs=12)
    assert outs == list(range(1, 13)) and dut.interval == 12 and dut.latency == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=4, before=1, after=2, simd=2), "simd=2 must divide"),
    (dict(channels=4, before=-2, after=2, simd=2), "before must be a non-negative"),
    (dict(channels=4, before=2, after=2, simd=2, pad_value=200), "does not fit"),
])
def test_bad_parameters_are_refused(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        ChannelPad(element=signed(8), pixels=1, **kwargs)
