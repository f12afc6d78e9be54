"""Reader for the IDX format used by MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/)."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx"]

GZIP_MAGIC = b"\x1f\x8b"

# IDX type byte -> big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    # Detect gzip by content, not only by name: some mirrors ship gzipped files without the .gz suffix.
    if raw[:2] == GZIP_MAGIC or path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: not a valid gzip file ({exc})") from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed) into a native-byte-order numpy array of its stored shape.

    Raises FileNotFoundError for a missing file and ValueError naming the file for a malformed one.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero0, zero1, type_code, ndim = data[:4]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(f"{path}: bad IDX magic {data[:4].hex()} (must start with two zero bytes)")
    if type_code not in IDX_DTYPES:
        raise ValueError(f"{path}: bad IDX magic {data[:4].hex()} (unknown type code 0x{type_code:02x})")
    if ndim == 0:
        raise ValueError(f"{path}: bad IDX magic {data[:4].hex()} (zero dimensions)")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {header_size})")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(data) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise ValueError(f"{path}: IDX data {problem}: shape {shape} of {dtype.name} needs {expected} bytes "
                         f"after the header, found {actual}")
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))
