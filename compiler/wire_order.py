"""Wire order, the one element order every stream and weight column follows (hbnn.compiler.ir): pixels in raster
order, channels fastest. Here are its conversions from and to torch's / ONNX's (N, C, H, W) order."""
from __future__ import annotations

import numpy as np

__all__ = ["wire_order", "weight_columns", "torch_columns"]


def wire_order(values: np.ndarray) -> np.ndarray:
    """(N, C, H, W) maps as the stream carries them, (N, H, W, C); (N, F) as is."""
    values = np.asarray(values)
    return values.transpose(0, 2, 3, 1) if values.ndim == 4 else values


def weight_columns(weights: np.ndarray, flattened: tuple[int, int, int] | None = None) -> np.ndarray:
    """A layer's weights as (out, in) in wire order: a conv's (O, C, K, K) as (O, K*K*C), column (ky*K + kx)*C + c,
    the order of a SlidingWindow's columns; a linear layer reading a flattened (C, H, W) map has its columns
    permuted from torch's (c, y, x) order to the wire's (y, x, c)."""
    weights = np.asarray(weights)
    if weights.ndim == 4:
        return weights.transpose(0, 2, 3, 1).reshape(len(weights), -1)
    if flattened is not None:
        return weights.reshape(len(weights), *flattened).transpose(0, 2, 3, 1).reshape(len(weights), -1)
    return weights


def torch_columns(columns: np.ndarray, map_shape: tuple[int, int, int]) -> np.ndarray:
    """weight_columns undone for a layer reading a (C, H, W) map: (out, H*W*C) wire-order columns back to
    (out, C, H, W), a conv's kernel (map_shape (C, K, K)) or a flattened map's linear columns."""
    channels, height, width = map_shape
    return np.asarray(columns).reshape(len(columns), height, width, channels).transpose(0, 3, 1, 2)
