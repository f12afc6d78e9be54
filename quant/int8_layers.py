"""int8 layers: Brevitas QuantConv2d / QuantLinear with 8-bit power-of-two fixed point weights and inputs.

weights: Int8WeightPerTensorFixedPoint, codes in [-127, 127], scale s_w = 2^ceil(log2 max|W|) / 128.
input:   Int8ActPerTensorFixedPoint, codes in [-128, 127], learned power-of-two scale s_x.
bias:    Int32Bias, int32 codes at scale s_x * s_w, the accumulator's own scale, so it adds exactly.

Training mode is Brevitas' own forward. Eval mode replaces Brevitas' float32 conv/matmul (not exact once an
accumulation passes 2^24, and summed in an order the kernel picks) by

    y = float32( float64_conv(x_q, w_q) + b_q )

with x_q = codes_x * s_x, w_q = codes_w * s_w, b_q = codes_b * s_x * s_w the dequantized float32 values: every
float64 step is exact, so y is the integer accumulator codes_x (*) codes_w + codes_b, times the power of two
s_x * s_w, rounded once to float32 (round to nearest even).
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantConv2d, QuantLinear
from brevitas.quant.fixed_point import Int8WeightPerTensorFixedPoint
from brevitas.quant.scaled_int import Int32Bias

from .exact_ops import (PaddedConv, exact_weighted_sum, integer_weighted_sum, per_channel, require_eval,
                        require_weights, value_of)
from .input_codes import INPUT_QUANTIZERS, input_codes

__all__ = ["Int8Conv2d", "Int8Linear"]

QUANTIZERS = dict(weight_quant=Int8WeightPerTensorFixedPoint, input_quant=INPUT_QUANTIZERS["int8"],
                  bias_quant=Int32Bias, return_quant_tensor=False)


class _Int8Layer:
    """Eval forward, integer inference and weight codes, shared by Int8Conv2d and Int8Linear."""

    def inner_forward_impl(self, x, quant_weight, quant_bias):
        if self.training:
            return super().inner_forward_impl(x, quant_weight, quant_bias)
        out = exact_weighted_sum(self, value_of(x), value_of(quant_weight))
        if quant_bias is not None:
            out = out + per_channel(self, value_of(quant_bias).double())
        return out.to(torch.float32)

    def quantized_weight_codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(int8 codes in [-127, 127], per-tensor power-of-two scale s_w as a 0-d float32 tensor)."""
        with torch.no_grad():
            quant_weight = self.quant_weight()
            return quant_weight.int().to(torch.int8), quant_weight.scale.detach().reshape(())

    def integer_inference(self, x: torch.Tensor) -> torch.Tensor:
        """float32( (codes_x (*) codes_w + codes_b) as float64 * (s_x * s_w) ): the eval output, bit for bit."""
        require_eval(self)
        with torch.no_grad():
            x_codes, x_scale = input_codes("int8", self.input_quant, x)
            w_codes, w_scale = self.quantized_weight_codes()
            accumulator = integer_weighted_sum(self, x_codes, w_codes)
            if self.bias is not None:
                accumulator = accumulator + per_channel(self, self._bias_codes(x))
            # s_x * s_w is a power of two: the float32 product and the float64 multiply are exact.
            return (accumulator.double() * (x_scale * w_scale).double()).to(torch.float32)

    def _bias_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Int32Bias codes at scale s_x * s_w; Brevitas needs the quantized input and weight to produce them."""
        quant_input = self.input_quant(x)
        quant_weight = self.quant_weight(quant_input)
        return self.bias_quant(self.bias, quant_input, quant_weight).int().to(torch.int64)


class Int8Conv2d(PaddedConv, _Int8Layer, QuantConv2d):
    def __init__(self, precision, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = False) -> None:
        require_weights(type(self).__name__, precision, "int8")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                         **QUANTIZERS)
        self.precision = precision


class Int8Linear(_Int8Layer, QuantLinear):
    def __init__(self, precision, in_features: int, out_features: int, bias: bool = False) -> None:
        require_weights(type(self).__name__, precision, "int8")
        super().__init__(in_features, out_features, bias=bias, **QUANTIZERS)
        self.precision = precision
