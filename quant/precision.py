"""Precision: what a layer quantizes its weights and its input to, and the conv2d/linear factories built on it.

Every non-float layer the factories return has an integer inference form that reproduces its eval-mode output
bit for bit; quant/CONTRACT.md states the representation and the exact eval op sequence of each.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from torch import nn

from .validation import check_positive_int
from .abc_layers import AbcConv2d, AbcLinear
from .binary_layers import BinaryConv2d, BinaryLinear
from .float_layers import FloatConv2d, FloatLinear
from .int8_layers import Int8Conv2d, Int8Linear
from .ternary_layers import TernaryConv2d, TernaryLinear

__all__ = [
    "ABC_NAME", "BINARY", "FLOAT", "INT8", "TERNARY", "WEIGHT_BINARY", "Precision", "abc", "conv2d", "linear",
]

WEIGHT_KINDS = ("float", "int8", "binary", "ternary", "abc")
INPUT_KINDS = ("float", "int8", "binary", "abc")
# The input kinds each weight kind may be paired with (only these have a name and an implementation).
ALLOWED_INPUTS = {
    "float": ("float",),
    "int8": ("int8",),
    "binary": ("int8", "binary"),
    "ternary": ("int8",),
    "abc": ("abc",),
}
SCALABLE_WEIGHTS = ("binary", "ternary")  # the kinds whose weight_scale option means something
ALPHA_SUFFIX = "+alpha"
ABC_NAME = re.compile(r"abc(\d+)x(\d+)")
FIXED_NAMES = {  # name -> (weights, inputs)
    "float": ("float", "float"),
    "int8": ("int8", "int8"),
    "weight-binary": ("binary", "int8"),
    "binary": ("binary", "binary"),
    "ternary": ("ternary", "int8"),
}


@dataclass(frozen=True)
class Precision:
    """The quantization of one layer.

    weights: "float" | "int8" | "binary" | "ternary" | "abc"
    inputs: "float" | "int8" | "binary" | "abc" -- what the layer quantizes its own input to
    weight_scale: binary/ternary only: a per-output-channel float scale alpha after the integer conv
    weight_bases: ABC-Net's M, the number of +-1 weight bases (weights == "abc")
    act_bases: ABC-Net's N, the number of +-1 activation bases (inputs == "abc")
    """

    weights: str
    inputs: str
    weight_scale: bool = False
    weight_bases: int = 1
    act_bases: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.weights, str) or self.weights not in WEIGHT_KINDS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHT_KINDS)}, not {self.weights!r}")
        if not isinstance(self.inputs, str) or self.inputs not in INPUT_KINDS:
            raise ValueError(f"inputs must be one of {', '.join(INPUT_KINDS)}, not {self.inputs!r}")
        allowed = ALLOWED_INPUTS[self.weights]
        if self.inputs not in allowed:
            raise ValueError(f"inputs={self.inputs!r} cannot go with weights={self.weights!r}; "
                             f"{self.weights} weights take inputs {' or '.join(map(repr, allowed))}")
        if not isinstance(self.weight_scale, bool):
            raise ValueError(f"weight_scale must be True or False, not {self.weight_scale!r}")
        if self.weight_scale and self.weights not in SCALABLE_WEIGHTS:
            raise ValueError(f"weight_scale=True needs binary or ternary weights, not weights={self.weights!r}")
        for name, kind in (("weight_bases", self.weights), ("act_bases", self.inputs)):
            count = check_positive_int(name, getattr(self, name))
            object.__setattr__(self, name, count)  # a numpy or other index-able int becomes a plain int
            if kind != "abc" and count != 1:
                raise ValueError(f"{name}={count} needs abc {'weights' if name == 'weight_bases' else 'inputs'}; "
                                 f"it must be 1 for {name.split('_')[0]} kind {kind!r}")

    @property
    def name(self) -> str:
        """"float", "int8", "weight-binary", "binary", "ternary" or "abcMxN", with "+alpha" if weight_scale."""
        if self.weights == "abc":
            base = f"abc{self.weight_bases}x{self.act_bases}"
        else:
            base = next(name for name, kinds in FIXED_NAMES.items() if kinds == (self.weights, self.inputs))
        return base + (ALPHA_SUFFIX if self.weight_scale else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Precision:
        if not isinstance(d, Mapping):
            raise ValueError(f"a precision dict must be a mapping, not {type(d).__name__}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(d) - known, key=str)
        if unknown:
            raise ValueError(f"unknown precision field(s) {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(sorted(known))}")
        missing = [name for name in ("weights", "inputs") if name not in d]
        if missing:
            raise ValueError(f"precision dict lacks {' and '.join(map(repr, missing))}")
        return cls(**d)

    @classmethod
    def parse(cls, text: str) -> Precision:
        """A name as `name` writes it ("binary+alpha", "abc3x1", ...) -> the Precision."""
        if not isinstance(text, str):
            raise ValueError(f"a precision name must be a string, not {text!r}")
        base = text.strip().lower()
        weight_scale = base.endswith(ALPHA_SUFFIX)
        if weight_scale:
            base = base[:-len(ALPHA_SUFFIX)]
        match = ABC_NAME.fullmatch(base)
        if base in FIXED_NAMES or match:
            if match:
                weights, inputs, counts = "abc", "abc", dict(weight_bases=int(match[1]), act_bases=int(match[2]))
            else:
                (weights, inputs), counts = FIXED_NAMES[base], {}
            try:
                return cls(weights, inputs, weight_scale=weight_scale, **counts)
            except ValueError as error:  # e.g. "int8+alpha", "abc0x1": say which name it was
                raise ValueError(f"precision {text!r}: {error}") from None
        raise ValueError(f"unknown precision {text!r}: expected one of {', '.join(FIXED_NAMES)} or abcMxN "
                         f"(e.g. abc3x1), binary/ternary ones optionally followed by {ALPHA_SUFFIX}")


FLOAT = Precision("float", "float")          # pure float baseline
INT8 = Precision("int8", "int8")             # the hardware's "full precision": 8-bit fixed point, power-of-two scales
WEIGHT_BINARY = Precision("binary", "int8")  # Hybrid Binary Networks' "weight-binarized": binary weights, 8-bit inputs
BINARY = Precision("binary", "binary")       # "fully binarized": binary weights, sign inputs
TERNARY = Precision("ternary", "int8")


def abc(m: int, n: int) -> Precision:
    """ABC-Net with m weight bases and n activation bases."""
    return Precision("abc", "abc", weight_bases=m, act_bases=n)


# Keyed by Precision.weights: the weight kind decides the implementation, the class reads .inputs itself.
CONV_CLASSES = {"float": FloatConv2d, "int8": Int8Conv2d, "binary": BinaryConv2d, "ternary": TernaryConv2d,
                "abc": AbcConv2d}
LINEAR_CLASSES = {"float": FloatLinear, "int8": Int8Linear, "binary": BinaryLinear, "ternary": TernaryLinear,
                  "abc": AbcLinear}


def conv2d(precision: Precision | str, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
           padding: int = 0, bias: bool = False) -> nn.Module:
    """A 2-D convolution (no groups or dilation) at `precision` (a Precision or its name). A quantized conv pads
    its input with the code `layer.input_pad_code` (+1 for +-1 inputs, else 0; quant/CONTRACT.md); the float
    baseline zero-pads."""
    precision = _as_precision(precision)
    return CONV_CLASSES[precision.weights](precision, in_channels, out_channels, kernel_size, stride=stride,
                                           padding=padding, bias=bias)


def linear(precision: Precision | str, in_features: int, out_features: int, bias: bool = False) -> nn.Module:
    """A fully connected layer at `precision` (a Precision or its name)."""
    precision = _as_precision(precision)
    return LINEAR_CLASSES[precision.weights](precision, in_features, out_features, bias=bias)


def _as_precision(precision: Precision | str) -> Precision:
    if isinstance(precision, str):
        return Precision.parse(precision)
    if not isinstance(precision, Precision):
        raise TypeError(f"precision must be a Precision or a precision name, not {type(precision).__name__}")
    return precision
