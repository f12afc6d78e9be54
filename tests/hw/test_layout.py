"""StreamFormat: the one packing rule of stream words, for files, the C++ driver, cocotb and Amaranth."""
import numpy as np
import pytest

from hbnn.hw.layout import StreamFormat


@pytest.mark.parametrize("fmt", [
    StreamFormat("bipolar", 5), StreamFormat("bipolar", 784), StreamFormat("signed", 10, 9),
    StreamFormat("unsigned", 7, 10, transfers=2), StreamFormat("signed", 1, 32), StreamFormat("unsigned", 3, 33),
])
def test_round_trip_and_integer_view_agree(fmt):
    rng = np.random.default_rng(fmt.payload_bits)
    if fmt.kind == "bipolar":
        values = np.where(rng.random((6, fmt.elements)) < 0.5, 1, -1)
    elif fmt.kind == "signed":
        values = rng.integers(-(1 << (fmt.element_bits - 1)), 1 << (fmt.element_bits - 1), (6, fmt.elements))
    else:
        values = rng.integers(0, 1 << fmt.element_bits, (6, fmt.elements))
    words = fmt.pack(values)
    assert words.shape == (6, fmt.words) and words.dtype == np.dtype("<u4")
    np.testing.assert_array_equal(fmt.unpack(words), values)
    for row, packed in zip(values, words):
        as_int = fmt.to_int(row)
        assert as_int < 1 << fmt.payload_bits
        assert as_int == int.from_bytes(packed.tobytes(), "little")
        np.testing.assert_array_equal(fmt.from_int(as_int), row)


def test_element_zero_sits_in_the_low_bits():
    assert StreamFormat("bipolar", 5).to_int([1, -1, -1, 1, 1]) == 0b11001
    assert StreamFormat("signed", 2, 4).to_int([3, -1]) == 0b1111_0011
    np.testing.assert_array_equal(StreamFormat("signed", 2, 4).from_int(0b1111_0011), [3, -1])


def test_values_out_of_range_are_refused():
    with pytest.raises(ValueError, match="must lie in -8..7"):
        StreamFormat("signed", 2, 4).pack([[8, 0]])
    with pytest.raises(ValueError, match="must be -1 or"):
        StreamFormat("bipolar", 2).pack([[0, 1]])
    with pytest.raises(ValueError, match="expected 3 elements"):
        StreamFormat("unsigned", 3, 4).pack([[1, 2]])


def test_manifest_entry_round_trip_and_description():
    fmt = StreamFormat("signed", 10, 9, transfers=4)
    assert StreamFormat.from_dict(fmt.as_dict()) == fmt
    assert fmt.describe() == "4 transfers of 10 9-bit signed elements"
    with pytest.raises(ValueError, match="kind must be one of"):
        StreamFormat("float", 1)
