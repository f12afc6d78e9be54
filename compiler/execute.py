"""Reference executor of the IR (numpy): integers exact in int64, float32 ops as the contract states them.

Every pass must leave the outputs unchanged; tests compare this against PyTorch and the hardware against this.
"""
from __future__ import annotations

import numpy as np

from .check import check_graph
from .float_ops import apply_channel_ops, quantize
from .ir import Bipolar, ChannelOps, Dense, Graph, Int, MultiThreshold, Quantize

__all__ = ["execute"]


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
            flat = x.reshape(len(x), -1)
            acc = flat @ node.weights.T
            if node.bias is not None:
                acc = acc + node.bias
            values[node.name] = acc.reshape(len(x), -1, 1, 1)
        elif isinstance(node, ChannelOps):
            dtype = types[node.inputs[0]].dtype
            values[node.name] = apply_channel_ops(node.ops, x, dtype.exponent if isinstance(dtype, Int) else None)
        elif isinstance(node, Quantize):
            values[node.name] = quantize(node.kind, node.exponent, x)
        elif isinstance(node, MultiThreshold):
            keys = np.where(node.descending.reshape(-1, 1, 1), -x, x)
            levels = (keys[..., None] >= node.thresholds[:, None, None, :]).sum(axis=-1)
            codes = levels + node.base
            values[node.name] = np.where(codes == 1, 1, -1) if isinstance(node.dtype, Bipolar) else codes
    return {name: values[name] for name in graph.outputs}
