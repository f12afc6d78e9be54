"""Binary-weight layers ("weight-binary" with int8 inputs, "binary" with sign inputs): Brevitas QuantConv2d /
QuantLinear with +-1 weights, and XNOR-Net's optional per-output-channel scale applied after the conv.

weights: BinaryWeight, sign(W) in {-1, +1} (sign(0) = +1, straight-through estimator, latent W clamped in place
         to [-1, 1]). With weight_scale: alpha_c = mean |clamp(W_c, -1, 1)| per output channel (a deterministic
         mean, see weight_stats), as a separate float32 multiply after the conv (folding it into the weights
         would make the conv inexact); the gradient reaches W through alpha as in XNOR-Net.
input:   int8 (Int8ActPerTensorFixedPoint, power-of-two scale s_x) or binary (BinaryAct: clamp to [-1, 1], sign,
         clipped straight-through gradient; s_x = 1).
padding: BinaryConv2d pads binary input codes with +1, int8 ones with 0 (input_pad_code, see exact_ops.PaddedConv).

Eval:  y = float32(float64_conv(x_q, sign(W)))   # = codes_x (*) +-1 times s_x, rounded once
       y = y * alpha_c                           # float32, only with weight_scale
       y = y + bias_c                            # float32, only with bias
Brevitas provides the quantizers; the conv itself is overridden (inner_forward_impl) because Brevitas would
multiply by alpha nowhere and sum in float32.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantConv2d, QuantLinear

from .exact_ops import (PaddedConv, exact_weighted_sum, require_weights, scale_and_bias, scaled_weight_inference,
                        value_of, weighted_sum)
from .input_codes import INPUT_QUANTIZERS
from .layers import BinaryWeight
from .weight_stats import deterministic_mean

__all__ = ["BinaryConv2d", "BinaryLinear"]


class _BinaryLayer:
    """Forward, integer inference and weight codes shared by BinaryConv2d and BinaryLinear."""

    def weight_alpha(self) -> torch.Tensor | None:
        """XNOR-Net's per-output-channel scale mean|W_c| over the clipped latent weights (None without scale)."""
        if not self.precision.weight_scale:
            return None
        # A deterministic mean: alpha's bits must not depend on thread count (see weight_stats).
        return deterministic_mean(self.weight.clamp(-1.0, 1.0).abs().flatten(1), dim=1)

    def inner_forward_impl(self, x, quant_weight, quant_bias):
        x, signs = value_of(x), value_of(quant_weight)
        if self.training:
            out = weighted_sum(self, x, signs)
        else:
            out = exact_weighted_sum(self, x, signs).to(torch.float32)
        return scale_and_bias(self, out, self.weight_alpha())

    def quantized_weight_codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(int8 codes in {-1, +1}, alpha per output channel, or a 0-d 1.0 without weight_scale)."""
        with torch.no_grad():
            codes = value_of(self.quant_weight()).to(torch.int8)  # BinaryWeight's scale is exactly 1
            alpha = self.weight_alpha()
            return codes, torch.ones((), dtype=torch.float32) if alpha is None else alpha

    def integer_inference(self, x: torch.Tensor) -> torch.Tensor:
        return scaled_weight_inference(self, x)


def _quantizers(precision) -> dict:
    if precision.inputs not in ("int8", "binary"):
        raise ValueError(f"binary-weight layers take int8 or binary inputs, not precision {precision.name!r}")
    return dict(weight_quant=BinaryWeight, input_quant=INPUT_QUANTIZERS[precision.inputs], return_quant_tensor=False)


class BinaryConv2d(PaddedConv, _BinaryLayer, QuantConv2d):
    def __init__(self, precision, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = False) -> None:
        require_weights(type(self).__name__, precision, "binary")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                         **_quantizers(precision))
        self.precision = precision


class BinaryLinear(_BinaryLayer, QuantLinear):
    def __init__(self, precision, in_features: int, out_features: int, bias: bool = False) -> None:
        require_weights(type(self).__name__, precision, "binary")
        super().__init__(in_features, out_features, bias=bias, **_quantizers(precision))
        self.precision = precision
