"""The intermediate representation: a few frozen, typed dataclasses.

A `Graph` is a chain of nodes from one bipolar input vector to one output vector. Lowering from PyTorch produces
`BinaryDense`, `BatchNorm` and `Sign` nodes; the passes turn them into `Threshold` and finally into
`XnorPopcount` nodes, which are what the hardware implements. Arrays are stored read-only so that a node, once
made, cannot change under a later pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Bipolar", "Int", "Float32", "DataType", "Folding",
    "BinaryDense", "BatchNorm", "Sign", "Threshold", "XnorPopcount", "Node", "Graph",
    "accumulator_width", "popcount_width",
]


@dataclass(frozen=True)
class Bipolar:
    """Values in {-1, +1}; in hardware one bit, 1 meaning +1."""


@dataclass(frozen=True)
class Int:
    width: int
    signed: bool


@dataclass(frozen=True)
class Float32:
    """IEEE single precision; only between a BatchNorm and the Sign that consumes it."""


DataType = Bipolar | Int | Float32


@dataclass(frozen=True)
class Folding:
    """How a matrix-vector layer is time-multiplexed: PE output rows and SIMD input columns per cycle."""
    pe: int
    simd: int

    def __post_init__(self):
        for name in ("pe", "simd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")


def _frozen_array(values, dtype) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    array.flags.writeable = False
    return array


def accumulator_width(in_features: int) -> int:
    """Bits of a signed integer holding any sum of `in_features` products of +-1."""
    return in_features.bit_length() + 1


def popcount_width(in_features: int) -> int:
    """Bits of an unsigned integer holding 0..in_features."""
    return in_features.bit_length()


@dataclass(frozen=True, eq=False)
class BinaryDense:
    """y = W x with W and x bipolar; y is the integer sum of +-1 products."""
    name: str
    weights: np.ndarray  # int8, shape (out_features, in_features), entries -1 or +1

    def __post_init__(self):
        object.__setattr__(self, "weights", _frozen_array(self.weights, np.int8))

    @property
    def in_features(self) -> int:
        return self.weights.shape[1]

    @property
    def out_features(self) -> int:
        return self.weights.shape[0]


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """Eval-mode batch norm evaluated as ((x - mean) / sqrt(var + eps)) * gamma + beta, each op in float32.

    This is the exact op sequence of `hbnn.quant.ExactBatchNorm1d` in eval mode, so numpy reproduces it bit for bit.
    """
    name: str
    mean: np.ndarray
    var: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    eps: float

    def __post_init__(self):
        for attr in ("mean", "var", "gamma", "beta"):
            object.__setattr__(self, attr, _frozen_array(getattr(self, attr), np.float32))

    @property
    def channels(self) -> int:
        return self.mean.shape[0]

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        denominator = np.sqrt(self.var + np.float32(self.eps))
        return (x - self.mean) / denominator * self.gamma + self.beta


@dataclass(frozen=True, eq=False)
class Sign:
    """+1 where x >= 0 (so sign(0) = +1, as Brevitas' binary_sign), else -1."""
    name: str


@dataclass(frozen=True, eq=False)
class Threshold:
    """Integer accumulator -> bipolar: +1 where (flip ? -acc : acc) >= threshold, per channel."""
    name: str
    thresholds: np.ndarray  # int64 per channel
    flip: np.ndarray  # bool per channel

    def __post_init__(self):
        object.__setattr__(self, "thresholds", _frozen_array(self.thresholds, np.int64))
        object.__setattr__(self, "flip", _frozen_array(self.flip, np.bool_))

    @property
    def channels(self) -> int:
        return self.thresholds.shape[0]


@dataclass(frozen=True, eq=False)
class XnorPopcount:
    """The hardware layer: p = popcount(xnor(w_row, x)) per output row.

    With thresholds the output bit is p >= threshold (bipolar out); without, the output is the signed
    accumulator 2p - in_features (integer out).
    """
    name: str
    weight_bits: np.ndarray  # bool, shape (out_features, in_features), True meaning +1
    thresholds: np.ndarray | None  # int64 per row, in 0..in_features+1, or None
    folding: Folding | None = None

    def __post_init__(self):
        object.__setattr__(self, "weight_bits", _frozen_array(self.weight_bits, np.bool_))
        if self.thresholds is not None:
            object.__setattr__(self, "thresholds", _frozen_array(self.thresholds, np.int64))

    @property
    def in_features(self) -> int:
        return self.weight_bits.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight_bits.shape[0]

    @property
    def output_type(self) -> DataType:
        if self.thresholds is not None:
            return Bipolar()
        return Int(accumulator_width(self.in_features), signed=True)


Node = BinaryDense | BatchNorm | Sign | Threshold | XnorPopcount


@dataclass(frozen=True, eq=False)
class Graph:
    """A chain of nodes applied to a bipolar input vector of `input_width` elements."""
    input_width: int
    nodes: tuple[Node, ...] = field(default_factory=tuple)

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(self.nodes))

    def replace(self, nodes) -> Graph:
        return Graph(self.input_width, tuple(nodes))

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no layer named {name!r}; layers are {[n.name for n in self.nodes]}")
