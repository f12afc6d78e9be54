"""The intermediate representation: a few frozen, typed dataclasses.

A `Graph` has named inputs, nodes in topological order and named outputs. Every node has a `name` (which also names
its one output value) and a tuple of `inputs` naming the values it reads, so fan-out (several readers) and fan-in
(an add of two branches) need no redesign. Values are `Tensor`s: a data type and a shape (C, H, W); a dense layer's
vectors are (C, 1, 1).

Lowering from PyTorch produces the front-end nodes, one-to-one with quant/CONTRACT.md: `Dense` (the exact integer
dot product at every pixel), `ChannelOps` (the float32 op sequence after it: dequantization, alpha, bias, batch
norm, ReLU) and `Quantize` (the next layer's input quantizer); a convolution is a `SlidingWindow` (im2col, with the
layer's pad code) followed by a Dense, pooling a `Pool` and flattening a `Flatten`. The passes move quantizers in
front of max pools and flattens, fold each ChannelOps -> Quantize into a `MultiThreshold` on the integer values and
give each Dense and Pool its folding; what is left is what the hardware implements. A residual sum is an
`ElementwiseAdd` of two int8 code tensors of one scale (quant/residual.py): its two inputs make the graph a DAG.

Wire order, which every node's element order follows: pixels in raster order, channels fastest.
Arrays are stored read-only so that a node, once made, cannot change under a later pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Bipolar", "Int", "Float32", "DataType", "Tensor", "Folding",
    "Scale", "Multiply", "Add", "BatchNorm", "Relu", "ChannelOp",
    "Dense", "ChannelOps", "Quantize", "MultiThreshold", "SlidingWindow", "Pool", "Flatten", "ElementwiseAdd",
    "ChannelPad", "Node", "Graph",
    "POOL_KINDS", "window_output_size",
    "INT8", "WEIGHT_CODE_BOUNDS", "ABC_THRESHOLD", "accumulator_bound", "accumulator_type", "levels_type",
    "abc_ranks",
]


@dataclass(frozen=True)
class Bipolar:
    """Values in {-1, +1}; in hardware one bit, 1 meaning +1."""


@dataclass(frozen=True)
class Int:
    """Integer codes of `width` bits; the value a code stands for is code * 2**exponent."""
    width: int
    signed: bool
    exponent: int = 0

    @property
    def low(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def high(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1


@dataclass(frozen=True)
class Float32:
    """IEEE single precision; only between a Dense and the Quantize that a pass folds into thresholds."""


DataType = Bipolar | Int | Float32
INT8 = (-128, 127)  # the codes of every int8 quantizer in the contract


def _positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class Tensor:
    dtype: DataType
    shape: tuple[int, int, int]  # (C, H, W)

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(self.shape))
        if len(self.shape) != 3:
            raise ValueError(f"a tensor shape is (C, H, W), not {self.shape}")
        for axis, size in zip("CHW", self.shape):
            _positive(f"shape {axis}", size)

    @property
    def elements(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]


@dataclass(frozen=True)
class Folding:
    """How a matrix-vector layer is time-multiplexed: PE output rows and SIMD input columns per cycle; for an ABC-Net
    layer also `bases`, the weight bases computed side by side (the others take further passes; None: all M)."""
    pe: int
    simd: int
    bases: int | None = None

    def __post_init__(self):
        _positive("pe", self.pe)
        _positive("simd", self.simd)
        if self.bases is not None:
            _positive("bases", self.bases)


def _frozen_array(values, dtype) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    array.flags.writeable = False
    return array


# The largest |weight code| of each weight kind: binary +-1, ternary -1/0/+1, int8 -127..127, ABC +-1 per plane.
WEIGHT_CODE_BOUNDS = {"binary": 1, "ternary": 1, "int8": 127, "abc": 1}
ABC_THRESHOLD = np.float32(0.5)  # activation base n is +1 where f32(x + shift_n) >= 0.5 (quant/CONTRACT.md)


def levels_type(act_bases: int) -> Int:
    """The codes an ABC-Net activation quantizer makes: levels 0..N, the number of its N bases that are +1."""
    return Int(act_bases.bit_length(), False)


def abc_ranks(shifts) -> tuple[int, ...]:
    """The level at which each activation base turns +1: f32(x + v_n) is non-decreasing in v_n, so the bases that
    are +1 are those with the largest shifts, and base n is +1 exactly when the level (their count) reaches
    1 + #{n' : v_n' > v_n} (equal shifts, equal bases)."""
    shifts = np.asarray(shifts, dtype=np.float32)
    return tuple(1 + int((shifts > v).sum()) for v in shifts)


def accumulator_bound(weight_kind: str, input_type: DataType, length: int, coefficients=None) -> int:
    """The largest |sum of `length` products| of codes; ABC-Net: sum |q[i, n]| * length (each pair sum of M x N is
    at most `length` in magnitude)."""
    if weight_kind == "abc":
        return int(np.abs(np.asarray(coefficients, dtype=np.int64)).sum()) * length
    weight = WEIGHT_CODE_BOUNDS[weight_kind]
    element = 1 if isinstance(input_type, Bipolar) else max(-input_type.low, input_type.high)
    return weight * element * length


def accumulator_type(weight_kind: str, weight_exponent: int, input_type: DataType, length: int,
                     coefficients=None) -> Int:
    exponent = weight_exponent + (input_type.exponent if isinstance(input_type, Int) else 0)
    return Int(accumulator_bound(weight_kind, input_type, length, coefficients).bit_length() + 1, True, exponent)


# --- the exact float32 channel operations (quant/CONTRACT.md), each one IEEE op per element, in order ------------

@dataclass(frozen=True, eq=False)
class Scale:
    """The conversion of integer codes to float32, always first: f32(code * 2**exponent), rounded once; with a
    divisor (average pooling's window area), f32(f64(code * 2**exponent) / divisor), as ExactAvgPool2d computes it:
    one float64 division, then the rounding to float32."""
    divisor: int = 1

    def __post_init__(self):
        _positive("divisor", self.divisor)


@dataclass(frozen=True, eq=False)
class Multiply:
    """x * values[c] in float32 (XNOR-Net's alpha)."""
    values: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "values", _frozen_array(self.values, np.float32))


@dataclass(frozen=True, eq=False)
class Add:
    """x + values[c] in float32 (a float bias)."""
    values: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "values", _frozen_array(self.values, np.float32))


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """((x - mean) / sqrt(var + f32(eps))) * gamma + beta, four float32 ops, sqrt correctly rounded."""
    mean: np.ndarray
    var: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    eps: float

    def __post_init__(self):
        for attr in ("mean", "var", "gamma", "beta"):
            object.__setattr__(self, attr, _frozen_array(getattr(self, attr), np.float32))


@dataclass(frozen=True, eq=False)
class Relu:
    """max(x, 0)."""


ChannelOp = Scale | Multiply | Add | BatchNorm | Relu


# --- nodes ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Dense:
    """acc[o, y, x] = sum_i weights[o, i] * in[i, y, x] + bias[o] on codes: the exact integer dot product of a
    layer, at every pixel (a linear layer's values are (C, 1, 1); a convolution reads a SlidingWindow's columns).

    weight_kind "binary" (codes +-1), "ternary" (codes -1, 0, +1; int8 inputs only) or "int8" (codes -127..127,
    value code * 2**weight_exponent); the input is bipolar or int8 codes. The output code is acc, its exponent the sum
    of the input's and the weights'.

    weight_kind "abc" (ABC-Net): weights are M planes of +-1 (M, out, in), the input levels 0..N (levels_type), and
    acc = sum_i sum_n coefficients[i, n] * (planes[i] . H_n), H_n = +1 where level >= ranks[n], else -1; the
    coefficient codes' power-of-two scale is weight_exponent.
    """
    name: str
    inputs: tuple[str, ...]
    weights: np.ndarray  # int64 (out_features, in_features); ABC: (M, out_features, in_features)
    weight_kind: str
    weight_exponent: int = 0
    bias: np.ndarray | None = None  # int64 codes at the accumulator's scale, or None
    folding: Folding | None = None
    coefficients: np.ndarray | None = None  # ABC only: int64 (M, N)
    ranks: tuple[int, ...] = ()  # ABC only: (N,)

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "weights", _frozen_array(self.weights, np.int64))
        object.__setattr__(self, "ranks", tuple(int(r) for r in self.ranks))
        if self.bias is not None:
            object.__setattr__(self, "bias", _frozen_array(self.bias, np.int64))
        if self.coefficients is not None:
            object.__setattr__(self, "coefficients", _frozen_array(self.coefficients, np.int64))

    @property
    def in_features(self) -> int:
        return self.weights.shape[-1]

    @property
    def out_features(self) -> int:
        return self.weights.shape[-2]

    @property
    def weight_bases(self) -> int:
        """M: weight planes (1 but for ABC-Net)."""
        return self.weights.shape[0] if self.weight_kind == "abc" else 1

    def accumulator_bound(self, input_type: DataType) -> int:
        return accumulator_bound(self.weight_kind, input_type, self.in_features, self.coefficients)


@dataclass(frozen=True, eq=False)
class ChannelOps:
    """The contract's float32 op sequence on an integer input, per channel: Scale first, then the others."""
    name: str
    inputs: tuple[str, ...]
    ops: tuple[ChannelOp, ...]

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "ops", tuple(self.ops))


@dataclass(frozen=True, eq=False)
class Quantize:
    """A layer's input quantizer on float32: "sign" (+1 where x >= 0), "int8" (clamp(round_half_even(x / 2**e),
    -128, 127)) or "abc" (ABC-Net's N activation bases, as their level: #{n : f32(x + shifts[n]) >= 0.5})."""
    name: str
    inputs: tuple[str, ...]
    kind: str
    exponent: int = 0  # int8 only
    shifts: np.ndarray | None = None  # abc only: float32 (N,)

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if self.shifts is not None:
            object.__setattr__(self, "shifts", _frozen_array(self.shifts, np.float32))


@dataclass(frozen=True, eq=False)
class MultiThreshold:
    """Integer accumulator -> output code base + level, level = #{k : key >= thresholds[c, k]}, key = acc or -acc
    (descending[c]). The output type is Bipolar (base 0, one threshold: level 1 means +1) or Int."""
    name: str
    inputs: tuple[str, ...]
    thresholds: np.ndarray  # int64 (channels, T), non-decreasing along T
    descending: np.ndarray  # bool (channels,)
    base: int
    dtype: DataType

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "thresholds", _frozen_array(self.thresholds, np.int64))
        object.__setattr__(self, "descending", _frozen_array(self.descending, np.bool_))

    @property
    def channels(self) -> int:
        return self.thresholds.shape[0]


def window_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output rows (or columns) of a window sliding over `size` padded by `padding` on both sides, as torch counts."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True, eq=False)
class SlidingWindow:
    """im2col: (C, H, W) -> (K*K*C, OH, OW); output column (ky*K + kx)*C + c at (oy, ox) is the input at
    (oy*stride - padding + ky, ox*stride - padding + kx), channel c, or `pad_code` outside the image (0 for int8
    codes; +1 for bipolar ones: a binary convolution pads its binarized input with +1, quant/CONTRACT.md)."""
    name: str
    inputs: tuple[str, ...]
    kernel: int
    stride: int = 1
    padding: int = 0
    pad_code: int = 0

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        _positive("kernel", self.kernel)
        _positive("stride", self.stride)
        if not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"padding must be a non-negative integer, not {self.padding!r}")


POOL_KINDS = ("max", "sum")


@dataclass(frozen=True, eq=False)
class Pool:
    """Per channel over each kernel x kernel window: "max" (padding counts as the lowest value: -inf on float32, the
    type's lowest code on integers, -1 on bipolar) or "sum" (integer codes, no padding; average pooling is a sum
    followed by Scale(divisor=area)). `simd`: channels per cycle in hardware, set by the folding pass."""
    name: str
    inputs: tuple[str, ...]
    kind: str
    kernel: int
    stride: int
    padding: int = 0
    simd: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        _positive("kernel", self.kernel)
        _positive("stride", self.stride)
        if self.simd is not None:
            _positive("simd", self.simd)

    @property
    def area(self) -> int:
        return self.kernel * self.kernel


@dataclass(frozen=True, eq=False)
class Flatten:
    """(C, H, W) -> (C*H*W, 1, 1) in wire order: element (y*W + x)*C + c. On the stream it is nothing; lowering
    permutes the next linear layer's columns from torch's (c, y, x) order to this one."""
    name: str
    inputs: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))


@dataclass(frozen=True, eq=False)
class ElementwiseAdd:
    """out = a + b on integer codes of one exponent and shape (a residual sum: both addends quantized by one shared
    quantizer first, quant/residual.py); the output is one bit wider than the wider input. `simd`: elements per
    cycle in hardware, set by the folding pass."""
    name: str
    inputs: tuple[str, ...]
    simd: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if self.simd is not None:
            _positive("simd", self.simd)


@dataclass(frozen=True, eq=False)
class ChannelPad:
    """(C, H, W) -> (before + C + after, H, W): each pixel's channels between `before` and `after` constant ones
    (the CIFAR ResNets' parameter-free shortcut). On float32 the constant is 0.0 and pad_code 0; on codes it is
    pad_code (a quantizer moved in front makes it the quantized 0.0: 0 for int8, +1 for a sign). `simd`: channels
    per cycle in hardware, set by the folding pass."""
    name: str
    inputs: tuple[str, ...]
    before: int
    after: int
    pad_code: int = 0
    simd: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        for attr in ("before", "after"):
            value = getattr(self, attr)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{attr} must be a non-negative integer, not {value!r}")
        if self.simd is not None:
            _positive("simd", self.simd)


Node = Dense | ChannelOps | Quantize | MultiThreshold | SlidingWindow | Pool | Flatten | ElementwiseAdd | ChannelPad


@dataclass(frozen=True, eq=False)
class Graph:
    """Named input tensors, nodes in topological order, and the names of the output values."""
    inputs: tuple[tuple[str, Tensor], ...]
    nodes: tuple[Node, ...] = field(default_factory=tuple)
    outputs: tuple[str, ...] = field(default_factory=tuple)
    # Per output, what the host divides its value by (an average pool's area, which has no integer form on the
    # codes): the float32 output is f32(f64(code * 2**exponent) / divisor). Empty means 1 for every output.
    output_divisors: tuple[int, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple((name, tensor) for name, tensor in self.inputs))
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "output_divisors", tuple(self.output_divisors) or (1,) * len(self.outputs))

    def replace(self, nodes=None, outputs=None, output_divisors=None) -> Graph:
        outputs = self.outputs if outputs is None else tuple(outputs)
        if output_divisors is None:
            output_divisors = self.output_divisors if outputs == self.outputs else ()
        return Graph(self.inputs, self.nodes if nodes is None else tuple(nodes), outputs, output_divisors)

    def divisor_of(self, output: str) -> int:
        return self.output_divisors[self.outputs.index(output)]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node named {name!r}; nodes are {[n.name for n in self.nodes]}")

    def readers(self, value: str) -> list[Node]:
        """The nodes that read `value`."""
        return [node for node in self.nodes if value in node.inputs]

    def dense_layers(self) -> list[Dense]:
        return [node for node in self.nodes if isinstance(node, Dense)]
