"""The wire format of the accelerator's streams: how an image travels as transfers of packed elements.

A transfer's payload is an `ArrayLayout` of `elements` elements, element 0 in the low bits. A bipolar element is one
bit, 1 meaning +1 and 0 meaning -1; an integer element is `element_bits` bits in two's complement (signed) or plain
binary. An image is a fixed number of `transfers`. Build (manifest), simulation (both engines) and the component
tests all pack and unpack through this one class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["StreamFormat", "WORD_BITS"]

WORD_BITS = 32  # files and the C++ driver carry payloads as little-endian 32-bit words (Verilator's VlWide words)
_KINDS = ("bipolar", "signed", "unsigned")


@dataclass(frozen=True)
class StreamFormat:
    kind: str  # "bipolar", "signed" or "unsigned"
    elements: int  # elements per transfer
    element_bits: int = 1
    transfers: int = 1  # transfers per image

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"stream element kind must be one of {_KINDS}, not {self.kind!r}")
        for name in ("elements", "element_bits", "transfers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.kind == "bipolar" and self.element_bits != 1:
            raise ValueError(f"a bipolar element is 1 bit, not {self.element_bits}")

    @property
    def payload_bits(self) -> int:
        return self.elements * self.element_bits

    @property
    def words(self) -> int:
        """32-bit words per transfer."""
        return -(-self.payload_bits // WORD_BITS)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(transfers, elements): the shape of one image on this stream."""
        return (self.transfers, self.elements)

    def describe(self) -> str:
        kind = "bipolar" if self.kind == "bipolar" else f"{self.element_bits}-bit {self.kind}"
        return (f"{self.transfers} transfer{'s' if self.transfers != 1 else ''} of {self.elements} {kind} "
                f"element{'s' if self.elements != 1 else ''}")

    def _codes(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.int64)
        if self.kind == "bipolar":
            if not np.isin(values, (-1, 1)).all():
                raise ValueError("bipolar elements must be -1 or +1")
            return (values > 0).astype(np.int64)
        if self.kind == "signed":
            low, high = -(1 << (self.element_bits - 1)), (1 << (self.element_bits - 1)) - 1
        else:
            low, high = 0, (1 << self.element_bits) - 1
        if values.size and (values.min() < low or values.max() > high):
            raise ValueError(f"{self.kind} {self.element_bits}-bit elements must lie in {low}..{high}, "
                             f"not {values.min()}..{values.max()}")
        return values & ((1 << self.element_bits) - 1)

    def pack(self, values) -> np.ndarray:
        """Elements (..., elements) -> uint32 words (..., words), element 0 in the low bits of word 0."""
        codes = self._codes(values)
        if codes.shape[-1:] != (self.elements,):
            raise ValueError(f"expected {self.elements} elements per transfer, not shape {codes.shape}")
        lead = codes.shape[:-1]
        bits = (codes[..., None] >> np.arange(self.element_bits)) & 1
        bits = bits.reshape(lead + (self.payload_bits,)).astype(np.uint8)
        padded = np.zeros(lead + (self.words * WORD_BITS,), dtype=np.uint8)
        padded[..., :self.payload_bits] = bits
        packed = np.packbits(padded, axis=-1, bitorder="little")
        return np.ascontiguousarray(packed).view("<u4").reshape(lead + (self.words,))

    def unpack(self, words) -> np.ndarray:
        """uint32 words (..., words) -> elements (..., elements) as int64 (bipolar as -1/+1)."""
        words = np.ascontiguousarray(np.asarray(words, dtype="<u4"))
        if words.shape[-1:] != (self.words,):
            raise ValueError(f"expected {self.words} words per transfer, not shape {words.shape}")
        lead = words.shape[:-1]
        bits = np.unpackbits(words.view(np.uint8).reshape(lead + (self.words * 4,)), axis=-1, bitorder="little")
        bits = bits[..., :self.payload_bits].reshape(lead + (self.elements, self.element_bits)).astype(np.int64)
        codes = (bits << np.arange(self.element_bits)).sum(axis=-1)
        if self.kind == "bipolar":
            return np.where(codes == 1, 1, -1)
        if self.kind == "signed":
            return np.where(codes >> (self.element_bits - 1), codes - (1 << self.element_bits), codes)
        return codes

    def to_int(self, values) -> int:
        """One transfer's elements as the payload integer (for Amaranth's simulator and cocotb)."""
        return int.from_bytes(self.pack(values).tobytes(), "little")

    def to_ints(self, rows) -> list[int]:
        """Many transfers' elements (n, elements) as payload integers, packed in one go (a CNV's weight memories
        are about 90,000 words: one to_int each took seconds)."""
        return [int.from_bytes(row.tobytes(), "little") for row in self.pack(rows)]

    def from_int(self, payload: int) -> np.ndarray:
        words = np.frombuffer(int(payload).to_bytes(self.words * 4, "little"), dtype="<u4")
        return self.unpack(words)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "elements": self.elements, "element_bits": self.element_bits,
                "transfers": self.transfers}

    @classmethod
    def from_dict(cls, entry: dict) -> StreamFormat:
        return cls(entry["kind"], entry["elements"], entry["element_bits"], entry["transfers"])
