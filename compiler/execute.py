"""Reference executor of the IR (numpy): integers exact in int64, float32 ops as the contract states them.

Every pass must leave the outputs unchanged; tests compare this against PyTorch and the hardware against this.
"""
from __future__ import annotations

import numpy as np

from .check import check_graph
from .float_ops import apply_channel_ops, quantize
from .ir import (Bipolar, ChannelOps, ChannelPad, Dense, ElementwiseAdd, Flatten, Float32, Graph, Int, MultiThreshold,
                 Pool, Quantize, SlidingWindow)

__all__ = ["execute", "im2col", "pool"]


def im2col(x: np.ndarray, kernel: int, stride: int, padding: int, pad_value) -> np.ndarray:
    """(N, C, H, W) -> (N, K*K*C, OH, OW), column (ky*K + kx)*C + c, padded with pad_value (SlidingWindow)."""
    n, channels, height, width = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=pad_value)
    rows = (height + 2 * padding - kernel) // stride + 1
    columns = (width + 2 * padding - kernel) // stride + 1
    out = np.empty((n, kernel, kernel, channels, rows, columns), dtype=x.dtype)
    for ky in range(kernel):
        for kx in range(kernel):
            out[:, ky, kx] = padded[:, :, ky:ky + stride * rows:stride, kx:kx + stride * columns:stride]
    return out.reshape(n, kernel * kernel * channels, rows, columns)


def pool(x: np.ndarray, kind: str, kernel: int, stride: int, padding: int, lowest) -> np.ndarray:
    """Max (padding with `lowest`) or sum over each window, per channel: (N, C, H, W) -> (N, C, OH, OW)."""
    n, channels = x.shape[:2]
    windows = im2col(x, kernel, stride, padding, lowest)
    windows = windows.reshape(n, kernel * kernel, channels, *windows.shape[2:])
    return windows.max(axis=1) if kind == "max" else windows.sum(axis=1)


def _lowest(dtype):
    if isinstance(dtype, Float32):
        return np.float32(-np.inf)
    return -1 if isinstance(dtype, Bipolar) else dtype.low


def _check_codes(name: str, values: np.ndarray, tensor) -> np.ndarray:
    values = np.asarray(values)
    expected = tensor.shape
    if values.shape[1:] != expected and values.shape[1:] != (tensor.elements,):
        raise ValueError(f"input {name!r} must have shape (N, {', '.join(map(str, expected))}) or "
                         f"(N, {tensor.elements}), not {values.shape}")
    values = values.reshape(len(values), *expected).astype(np.int64)
    if isinstance(tensor.dtype, Bipolar) and not np.isin(values, (-1, 1)).all():
        raise ValueError(f"input {name!r} is bipolar: every entry must be -1 or +1")
    if isinstance(tensor.dtype, Int) and (values.min() < tensor.dtype.low or values.max() > tensor.dtype.high):
        raise ValueError(f"input {name!r} codes must lie in {tensor.dtype.low}..{tensor.dtype.high}")
    return values


def execute(graph: Graph, inputs: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    """Runs the graph on input codes (N, C, H, W) or (N, C*H*W); returns each output's codes (N, C, H, W) as int64
    (bipolar as -1/+1)."""
    types = check_graph(graph)
    if not isinstance(inputs, dict):
        if len(graph.inputs) != 1:
            raise ValueError(f"the graph has {len(graph.inputs)} inputs; pass a dict by name")
        inputs = {graph.inputs[0][0]: inputs}
    values = {name: _check_codes(name, inputs[name], tensor) for name, tensor in graph.inputs}
    for node in graph.nodes:
        x = values[node.inputs[0]]
        if isinstance(node, Dense):
            # float64 BLAS is exact here: every product and partial sum is an integer far below 2^53.
            n, _, height, width = x.shape
            columns = x.reshape(n, x.shape[1], -1)
            if node.weight_kind == "abc":  # sum_i sum_n q[i, n] * (B_i . H_n), H_n = +1 where level >= rank_n
                acc = sum(int(node.coefficients[i, b]) * np.matmul(node.weights[i].astype(np.float64),
                                                                   np.where(columns >= rank, 1.0, -1.0))
                          for i in range(node.weight_bases) for b, rank in enumerate(node.ranks))
            else:
                acc = np.matmul(node.weights.astype(np.float64), columns.astype(np.float64))
            acc = acc.astype(np.int64).reshape(n, -1, height, width)
            if node.bias is not None:
                acc = acc + node.bias.reshape(-1, 1, 1)
            values[node.name] = acc
        elif isinstance(node, SlidingWindow):
            values[node.name] = im2col(x, node.kernel, node.stride, node.padding, node.pad_code)
        elif isinstance(node, Pool):
            values[node.name] = pool(x, node.kind, node.kernel, node.stride, node.padding,
                                     _lowest(types[node.inputs[0]].dtype))
        elif isinstance(node, Flatten):
            values[node.name] = x.transpose(0, 2, 3, 1).reshape(len(x), -1, 1, 1)
        elif isinstance(node, ChannelOps):
            dtype = types[node.inputs[0]].dtype
            values[node.name] = apply_channel_ops(node.ops, x, dtype.exponent if isinstance(dtype, Int) else None)
        elif isinstance(node, Quantize):
            values[node.name] = quantize(node, x)
        elif isinstance(node, MultiThreshold):
            keys = np.where(node.descending.reshape(-1, 1, 1), -x, x)
            levels = (keys[..., None] >= node.thresholds[:, None, None, :]).sum(axis=-1)
            codes = levels + node.base
            values[node.name] = np.where(codes == 1, 1, -1) if isinstance(node.dtype, Bipolar) else codes
        elif isinstance(node, ElementwiseAdd):
            values[node.name] = x + values[node.inputs[1]]
        elif isinstance(node, ChannelPad):
            values[node.name] = np.pad(x, ((0, 0), (node.before, node.after), (0, 0), (0, 0)),
                                       constant_values=x.dtype.type(node.pad_code))
    return {name: values[name] for name in graph.outputs}
