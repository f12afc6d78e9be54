"""DMA frames: the transfer's bytes divide the word or the word divides them, images start on a word, and the
driver's packing (boards/pynq_driver.py, standalone) puts every bit where hbnn.hw.layout.StreamFormat does."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hbnn.boards.pynq_driver import Frames
from hbnn.hw.dma_layout import DmaLayout
from hbnn.hw.layout import StreamFormat


@pytest.mark.parametrize("bits, dma_bytes, transfer_bytes", [
    (1, 8, 1), (8, 8, 1), (9, 8, 2), (24, 8, 4), (40, 8, 8), (64, 8, 8), (65, 8, 16), (160, 8, 24), (784, 8, 104),
    (24, 16, 4), (72, 16, 16), (160, 16, 32),
])
def test_transfer_bytes(bits, dma_bytes, transfer_bytes):
    layout = DmaLayout(StreamFormat("unsigned", bits, 1 if bits == 1 else 1, 1) if bits == 1 else
                       StreamFormat("unsigned", 1, bits, 1), dma_bytes)
    assert layout.transfer_bytes == transfer_bytes
    small, large = sorted((layout.transfer_bytes, dma_bytes))
    assert large % small == 0


def test_an_image_is_padded_to_whole_words():
    layout = DmaLayout(StreamFormat("signed", 3, 8, 10), 8)  # 10 transfers of 4 bytes: 5 words, no padding
    assert (layout.image_words, layout.pad_transfers) == (5, 0)
    layout = DmaLayout(StreamFormat("signed", 3, 8, 11), 8)  # 11 -> 6 words, one padding transfer
    assert (layout.image_words, layout.pad_transfers, layout.image_bytes) == (6, 1, 48)
    layout = DmaLayout(StreamFormat("signed", 10, 16, 2), 8)  # 20 bytes -> 24: three words per transfer
    assert (layout.words_per_transfer, layout.image_words, layout.pad_transfers) == (3, 6, 0)


def test_a_dma_word_is_a_power_of_two_bytes():
    with pytest.raises(ValueError, match="power of two"):
        DmaLayout(StreamFormat("unsigned", 1, 8, 1), 12)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["bipolar", "signed", "unsigned"]), bits=st.integers(1, 20),
       elements=st.integers(1, 40), transfers=st.integers(1, 9), dma_bytes=st.sampled_from([8, 16]),
       images=st.integers(1, 3), seed=st.integers(0, 2 ** 32 - 1))
def test_driver_frames_hold_the_stream_formats_bits(kind, bits, elements, transfers, dma_bytes, images, seed):
    bits = 1 if kind == "bipolar" else bits
    stream = StreamFormat(kind, elements, bits, transfers)
    layout = DmaLayout(stream, dma_bytes)
    frames = Frames({**stream.as_dict(), **layout.as_dict()})
    rng = np.random.default_rng(seed)
    if kind == "bipolar":
        codes = rng.choice([-1, 1], size=(images, transfers, elements))
    elif kind == "signed":
        codes = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(images, transfers, elements))
    else:
        codes = rng.integers(0, 1 << bits, size=(images, transfers, elements))
    data = frames.pack(codes).reshape(images, layout.image_bytes)
    # StreamFormat's words, little-endian, cut to the payload's bytes: the frame's transfers in its first bytes.
    words = stream.pack(codes.reshape(-1, elements)).reshape(images, transfers, -1)
    payload = np.ascontiguousarray(words).view(np.uint8)[..., :layout.payload_bytes]
    in_frames = data[:, :transfers * layout.transfer_bytes].reshape(images, transfers, layout.transfer_bytes)
    np.testing.assert_array_equal(in_frames[..., :layout.payload_bytes], payload)
    assert (in_frames[..., layout.payload_bytes:] == 0).all() and (data[:, transfers * layout.transfer_bytes:] == 0).all()
    np.testing.assert_array_equal(frames.unpack(data), codes)
