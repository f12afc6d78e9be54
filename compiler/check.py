"""Validates a graph and infers every value's type: names, topological order, types and shapes, thresholds and
foldings. The pipeline runs it after every pass."""
from __future__ import annotations

import numpy as np

from .ir import (POOL_KINDS, WEIGHT_CODE_BOUNDS, Bipolar, ChannelOps, ChannelPad, DataType, Dense, ElementwiseAdd,
                 Flatten, Float32, Graph, Int, MultiThreshold, Pool, Quantize, Scale, SlidingWindow, Tensor,
                 accumulator_type, levels_type, window_output_size)

__all__ = ["GraphError", "check_graph", "check_folding", "divisors"]

WEIGHT_KINDS = tuple(WEIGHT_CODE_BOUNDS)


class GraphError(ValueError):
    """The graph is malformed; the message names the node."""


def _fail(node, message):
    raise GraphError(f"layer {node.name!r} ({type(node).__name__}): {message}")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def simd_limit(node: Dense, window_channels: int | None) -> tuple[int, str]:
    """(the size SIMD must divide, what it is): a layer behind a sliding window takes SIMD channels of one pixel
    per cycle, so SIMD divides the window's input channels, not only the K*K*C columns."""
    if window_channels is not None:
        return window_channels, "input channels (the sliding window's C)"
    return node.in_features, "input columns (MW)"


def check_folding(node: Dense, window_channels: int | None = None) -> None:
    if node.folding is None:
        return
    if node.folding.bases is not None and (node.weight_kind != "abc" or node.weight_bases % node.folding.bases):
        _fail(node, f"bases={node.folding.bases} must divide an ABC-Net layer's {node.weight_bases} weight bases; "
                    f"choose one of {divisors(node.weight_bases)}" if node.weight_kind == "abc" else
                    "bases (weight bases side by side) apply to ABC-Net layers only")
    columns, what = simd_limit(node, window_channels)
    for label, size, value, what in (("pe", node.out_features, node.folding.pe, "output rows (MH)"),
                                     ("simd", columns, node.folding.simd, what)):
        if size % value:
            _fail(node, f"{label}={value} does not divide its {size} {what}; choose one of {divisors(size)}")


def window_channels(graph: Graph, node: Dense, types: dict[str, Tensor]) -> int | None:
    """The input channels of the sliding window a Dense reads, or None when it reads no window."""
    producer = next((other for other in graph.nodes if other.name == node.inputs[0]), None)
    return types[producer.inputs[0]].shape[0] if isinstance(producer, SlidingWindow) else None


def check_graph(graph: Graph) -> dict[str, Tensor]:
    """Checks the graph; returns the type of every value (inputs and node outputs) by name."""
    types: dict[str, Tensor] = {}
    for name, tensor in graph.inputs:
        if not isinstance(tensor, Tensor):
            raise GraphError(f"input {name!r} must be a Tensor, not {tensor!r}")
        if name in types:
            raise GraphError(f"input name {name!r} is repeated")
        types[name] = tensor
    if not graph.inputs:
        raise GraphError("the graph has no inputs")
    for node in graph.nodes:
        if node.name in types:
            raise GraphError(f"value name {node.name!r} is defined twice")
        missing = [value for value in node.inputs if value not in types]
        if missing:
            _fail(node, f"reads {missing}, which no earlier node or input defines")
        types[node.name] = _output_type(node, [types[value] for value in node.inputs])
        if isinstance(node, Dense):
            check_folding(node, window_channels(graph, node, types))
    if not graph.outputs:
        raise GraphError("the graph has no outputs")
    for value in graph.outputs:
        if value not in types:
            raise GraphError(f"output {value!r} is not a value of the graph")
        if isinstance(types[value].dtype, Float32):
            raise GraphError(f"output {value!r} is float32; hardware outputs integers (codes times a power of two)")
    return types


def _one_input(node, inputs: list[Tensor]) -> Tensor:
    if len(inputs) != 1:
        _fail(node, f"takes one input, not {len(inputs)}")
    return inputs[0]


def _output_type(node, inputs: list[Tensor]) -> Tensor:
    if isinstance(node, Dense):
        tensor = _one_input(node, inputs)
        if node.weight_kind not in WEIGHT_KINDS:
            _fail(node, f"weight kind must be one of {WEIGHT_KINDS}, not {node.weight_kind!r}")
        if node.weight_kind == "abc":
            _check_abc(node, tensor)
        elif node.weights.ndim != 2 or 0 in node.weights.shape:
            _fail(node, f"weights must be a non-empty (out, in) matrix, not shape {node.weights.shape}")
        elif node.coefficients is not None or node.ranks:
            _fail(node, "coefficients and ranks belong to ABC-Net layers only")
        elif not (isinstance(tensor.dtype, Bipolar) or (isinstance(tensor.dtype, Int) and tensor.dtype.signed
                                                        and tensor.dtype.width <= 8)):
            _fail(node, f"needs bipolar or int8 inputs, gets {tensor.dtype}")
        if tensor.shape[0] != node.in_features:
            _fail(node, f"has {node.in_features} inputs but its input {node.inputs[0]!r} has {tensor.shape[0]} "
                        f"channels {tensor.shape}")
        if node.weight_kind == "binary" and not np.isin(node.weights, (-1, 1)).all():
            _fail(node, "binary weights must all be -1 or +1")
        if node.weight_kind == "ternary" and not np.isin(node.weights, (-1, 0, 1)).all():
            _fail(node, "ternary weights must all be -1, 0 or +1")
        if node.weight_kind == "ternary" and not isinstance(tensor.dtype, Int):
            _fail(node, f"ternary weights read int8 inputs (add/subtract/skip lanes), not {tensor.dtype}")
        if node.weight_kind == "int8" and np.abs(node.weights).max() > 127:
            _fail(node, "int8 weight codes must lie in -127..127")
        if node.bias is not None and node.bias.shape != (node.out_features,):
            _fail(node, f"needs {node.out_features} bias codes, has shape {node.bias.shape}")
        dtype = accumulator_type(node.weight_kind, node.weight_exponent, tensor.dtype, node.in_features,
                                 node.coefficients)
        if node.bias is not None:
            bound = (1 << (dtype.width - 1)) - 1 + int(np.abs(node.bias).max())
            dtype = Int(bound.bit_length() + 1, True, dtype.exponent)
        return Tensor(dtype, (node.out_features, *tensor.shape[1:]))
    if isinstance(node, SlidingWindow):
        tensor = _one_input(node, inputs)
        if isinstance(tensor.dtype, Float32):
            _fail(node, "slides over integer or bipolar codes, gets float32")
        if isinstance(tensor.dtype, Bipolar) and node.pad_code not in (-1, 1):
            _fail(node, f"pads bipolar codes with -1 or +1, not {node.pad_code}")
        if isinstance(tensor.dtype, Int) and not tensor.dtype.low <= node.pad_code <= tensor.dtype.high:
            _fail(node, f"pad code {node.pad_code} does not fit {data_type_name(tensor.dtype)}")
        channels, height, width = tensor.shape
        return Tensor(tensor.dtype, (node.kernel * node.kernel * channels, *_window_shape(node, height, width)))
    if isinstance(node, Pool):
        tensor = _one_input(node, inputs)
        if node.kind not in POOL_KINDS:
            _fail(node, f"kind must be one of {POOL_KINDS}, not {node.kind!r}")
        channels, height, width = tensor.shape
        shape = (channels, *_window_shape(node, height, width))
        if node.simd is not None and channels % node.simd:
            _fail(node, f"simd={node.simd} does not divide its {channels} channels; choose one of "
                        f"{divisors(channels)}")
        if node.kind == "max":
            return Tensor(tensor.dtype, shape)
        if not isinstance(tensor.dtype, Int):
            _fail(node, f"sums integer codes, gets {data_type_name(tensor.dtype)}")
        if node.padding:
            _fail(node, "a sum pool has no padding")
        bound = max(-tensor.dtype.low, tensor.dtype.high) * node.area
        return Tensor(Int(bound.bit_length() + 1, True, tensor.dtype.exponent), shape)
    if isinstance(node, Flatten):
        tensor = _one_input(node, inputs)
        return Tensor(tensor.dtype, (tensor.elements, 1, 1))
    if isinstance(node, ChannelOps):
        tensor = _one_input(node, inputs)
        if not node.ops:
            _fail(node, "has no ops")
        scales = [index for index, op in enumerate(node.ops) if isinstance(op, Scale)]
        if isinstance(tensor.dtype, Int) and scales != [0]:
            _fail(node, "on integers its ops start with the one Scale (the conversion to float32)")
        if isinstance(tensor.dtype, Float32) and scales:
            _fail(node, "on float32 values it has no Scale")
        if isinstance(tensor.dtype, Bipolar):
            _fail(node, "needs integer or float32 inputs, gets bipolar")
        for op in node.ops:
            for attr in ("values", "mean", "var", "gamma", "beta"):
                array = getattr(op, attr, None)
                if array is None:
                    continue
                if array.shape != (tensor.shape[0],):
                    _fail(node, f"{type(op).__name__}.{attr} has shape {array.shape}, not one per channel "
                                f"({tensor.shape[0]})")
                if not np.isfinite(array).all():
                    _fail(node, f"{type(op).__name__}.{attr} contains NaN or infinity")
        return Tensor(Float32(), tensor.shape)
    if isinstance(node, Quantize):
        tensor = _one_input(node, inputs)
        if not isinstance(tensor.dtype, Float32):
            _fail(node, f"quantizes float32 values, gets {tensor.dtype}")
        if node.kind == "sign":
            return Tensor(Bipolar(), tensor.shape)
        if node.kind == "int8":
            return Tensor(Int(8, True, node.exponent), tensor.shape)
        if node.kind == "abc":
            if node.shifts is None or node.shifts.ndim != 1 or not len(node.shifts) or \
                    not np.isfinite(node.shifts).all():
                _fail(node, "an ABC-Net quantizer needs finite shifts, one per activation base")
            return Tensor(levels_type(len(node.shifts)), tensor.shape)
        _fail(node, f"kind must be 'sign', 'int8' or 'abc', not {node.kind!r}")
    if isinstance(node, MultiThreshold):
        tensor = _one_input(node, inputs)
        if not isinstance(tensor.dtype, Int):
            _fail(node, f"needs integer inputs, gets {tensor.dtype}")
        channels = tensor.shape[0]
        if node.thresholds.ndim != 2 or node.thresholds.shape[0] != channels or node.thresholds.shape[1] < 1:
            _fail(node, f"needs ({channels}, T >= 1) thresholds, has shape {node.thresholds.shape}")
        if node.descending.shape != (channels,):
            _fail(node, f"needs {channels} descending flags, has shape {node.descending.shape}")
        if (np.diff(node.thresholds, axis=1) < 0).any():
            _fail(node, "each channel's thresholds must be non-decreasing")
        levels = node.thresholds.shape[1] + 1
        if isinstance(node.dtype, Bipolar):
            if (node.base, levels) != (0, 2):
                _fail(node, "a bipolar output has one threshold and base 0")
        elif isinstance(node.dtype, Int):
            if node.base < node.dtype.low or node.base + levels - 1 > node.dtype.high:
                _fail(node, f"codes {node.base}..{node.base + levels - 1} do not fit {node.dtype}")
        else:
            _fail(node, f"outputs bipolar or integer codes, not {node.dtype}")
        return Tensor(node.dtype, tensor.shape)
    if isinstance(node, ElementwiseAdd):
        return _sum_type(node, inputs)
    if isinstance(node, ChannelPad):
        tensor = _one_input(node, inputs)
        dtype = tensor.dtype
        if isinstance(dtype, Float32) and node.pad_code != 0:
            _fail(node, "pads float32 values with 0.0 (pad_code 0)")
        if isinstance(dtype, Bipolar) and node.pad_code not in (-1, 1):
            _fail(node, f"pads bipolar codes with -1 or +1, not {node.pad_code}")
        if isinstance(dtype, Int) and not dtype.low <= node.pad_code <= dtype.high:
            _fail(node, f"pad code {node.pad_code} does not fit {data_type_name(dtype)}")
        channels, height, width = tensor.shape
        if node.simd is not None and (channels % node.simd or node.before % node.simd or node.after % node.simd):
            _fail(node, f"simd={node.simd} must divide before ({node.before}), the channels ({channels}) and after "
                        f"({node.after})")
        return Tensor(dtype, (node.before + channels + node.after, height, width))
    raise GraphError(f"unknown node type {type(node).__name__} ({node!r})")


def _check_abc(node: Dense, tensor: Tensor) -> None:
    """An ABC-Net layer: M +-1 planes, (M, N) coefficient codes, N ranks, levels 0..N in."""
    if node.weights.ndim != 3 or 0 in node.weights.shape:
        _fail(node, f"ABC-Net weights must be non-empty (M, out, in) planes, not shape {node.weights.shape}")
    if not np.isin(node.weights, (-1, 1)).all():
        _fail(node, "ABC-Net weight planes must all be -1 or +1")
    act_bases = len(node.ranks)
    if node.coefficients is None or node.coefficients.shape != (node.weight_bases, act_bases) or not act_bases:
        shape = None if node.coefficients is None else node.coefficients.shape
        _fail(node, f"needs ({node.weight_bases}, N) coefficient codes and N ranks, has {shape} and {node.ranks}")
    if np.abs(node.coefficients).max() > 127:
        _fail(node, "ABC-Net coefficient codes must lie in -127..127")
    if not all(1 <= rank <= act_bases for rank in node.ranks):
        _fail(node, f"ranks must be levels 1..{act_bases}, not {node.ranks}")
    if tensor.dtype != levels_type(act_bases):
        _fail(node, f"reads the levels of {act_bases} activation bases ({data_type_name(levels_type(act_bases))}), "
                    f"gets {data_type_name(tensor.dtype)}")


def _sum_type(node: ElementwiseAdd, inputs: list[Tensor]) -> Tensor:
    if len(inputs) != 2:
        _fail(node, f"adds two inputs, not {len(inputs)}")
    a, b = inputs
    if not (isinstance(a.dtype, Int) and isinstance(b.dtype, Int) and a.dtype.signed and b.dtype.signed):
        _fail(node, f"adds signed integer codes, gets {data_type_name(a.dtype)} and {data_type_name(b.dtype)}")
    if a.dtype.exponent != b.dtype.exponent:
        _fail(node, f"adds codes of one scale, gets {data_type_name(a.dtype)} and {data_type_name(b.dtype)}: "
                    "quantize both addends with one shared quantizer (hbnn.quant.residual.QuantAdd)")
    if a.shape != b.shape:
        _fail(node, f"adds tensors of one shape, gets {a.shape} and {b.shape}")
    if node.simd is not None and a.shape[0] % node.simd:
        _fail(node, f"simd={node.simd} does not divide its {a.shape[0]} channels; choose one of "
                    f"{divisors(a.shape[0])}")
    return Tensor(Int(max(a.dtype.width, b.dtype.width) + 1, True, a.dtype.exponent), a.shape)


def _window_shape(node, height: int, width: int) -> tuple[int, int]:
    if node.padding >= node.kernel:
        _fail(node, f"padding {node.padding} must be smaller than the kernel {node.kernel}")
    sizes = tuple(window_output_size(size, node.kernel, node.stride, node.padding) for size in (height, width))
    if min(sizes) < 1:
        _fail(node, f"a {node.kernel}x{node.kernel} window (padding {node.padding}) does not fit a {height}x{width} "
                    "input")
    return sizes


def data_type_name(dtype: DataType) -> str:
    if isinstance(dtype, Bipolar):
        return "bipolar"
    if isinstance(dtype, Int):
        return f"{'int' if dtype.signed else 'uint'}{dtype.width}*2^{dtype.exponent}"
    return "float32"
