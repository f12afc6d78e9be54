"""The wire format of the accelerator's streams, as integers: element 0 in the low bits."""
from __future__ import annotations

import numpy as np

__all__ = ["pack_bipolar", "unpack_bipolar", "unpack_signed"]


def pack_bipolar(vector) -> int:
    """A -1/+1 vector as an integer whose bit i is set where element i is +1."""
    value = 0
    for index, element in enumerate(np.asarray(vector).ravel()):
        if element > 0:
            value |= 1 << index
    return value


def unpack_bipolar(value: int, count: int) -> np.ndarray:
    return np.array([1 if (value >> i) & 1 else -1 for i in range(count)], dtype=np.int64)


def unpack_signed(value: int, count: int, width: int) -> np.ndarray:
    mask = (1 << width) - 1
    lanes = []
    for i in range(count):
        lane = (value >> (i * width)) & mask
        lanes.append(lane - (1 << width) if lane >> (width - 1) else lane)
    return np.array(lanes, dtype=np.int64)
