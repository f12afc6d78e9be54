"""The exact float32 semantics of ChannelOps and Quantize in numpy: the one place the compiler evaluates them.

Every op is one IEEE float32 operation per element (numpy's float32 ufuncs round correctly), in the order
quant/CONTRACT.md states, so these reproduce PyTorch's eval forward bit for bit. Values have the channel axis at -3:
(..., C, H, W).
"""
from __future__ import annotations

import numpy as np

from .ir import ABC_THRESHOLD, INT8, Add, BatchNorm, ChannelOp, Multiply, Quantize, Relu, Scale

__all__ = ["apply_channel_ops", "quantize", "to_float32"]


def _per_channel(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1, 1, 1)


def to_float32(codes: np.ndarray, exponent: int, divisor: int = 1) -> np.ndarray:
    """f32(code * 2**exponent): exact in float64 for |code| < 2^53, then rounded once (to nearest even). With a
    divisor: f32(f64(code * 2**exponent) / divisor), ExactAvgPool2d's float64 division and then its rounding."""
    values = np.asarray(codes, dtype=np.int64).astype(np.float64) * np.ldexp(1.0, exponent)
    if divisor != 1:
        values = values / np.float64(divisor)
    return values.astype(np.float32)


def apply_channel_ops(ops: tuple[ChannelOp, ...], values: np.ndarray, exponent: int | None) -> np.ndarray:
    """The ops on integer codes (times 2**exponent; the first op is Scale) or on float32 values (exponent None)."""
    for op in ops:
        if isinstance(op, Scale):
            values = to_float32(values, exponent, op.divisor)
        elif isinstance(op, Multiply):
            values = values * _per_channel(op.values)
        elif isinstance(op, Add):
            values = values + _per_channel(op.values)
        elif isinstance(op, BatchNorm):
            denominator = np.sqrt(op.var + np.float32(op.eps))
            values = ((values - _per_channel(op.mean)) / _per_channel(denominator) * _per_channel(op.gamma)
                      + _per_channel(op.beta))
        elif isinstance(op, Relu):
            values = np.maximum(values, np.float32(0))
        else:
            raise TypeError(f"unknown channel op {op!r}")
    return values


def quantize(quantizer: Quantize, values: np.ndarray) -> np.ndarray:
    """Float32 values -> int64 codes: sign -> -1/+1 (sign(0) = +1); int8 -> clamp(round_half_even(x / 2**e)); abc ->
    the level #{n : f32(x + shift_n) >= 0.5}."""
    values = np.asarray(values, dtype=np.float32)
    kind = quantizer.kind
    if kind == "sign":
        return np.where(values >= 0, 1, -1).astype(np.int64)
    if kind == "int8":
        scaled = values / np.float32(np.ldexp(1.0, quantizer.exponent))  # exact: a power of two
        return np.clip(np.rint(scaled), *INT8).astype(np.int64)
    if kind == "abc":
        return sum((values + shift >= ABC_THRESHOLD).astype(np.int64) for shift in quantizer.shifts)
    raise ValueError(f"unknown quantizer kind {kind!r}")
