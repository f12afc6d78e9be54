"""QONNX graphs (Brevitas' `export_qonnx`, FINN's models) lowered to hbnn's IR, exact against `execute_onnx`.

A QONNX graph computes in float32 with quantizer nodes (`BipolarQuant`, `Quant`) marking where values are codes
times a scale. Lowering reads it as hbnn's hardware reads it:

- the nodes in front of the first activation quantizer run on the host (the model's own preprocessing, e.g. BNN-PYNQ's
  `2x - 1`); that quantizer's codes are the accelerator's input stream;
- a `Gemm`/`MatMul`/`Conv` of codes with quantized constant weights is a `Dense` (a `Conv` a `SlidingWindow` first):
  its float32 output is exactly acc * s_in * s_w as long as every partial sum is representable, which is checked
  (the scales' mantissas times the accumulator bound fit float32's 24 bits), so the integer accumulator determines it;
- the float nodes after it up to the next quantizer (`BatchNormalization`, `Mul`, `Add`, `Sub`, `Div`, `Relu`) are
  a weakly monotone function of the accumulator per channel, so the quantized output is a step function of it: its
  integer thresholds (a `MultiThreshold`) are found by bisection over that function evaluated by the reference
  itself, `execute_onnx` on those nodes (onnxruntime for the standard ops, QONNX's own numpy for the quantizers);
- `MaxPool` on codes is a max `Pool`, `Reshape`/`Flatten` of a map a `Flatten` (the next layer's columns go to the
  wire's pixel-major order);
- what follows the last integer tensor (BNN-PYNQ's `TensorNorm`, a scalar affine) runs on the host: the hardware
  outputs the accumulators, and the reference's value there is acc times the output scale, exactly.

Anything else is refused, naming the node and its op type.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .check import check_graph
from .ir import (WEIGHT_CODE_BOUNDS, Bipolar, Dense, ElementwiseAdd, Flatten, Graph, Int, MultiThreshold, Pool,
                 SlidingWindow, Tensor)
from .multithreshold import fold_steps, reached_levels
from .wire_order import weight_columns
from .qonnx_read import QonnxError, attributes_of, load_qonnx, refuse

__all__ = ["QonnxError", "QonnxLowering", "load_qonnx", "lower_qonnx"]
QUANTIZERS = ("BipolarQuant", "Quant", "MultiThreshold", "Trunc")  # MultiThreshold: FINN's streamlined graphs
CHANNEL_OPS = ("BatchNormalization", "Mul", "Add", "Sub", "Div", "Relu")
HOST_PREFIX_OPS = ("Reshape", "Flatten", "Mul", "Add", "Sub", "Div", "Transpose", "Identity")


@dataclass(frozen=True)
class _Codes:
    """Integer codes: value = code * scale (scale per channel, float64 holding the float32 scale exactly)."""
    value: str  # the IR value
    dtype: object
    scale: np.ndarray  # (C,)
    shape: tuple[int, int, int]  # (C, H, W)
    codes: tuple[int, int]  # the quantizer's code range (the stream type may be wider)
    flattened: tuple[int, int, int] | None = None  # a Flatten's (C, H, W)
    padding: tuple[int, int] | None = None  # a Pad's (border, code), taken by the Conv that reads it


@dataclass
class _Accumulator:
    """A Dense's integer output, or a sum Pool's, and the float nodes after it, not yet quantized."""
    dense: Dense | Pool | ElementwiseAdd
    tensor: str  # the ONNX tensor holding acc * scale
    scale: np.ndarray  # (C,)
    shape: tuple[int, int, int]
    rank: int  # the ONNX tensor's rank (2 for a vector, 4 for a map)
    bound: int  # the largest |accumulator| these weights and input codes can make
    lattice: tuple[int, int, int]  # (low, high, stride): the integers the bisection runs over (as a checkpoint's)
    bias: np.ndarray | None = None  # integer bias codes, added in the accumulator (the tensor is acc + bias)
    nodes: list = field(default_factory=list)
    window: int = 1  # an average pool's: the segment reads a window, the integer sum in one corner, zeros elsewhere


@dataclass(frozen=True)
class QonnxLowering:
    """The IR graph and what the host and the reference need around it."""
    graph: Graph
    input_tensor: str  # the ONNX tensor of the input quantizer's output (codes * input_scale)
    input_scale: float
    output_tensor: str  # the ONNX tensor the hardware's output integers stand for
    output_scale: np.ndarray  # per output element of one image, in wire order: value = code * scale
    host_tail: tuple[str, ...]  # ONNX nodes after output_tensor, run on the host


def _stream_type(node, codes: tuple[int, int], scale):
    """The IR type carrying a quantizer's codes: hbnn's integer streams and lanes are int8 (hbnn.hw.mvau), so
    narrower codes (2-bit activations) travel as int8 with the same values; wider or unsigned-8-bit ones do not
    fit. The exponent is the scale's where that is one power of two (as a checkpoint's types state it), else 0: the
    scales themselves stay with the lowering, which is what computes with them."""
    if codes[0] < -128 or codes[1] > 127:
        refuse(node, f"codes {codes[0]}..{codes[1]} do not fit hbnn's int8 streams")
    return Int(8, True, _exponent_of(scale))


def _exponent_of(scale) -> int:
    values = np.unique(np.asarray(scale, dtype=np.float64))
    if values.size == 1 and _power_of_two(float(values[0])):
        return math.frexp(float(values[0]))[1] - 1
    return 0


def _power_of_two(value: float) -> bool:
    mantissa, _ = math.frexp(value)
    return value > 0 and mantissa == 0.5


def _mantissa_bits(values: np.ndarray) -> int:
    """The bits of the widest odd integer m with value = m * 2**e among the values (0 for zeros)."""
    widest = 0
    for value in np.abs(np.asarray(values, dtype=np.float64)).ravel():
        if value == 0:
            continue
        mantissa, exponent = math.frexp(float(value))
        integer = int(mantissa * (1 << 53))
        while integer % 2 == 0:
            integer //= 2
        widest = max(widest, integer.bit_length())
    return widest


class _Lowering:
    def __init__(self, model, evaluator=None):
        from qonnx.core.onnx_exec import execute_onnx

        self.model = model
        self.execute_onnx = execute_onnx
        self._segments: dict[tuple[str, int], object] = {}
        graph = model.graph
        self.input_name = graph.input[0].name
        self.output_name = graph.output[0].name
        self.constants = self._constants()
        self.evaluate = evaluator(self.constants) if evaluator is not None else self._evaluate_onnx
        self.state: dict[str, object] = {self.input_name: "host"}
        self.nodes: list = []
        self.input: _Codes | None = None
        self.input_tensor: str | None = None

    # --- constants -------------------------------------------------------------------------------------------------

    def _constants(self) -> dict[str, np.ndarray]:
        """Every tensor that does not depend on the graph input (initializers, quantized weights), evaluated."""
        model = self.model
        variable = {self.input_name}
        for node in model.graph.node:
            if any(name in variable for name in node.input):
                variable.update(node.output)
        shape = model.get_tensor_shape(self.input_name)
        context = self.execute_onnx(model, {self.input_name: np.zeros(shape, dtype=np.float32)},
                                    return_full_exec_context=True)
        return {name: np.asarray(value) for name, value in context.items() if name not in variable}

    def _constant(self, node, name: str) -> np.ndarray:
        if name not in self.constants:
            refuse(node, f"input {name!r} must be a constant (hbnn maps layers with constant weights)")
        return self.constants[name]

    # --- the walk --------------------------------------------------------------------------------------------------

    def run(self) -> QonnxLowering:
        for node in self.model.graph.node:
            if all(name in self.constants for name in node.output):
                continue  # a weight quantizer or a folded constant: read where it is used
            sources = [self.state.get(name) for name in node.input if name not in self.constants]
            if any(source is None for source in sources):
                refuse(node, "reads a tensor hbnn has not lowered (an unsupported branch of the graph)")
            if all(source == "host" for source in sources):
                self._host(node)
            elif len(sources) == 1 and isinstance(sources[0], _Codes):
                self._codes(node, sources[0])
            elif len(sources) == 1 and isinstance(sources[0], _Accumulator):
                self._accumulator(node, sources[0])
            elif node.op_type == "Add" and len(sources) == 2 and all(isinstance(s, _Codes) for s in sources):
                self._residual_add(node, *sources)
            else:
                refuse(node, "reads tensors of different kinds (host floats, codes, accumulators); hbnn maps "
                            "layers on codes and residual adds of two code tensors")
        return self._finish()

    def _host(self, node):
        if node.op_type in QUANTIZERS:
            if self.input is not None:
                refuse(node, "a second quantizer on host values: hbnn's accelerator has one input stream")
            dtype, scale, codes = self._quantizer_codes(node)
            shape = self._chw(node, node.output[0])
            scale = np.broadcast_to(np.asarray(scale, dtype=np.float64).ravel(), (shape[0],)).copy() \
                if np.asarray(scale).size in (1, shape[0]) else refuse(node, "a per-element input scale")
            stream = dtype if isinstance(dtype, Bipolar) else _stream_type(node, codes, scale)
            self.input = _Codes(node.name, stream, scale, shape, codes)
            self.input_tensor = node.output[0]
            self.state[node.output[0]] = self.input
        elif node.op_type in HOST_PREFIX_OPS:
            self.state[node.output[0]] = "host"
        else:
            refuse(node, f"{node.op_type} in front of the first quantizer; the host runs only "
                        f"{', '.join(HOST_PREFIX_OPS)} there")

    def _chw(self, node, tensor: str) -> tuple[int, int, int]:
        shape = self.model.get_tensor_shape(tensor)
        if shape is None:
            refuse(node, f"tensor {tensor!r} has no shape after shape inference")
        if len(shape) == 2:
            return (shape[1], 1, 1)
        if len(shape) == 4:
            return tuple(shape[1:])
        refuse(node, f"tensor {tensor!r} has shape {shape}; hbnn maps (N, C) vectors and (N, C, H, W) maps")

    def _quantizer_codes(self, node):
        """(IR data type, scale, (lowest, highest) code) of a quantizer node's output codes."""
        if node.op_type == "BipolarQuant":
            scale = self._constant(node, node.input[1])
            return Bipolar(), scale, (-1, 1)
        attributes = attributes_of(node)
        if node.op_type == "MultiThreshold":  # out_scale * (thresholds passed) + out_bias
            steps = self._constant(node, node.input[1]).shape[-1]
            scale, bias = float(attributes.get("out_scale", 1.0)), float(attributes.get("out_bias", 0.0))
            if steps == 1 and scale > 0 and bias == -scale / 2:
                return Bipolar(), np.float64(scale / 2), (-1, 1)
            if scale <= 0 or bias / scale != round(bias / scale):
                refuse(node, f"out_scale {scale:g} and out_bias {bias:g}: hbnn needs out_bias a whole number of "
                            "out_scale steps, out_scale > 0")
            low = int(round(bias / scale))
            bits = max(low.bit_length(), (low + steps).bit_length()) + (1 if low < 0 else 0)
            return Int(max(bits, 2), low < 0), np.float64(scale), (low, low + steps)
        if node.op_type == "Trunc":
            return self._trunc_codes(node, attributes)
        scale, zero_point, bits = (self._constant(node, name) for name in node.input[1:4])
        if np.any(zero_point != 0):
            refuse(node, "a non-zero zero point; hbnn's codes are symmetric")
        bits = float(np.asarray(bits).ravel()[0])
        if bits != int(bits) or not 2 <= bits <= 8:
            refuse(node, f"bit width {bits:g}; hbnn's integer streams carry 2 to 8 bits")
        signed = bool(attributes.get("signed", 1))
        if attributes.get("rounding_mode", "ROUND") != "ROUND":
            refuse(node, f"rounding mode {attributes['rounding_mode']}; hbnn maps ROUND (half to even)")
        dtype = Int(int(bits), signed)
        return dtype, scale, (dtype.low + (1 if signed and attributes.get("narrow", 0) else 0), dtype.high)

    def _trunc_codes(self, node, attributes):
        """Trunc (QONNX's v1: scale, zero point, input and output bit widths; v2: also the output scale)."""
        values = [self._constant(node, name) for name in node.input[1:]]
        scale, zero_point = (np.asarray(v, dtype=np.float64) for v in values[:2])
        if np.any(zero_point != 0):
            refuse(node, "a non-zero zero point; hbnn's codes are symmetric")
        if len(values) >= 5:  # v2
            output_scale, bits = np.asarray(values[3], dtype=np.float64), float(np.ravel(values[4])[0])
        else:  # v1 keeps the input's scale on the truncated codes (qonnx's trunc_v1)
            bits, output_scale = float(np.ravel(values[3])[0]), scale
        signed, narrow = int(attributes.get("signed", 1)), int(attributes.get("narrow", 0))
        if bits != int(bits) or not 2 <= bits <= 8:
            refuse(node, f"output bit width {bits:g}; hbnn's integer streams carry 2 to 8 bits")
        dtype = Int(int(bits), bool(signed))
        return dtype, output_scale, (dtype.low + (1 if signed and narrow else 0), dtype.high)

    # --- on codes --------------------------------------------------------------------------------------------------

    def _codes(self, node, source: _Codes):
        op = node.op_type
        if op in ("Gemm", "MatMul"):
            self._dense(node, source)
        elif op == "Conv":
            self._conv(node, source)
        elif op == "MaxPool":
            attributes = attributes_of(node)
            kernel, strides = attributes.get("kernel_shape"), attributes.get("strides", [1, 1])
            pads = attributes.get("pads", [0, 0, 0, 0])
            if len(set(kernel)) != 1 or len(set(strides)) != 1 or len(set(pads)) != 1 \
                    or attributes.get("ceil_mode", 0) or attributes.get("dilations", [1, 1]) != [1, 1]:
                refuse(node, "hbnn pools with square kernels, equal strides and padding, floor mode")
            name = node.name
            self.nodes.append(Pool(name, (source.value,), "max", kernel[0], strides[0], pads[0]))
            self.state[node.output[0]] = _Codes(name, source.dtype, source.scale, self._chw(node, node.output[0]),
                                                source.codes)
        elif op in ("AveragePool", "GlobalAveragePool"):
            self._average_pool(node, source)
        elif op == "Pad":
            self._pad(node, source)
        elif op in ("Reshape", "Flatten"):
            shape = self.model.get_tensor_shape(node.output[0])
            if len(shape) != 2:
                refuse(node, f"reshapes to {shape}; hbnn flattens a map into a vector (N, C*H*W)")
            if source.shape[1:] == (1, 1):
                self.state[node.output[0]] = source
                return
            if np.unique(source.scale).size != 1:
                refuse(node, "flattens a map with per-channel scales")
            name = node.name
            self.nodes.append(Flatten(name, (source.value,)))
            flat = source.shape[0] * source.shape[1] * source.shape[2]
            self.state[node.output[0]] = _Codes(name, source.dtype, np.full(flat, source.scale[0]), (flat, 1, 1),
                                                source.codes, flattened=source.shape)
        else:
            refuse(node, f"hbnn does not map {op} on quantized values (it maps Gemm, MatMul, Conv, MaxPool, "
                        "Reshape and Flatten there)")

    def _residual_add(self, node, a: _Codes, b: _Codes):
        """The integer sum of two code tensors of one scale (a residual block's join: Brevitas' shared
        QuantIdentity quantizes both addends alike, as hbnn's residual blocks do); what reads it is folded into the
        next quantizer's thresholds."""
        if a.shape != b.shape:
            refuse(node, f"adds tensors of shapes {a.shape} and {b.shape}")
        if isinstance(a.dtype, Bipolar) or isinstance(b.dtype, Bipolar):
            refuse(node, "adds bipolar values; hbnn's residual adds take integer codes (quantize both addends with "
                        "one int quantizer)")
        scales = np.unique(np.concatenate([a.scale, b.scale]))
        if scales.size != 1:
            refuse(node, f"adds codes of different scales ({', '.join(f'{v:g}' for v in scales[:4])}): quantize both "
                        "addends with one shared quantizer so the add is an integer add")
        add = ElementwiseAdd(node.name, (a.value, b.value))
        self.nodes.append(add)
        bound = max(-(a.codes[0] + b.codes[0]), a.codes[1] + b.codes[1])
        if _mantissa_bits(scales) + bound.bit_length() > 24:
            refuse(node, "its sums do not fit float32 exactly")
        low, high = a.dtype.low + b.dtype.low, a.dtype.high + b.dtype.high  # as hbnn's fold_thresholds
        rank = len(self.model.get_tensor_shape(node.output[0]))
        self.state[node.output[0]] = _Accumulator(add, node.output[0], np.full(a.shape[0], scales[0]), a.shape,
                                                  rank, bound, (low, high, 1))

    def _average_pool(self, node, source: _Codes):
        """A sum Pool on codes; the division by the area is a float op of the pool node itself, folded with what
        follows into the next quantizer's thresholds (a Trunc, as Brevitas' TruncAvgPool2d exports, or a Quant)."""
        channels, height, width = source.shape
        if node.op_type == "GlobalAveragePool":
            if height != width:
                refuse(node, f"a global pool over {height}x{width}; hbnn pools square windows")
            kernel, stride = height, height  # one window: the stride is moot; hbnn states it as the kernel
        else:
            attributes = attributes_of(node)
            kernels, strides = attributes.get("kernel_shape"), attributes.get("strides", [1, 1])
            if len(set(kernels)) != 1 or len(set(strides)) != 1 or any(attributes.get("pads", [0] * 4)) \
                    or attributes.get("ceil_mode", 0):
                refuse(node, "hbnn averages square windows with equal strides, no padding, floor mode")
            kernel, stride = kernels[0], strides[0]
        if np.unique(source.scale).size != 1:
            refuse(node, "averages codes with per-channel scales")
        pool = Pool(node.name, (source.value,), "sum", kernel, stride)
        self.nodes.append(pool)
        area = kernel * kernel
        low, high = source.codes
        stride_ = 2 if isinstance(source.dtype, Bipolar) else 1
        if _mantissa_bits(source.scale) + (area * max(-low, high)).bit_length() > 24:
            refuse(node, "its window sums do not fit float32 exactly")
        accumulator = _Accumulator(pool, node.input[0], source.scale.astype(np.float64),
                                   self._chw(node, node.output[0]), 4, area * max(-low, high),
                                   (area * low, area * high, stride_), window=kernel)
        accumulator.nodes.append(node)
        self.state[node.output[0]] = accumulator

    def _pad(self, node, source: _Codes):
        """A constant Pad of a map's borders, read by the Conv after it as its window's padding and pad code (a
        binary convolution pads its bipolar input with +1, hbnn.compiler.qonnx_export writes it so)."""
        attributes = attributes_of(node)
        pads = [int(v) for v in self._constant(node, node.input[1]).ravel()]
        value = float(self._constant(node, node.input[2]).ravel()[0]) if len(node.input) > 2 and node.input[2] \
            else 0.0
        if attributes.get("mode", "constant") != "constant" or len(pads) != 8 or pads[0] or pads[1] or pads[4] \
                or pads[5] or len(set(pads[2:4] + pads[6:8])) != 1:
            refuse(node, "hbnn pads a map's height and width equally on every side with a constant")
        code = value / source.scale[0]
        if np.unique(source.scale).size != 1 or code != round(code) or (isinstance(source.dtype, Bipolar)
                                                                      and code not in (-1, 1)):
            refuse(node, f"pads with {value:g}, which is not a code of its input")
        readers = self.model.find_consumers(node.output[0])
        if len(readers) != 1 or readers[0].op_type != "Conv":
            refuse(node, "hbnn maps a Pad only in front of a Conv")
        self.state[node.output[0]] = dataclasses.replace(source, padding=(pads[2], int(code)))

    def _weight_codes(self, node, name: str):
        """(codes as float, scale per output row, weight kind) of a quantized constant weight."""
        producer = self.model.find_producer(name)
        values = self.constants[name].astype(np.float64)
        if producer is None:  # FINN's streamlined graphs: integer weights annotated with their data type
            annotation = self.model.get_tensor_datatype(name).name
            if annotation == "BIPOLAR" and np.isin(values, (-1.0, 1.0)).all():
                return values, np.float64(1.0), "binary"
            if annotation == "TERNARY" and np.isin(values, (-1.0, 0.0, 1.0)).all():
                return values, np.float64(1.0), "ternary"
            if annotation.startswith(("INT", "UINT")) and np.array_equal(values, np.round(values)) \
                    and np.abs(values).max() <= 127:
                return values, np.float64(1.0), "int8"
            refuse(node, f"weight {name!r} is not quantized (a BipolarQuant or Quant of a constant, or an initializer "
                        f"annotated BIPOLAR or INTn; it is {annotation}); hbnn maps binary and integer weights")
        if producer.op_type not in ("BipolarQuant", "Quant"):
            refuse(node, f"weight {name!r} comes from a {producer.op_type}; hbnn maps weights quantized by "
                        "BipolarQuant or Quant")
        dtype, scale, (lowest, _) = self._quantizer_codes(producer)
        scale = np.asarray(scale, dtype=np.float64)
        codes = values / scale
        if not np.array_equal(codes, np.round(codes)):
            refuse(node, f"weight {name!r} divided by its scale is not integer")
        if isinstance(dtype, Bipolar):
            return codes, scale, "binary"
        if dtype.width == 2 and dtype.signed and lowest == -1:  # narrow 2-bit: -1, 0, +1
            return codes, scale, "ternary"
        if codes.min() < -127 or codes.max() > 127:
            refuse(node, f"weight {name!r} has codes outside -127..127 (hbnn's int8 multiply lanes)")
        return codes, scale, "int8"

    def _dense_node(self, node, source: _Codes, name: str, value: str, weights: np.ndarray, scale: np.ndarray,
                    kind: str, out_tensor: str, shape, rank: int):
        out = weights.shape[0]
        scale_out = np.broadcast_to(scale.reshape(-1) if scale.size > 1 else scale.reshape(1), (out,))
        dense = Dense(name, (value,), weights.astype(np.int64), kind,
                      _exponent_of(scale_out) if kind == "int8" else 0)  # binary, ternary: alpha after
        # acc * s_in * s_w exactly, whatever the summation order: every partial sum is an integer multiple of the
        # product of the scales, below the bound, representable in float32 when the mantissas leave room.
        input_scale = np.unique(source.scale)
        if input_scale.size != 1:
            refuse(node, "reads codes with per-channel scales; hbnn needs one input scale per layer")
        bound = int(np.abs(weights).sum(axis=1).max()) * max(-source.codes[0], source.codes[1])
        products = input_scale[0] * scale_out
        if _mantissa_bits(products) + bound.bit_length() > 24:
            refuse(node, f"its float32 output is not determined by the integer accumulator: scales "
                        f"{input_scale[0]:g} x {np.unique(scale_out)[:4]} with accumulators up to {bound} round "
                        "in float32 (use power-of-two scales)")
        self.nodes.append(dense)
        stride = 2 if kind == "binary" and isinstance(source.dtype, Bipolar) else 1
        # The bisection runs over hbnn's accumulator lattice (the largest weight code times the input codes' range
        # times the row length), as for a checkpoint: the same thresholds for the same function.
        lattice = WEIGHT_CODE_BOUNDS[kind] * max(-source.codes[0], source.codes[1]) * dense.in_features
        self.state[out_tensor] = _Accumulator(dense, out_tensor, products.astype(np.float64), shape, rank, bound,
                                              (-lattice, lattice, stride))

    def _dense(self, node, source: _Codes):
        inputs = [name for name in node.input]
        attributes = attributes_of(node)
        if node.op_type == "Gemm":
            if attributes.get("alpha", 1.0) != 1.0 or attributes.get("transA", 0):
                refuse(node, "Gemm with alpha != 1 or transA")
            if len(inputs) == 3 and np.any(self._constant(node, inputs[2]) != 0):
                refuse(node, "Gemm with a bias C; hbnn folds a layer's bias into its thresholds only from an Add "
                            "after the product")
        if inputs[0] not in self.state or self.state[inputs[0]] is not source:
            refuse(node, "the quantized values must be the first input (A), the weights the second")
        codes, scale, kind = self._weight_codes(node, inputs[1])
        if node.op_type == "MatMul" or not attributes.get("transB", 0):
            codes = codes.T  # (in, out) -> (out, in)
            scale = scale.T if scale.ndim == 2 else scale
        if scale.size > 1 and scale.size != codes.shape[0]:
            refuse(node, f"weight scale of shape {scale.shape}; hbnn takes one scale per tensor or per output")
        codes = weight_columns(codes, source.flattened)
        if codes.shape[1] != source.shape[0]:
            refuse(node, f"weights of {codes.shape[1]} columns read {source.shape[0]} values")
        self._dense_node(node, source, node.name, source.value, codes, scale.reshape(-1), kind, node.output[0],
                         (codes.shape[0], 1, 1), 2)

    def _conv(self, node, source: _Codes):
        attributes = attributes_of(node)
        codes, scale, kind = self._weight_codes(node, node.input[1])
        if len(node.input) > 2:
            refuse(node, "a Conv bias; hbnn maps bias-free convolutions (the bias belongs after the product)")
        kernel = attributes.get("kernel_shape", list(codes.shape[2:]))
        strides = attributes.get("strides", [1, 1])
        pads = attributes.get("pads", [0, 0, 0, 0])
        if attributes.get("group", 1) != 1 or attributes.get("dilations", [1, 1]) != [1, 1]:
            refuse(node, "grouped or dilated convolution")
        if len(set(kernel)) != 1 or len(set(strides)) != 1 or len(set(pads)) != 1:
            refuse(node, "hbnn maps square kernels with equal strides and padding on every side")
        if pads[0] and isinstance(source.dtype, Bipolar):
            refuse(node, "pads a bipolar input with 0.0, which a one-bit stream cannot carry (hbnn's binary "
                        "convolutions pad with +1); use padding 0 or an explicit +1 Pad in front")
        padding, pad_code = pads[0], 1 if isinstance(source.dtype, Bipolar) else 0  # unused with no padding
        if source.padding is not None:
            if padding:
                refuse(node, "padded twice (a Pad node and its own pads)")
            padding, pad_code = source.padding
        window = f"{node.name}.window"
        if (kernel[0], strides[0], padding) == (1, 1, 0):
            window = source.value  # a 1x1 convolution reads the map itself: hbnn needs no window for it
        else:
            self.nodes.append(SlidingWindow(window, (source.value,), kernel[0], strides[0], padding, pad_code))
        if scale.ndim == 4:
            scale = scale.reshape(scale.shape[0], -1)[:, 0]
        columns = weight_columns(codes)
        self._dense_node(node, source, node.name, window, columns, scale.reshape(-1), kind, node.output[0],
                         self._chw(node, node.output[0]), 4)

    # --- on accumulators -------------------------------------------------------------------------------------------

    def _accumulator(self, node, source: _Accumulator):
        if node.op_type == "Add" and isinstance(source.dense, Dense) and not source.nodes and source.bias is None \
                and self._integer_bias(node, source):
            pass  # the layer's integer bias, added in the accumulator (_integer_bias recorded it)
        elif node.op_type in CHANNEL_OPS:
            self._check_channel_op(node, source)
            # A copy per reader: a residual block's input is read by two quantizers, each with its own chain.
            self.state[node.output[0]] = dataclasses.replace(source, nodes=[*source.nodes, node])
        elif node.op_type in QUANTIZERS:
            self._threshold(node, source)
        else:
            refuse(node, f"{node.op_type} between a layer's product and its quantizer; hbnn folds "
                        f"{', '.join(CHANNEL_OPS)} there into thresholds")

    def _check_channel_op(self, node, source: _Accumulator):
        """The bisection needs a weakly monotone function of each channel's accumulator alone: constants per
        channel or per tensor (not along H or W), and a Div dividing the data, not dividing by it."""
        if node.op_type in ("Relu", "BatchNormalization"):
            return
        data = [name for name in node.input if name not in self.constants]
        constants = [name for name in node.input if name in self.constants]
        if len(data) != 1 or len(constants) != 1:
            refuse(node, "hbnn folds elementwise ops of one tensor and one constant into thresholds")
        if node.op_type == "Div" and node.input[0] not in data:
            refuse(node, "divides a constant by the layer's values, which is not monotone")
        shape = np.shape(self.constants[constants[0]])
        channels = source.shape[0]
        per_channel = ((channels,) if source.rank == 2 else (channels, 1, 1))
        allowed = {(), (1,), per_channel, (1, *per_channel)} | {(1,) * n for n in range(1, source.rank + 1)}
        if shape not in allowed:
            refuse(node, f"a constant of shape {shape}: hbnn folds per-channel or per-tensor constants, not "
                        "ones along the pixels")

    def _evaluate_onnx(self, source: _Accumulator, quantizer, values: np.ndarray) -> np.ndarray:
        """The reference on the segment: execute_onnx on its nodes (cached per batch size)."""
        key = (quantizer.name, len(values))
        if key not in self._segments:
            self._segments[key] = self._segment(source, quantizer, len(values))
        return self.execute_onnx(self._segments[key], {source.tensor: values})[quantizer.output[0]]

    def _integer_bias(self, node, source: _Accumulator) -> bool:
        """An Add right after the product of a per-channel constant that is integer codes at the accumulator's scale
        becomes the Dense's bias (hbnn.compiler.qonnx_export writes an integer bias so); any other Add is a float op."""
        other = [name for name in node.input if name != source.tensor]
        if len(other) != 1 or other[0] not in self.constants:
            return False
        values = np.asarray(self.constants[other[0]], dtype=np.float64)
        channels = source.shape[0]
        if values.size != channels or values.shape[-1 if source.rank == 2 else 1] != channels:
            return False
        codes = values.reshape(-1) / source.scale
        if not np.array_equal(codes, np.round(codes)) or not np.array_equal(
                (np.round(codes) * source.scale).astype(np.float32), values.reshape(-1).astype(np.float32)):
            return False
        bias = np.round(codes).astype(np.int64)
        bound = source.bound + int(np.abs(bias).max())
        if _mantissa_bits(source.scale) + bound.bit_length() > 24:
            return False
        self.state[node.output[0]] = dataclasses.replace(source, bias=bias, tensor=node.output[0])
        return True

    def _segment(self, source: _Accumulator, quantizer, batch: int):
        """The nodes from the accumulator's tensor to the quantizer's output as a model of their own, for `batch`
        values per channel."""
        import onnx.helper
        import onnx.numpy_helper
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.transformation.infer_shapes import InferShapes

        nodes = [*source.nodes, quantizer]
        channels = source.shape[0]
        shape = [batch, channels] + ([source.window] * 2 if source.window > 1 else [1] * (source.rank - 2))
        constants = sorted({name for node in nodes for name in node.input if name in self.constants})
        initializers = [onnx.numpy_helper.from_array(np.asarray(self.constants[name]), name) for name in constants]
        graph = onnx.helper.make_graph(
            [onnx.helper.make_node(n.op_type, list(n.input), list(n.output), name=n.name, domain=n.domain,
                                   **attributes_of(n)) for n in nodes],
            "segment", [onnx.helper.make_tensor_value_info(source.tensor, onnx.TensorProto.FLOAT, shape)],
            [onnx.helper.make_tensor_value_info(quantizer.output[0], onnx.TensorProto.FLOAT, None)], initializers)
        model = ModelWrapper(onnx.helper.make_model(graph, opset_imports=list(self.model.model.opset_import)))
        return model.transform(InferShapes())

    def _threshold(self, quantizer, source: _Accumulator):
        dtype, scale, (low_code, high_code) = self._quantizer_codes(quantizer)
        channels = source.shape[0]
        scale = np.asarray(scale, dtype=np.float64).ravel()
        if scale.size not in (1, channels):
            refuse(quantizer, f"output scale of {scale.size} values for {channels} channels")
        scale = np.broadcast_to(scale, (channels,)).copy()
        levels = 2 if isinstance(dtype, Bipolar) else high_code - low_code + 1
        tail = [1] * (source.rank - 2)

        def levels_of(accumulators: np.ndarray) -> np.ndarray:
            count = len(accumulators)
            biased = accumulators + (source.bias if source.bias is not None else 0)
            values = (biased.astype(np.float64) * source.scale).astype(np.float32).reshape(count, channels, *tail)
            if source.window > 1:  # the sum in the window's corner: the pool's float sum is exactly it
                window = np.zeros((count, channels, source.window, source.window), dtype=np.float32)
                window[:, :, 0, 0] = values.reshape(count, channels)
                values = window
            out = np.asarray(self.evaluate(source, quantizer, values)).reshape(count, channels)
            if isinstance(dtype, Bipolar):
                return (out > 0).astype(np.int64)
            return np.rint(out.astype(np.float64) / scale).astype(np.int64) - low_code

        low, high, stride = self._lattice(source)
        steps = fold_steps(levels_of, channels, low, high, levels, stride=stride)
        name = quantizer.name
        if isinstance(dtype, Bipolar):
            node = MultiThreshold(name, (source.dense.name,), steps.thresholds, steps.descending, 0, Bipolar())
        else:
            first, last = reached_levels(steps, low, high)
            node = MultiThreshold(name, (source.dense.name,), steps.thresholds[:, first:last], steps.descending,
                                  low_code + first, _stream_type(quantizer, (low_code, high_code), scale))
        self.nodes.append(node)
        self.state[quantizer.output[0]] = _Codes(name, node.dtype, scale, source.shape, (low_code, high_code))

    @staticmethod
    def _lattice(source: _Accumulator) -> tuple[int, int, int]:
        return source.lattice

    # --- the end ---------------------------------------------------------------------------------------------------

    def _finish(self) -> QonnxLowering:
        if self.input is None:
            raise QonnxError("the graph has no activation quantizer on its input: hbnn's accelerator reads codes "
                             "(add a BipolarQuant or Quant in front of the first layer)")
        final = self.state.get(self.output_name)
        if isinstance(final, _Accumulator):
            if isinstance(final.dense, Pool):
                raise QonnxError(f"the graph ends in an average pool ({final.dense.name!r}): its float output is "
                                 "not an integer times a scale; quantize it (a Trunc or Quant) before the output")
            if final.bias is not None:  # the hardware adds the last layer's bias (thresholds fold the others')
                self.nodes = [dataclasses.replace(node, bias=final.bias) if node is final.dense else node
                              for node in self.nodes]
            output_tensor, value, scale, shape = final.tensor, final.dense.name, final.scale, final.shape
            tail = tuple(node.name for node in final.nodes)
        elif isinstance(final, _Codes):
            output_tensor = self.output_name
            value, scale, shape, tail = final.value, final.scale, final.shape, ()
        else:
            raise QonnxError(f"the graph output {self.output_name!r} is not computed from the quantized layers")
        pixels = shape[1] * shape[2]
        graph = Graph(((self.input.value, Tensor(self.input.dtype, self.input.shape)),), self.nodes, (value,))
        check_graph(graph)
        (input_scale,) = np.unique(self.input.scale)
        return QonnxLowering(graph, self.input_tensor, float(input_scale), output_tensor,
                             np.tile(scale, pixels), tail)


def lower_qonnx(model, evaluator=None) -> QonnxLowering:
    """A cleaned QONNX ModelWrapper (load_qonnx) as a checked IR graph, before the passes.

    evaluator(constants) -> evaluate(source, quantizer, values) -> the quantizer's float32 output: the reference the
    thresholds are exact against, on the float nodes from a layer's product (`source.nodes`, values shaped as its
    tensor with one value per channel per row) through `quantizer`; constants: the graph's constant tensors by name.
    Default: execute_onnx on those nodes. A model compiled from PyTorch passes PyTorch's own functions
    (hbnn.compiler.brevitas_import.torch_evaluator)."""
    return _Lowering(model, evaluator).run()
