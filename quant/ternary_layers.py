"""Ternary-weight layers (Ternary Weight Networks, Li & Liu 2016) with int8 inputs.

weights: t = sign(W) where |W| > delta, else 0, delta = 0.7 * mean|W| over the whole layer (recomputed every
         forward, no gradient); straight-through estimator to W. delta and alpha use deterministic sums
         (weight_stats), so their bits do not depend on the thread count. With weight_scale: TWN's per-output-channel
         alpha_c = mean of |W_c| over the channel's nonzero codes (0 if none), a float32 multiply after the conv;
         the gradient reaches W through alpha.
input:   int8 (Brevitas Int8ActPerTensorFixedPoint, power-of-two scale s_x).

Eval:  y = float32(float64_conv(x_q, t))   # = codes_x (*) t times s_x, rounded once
       y = y * alpha_c                     # float32, only with weight_scale
       y = y + bias_c                      # float32, only with bias

Custom rather than Brevitas for the weights: Brevitas' SignedTernaryWeightPerTensorConst rounds W / scale with a
constant scale (threshold scale/2, whatever the weights), not TWN's data-dependent 0.7 * mean|W| threshold.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantIdentity
from torch import nn

from .exact_ops import (PaddedConv, exact_weighted_sum, require_weights, scale_and_bias, scaled_weight_inference,
                        straight_through, value_of, weighted_sum)
from .input_codes import INPUT_QUANTIZERS
from .weight_stats import deterministic_mean, deterministic_sum

__all__ = ["TernaryConv2d", "TernaryLinear", "TWN_THRESHOLD_FACTOR"]

TWN_THRESHOLD_FACTOR = 0.7  # TWN's approximation of the optimal threshold for roughly normal weights


class _TernaryLayer:
    """Quantizers, forward, integer inference and weight codes shared by TernaryConv2d and TernaryLinear."""

    def _init_quantizers(self, precision) -> None:
        require_weights(type(self).__name__, precision, "ternary")
        self.precision = precision
        self.input_quant = QuantIdentity(act_quant=INPUT_QUANTIZERS[precision.inputs], return_quant_tensor=True)

    def ternary_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(ternary weights in {-1, 0, +1} carrying W's straight-through gradient, alpha per channel or None)."""
        weight = self.weight
        # Deterministic sums: delta and alpha must not depend on thread count (see weight_stats).
        delta = TWN_THRESHOLD_FACTOR * deterministic_mean(weight.detach().abs())
        hard = torch.where(weight.detach().abs() > delta, torch.sign(weight.detach()), 0.0)
        alpha = None
        if self.precision.weight_scale:
            kept = (hard != 0).flatten(1)
            kept_magnitudes, counts = weight.abs().flatten(1) * kept, kept.sum(1).clamp(min=1)
            value = (deterministic_sum(kept_magnitudes, dim=1) / counts).to(torch.float32)
            alpha = straight_through(value, kept_magnitudes.sum(1) / counts)
        return straight_through(hard, weight), alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = value_of(self.input_quant(x))
        weight, alpha = self.ternary_weight()
        if self.training:
            out = weighted_sum(self, x, weight)
        else:
            out = exact_weighted_sum(self, x, weight).to(torch.float32)
        return scale_and_bias(self, out, alpha)

    def quantized_weight_codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(int8 codes in {-1, 0, +1}, alpha per output channel, or a 0-d 1.0 without weight_scale)."""
        with torch.no_grad():
            weight, alpha = self.ternary_weight()
            return weight.to(torch.int8), torch.ones((), dtype=torch.float32) if alpha is None else alpha

    def integer_inference(self, x: torch.Tensor) -> torch.Tensor:
        return scaled_weight_inference(self, x)


class TernaryConv2d(PaddedConv, _TernaryLayer, nn.Conv2d):
    def __init__(self, precision, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = False) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self._init_quantizers(precision)


class TernaryLinear(_TernaryLayer, nn.Linear):
    def __init__(self, precision, in_features: int, out_features: int, bias: bool = False) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_quantizers(precision)
