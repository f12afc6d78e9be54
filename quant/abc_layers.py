"""ABC-Net layers (Lin, Zhao & Pan 2017): M binary weight bases and N binary activation bases.

weights:  B_i = sign(W - mean(W) + u_i * std(W)) in {-1, +1} (sign(0) = +1), i = 0..M-1, shifts u_i evenly
          spread over [-1, 1] (u = 0 for M = 1); mean and std (population) over the whole layer. Coefficients
          alpha (M float32) fit W ~ sum_i alpha_i B_i by least squares (exact normal equations, detached; see
          weight_stats: torch.linalg.lstsq is not bit-reproducible), recomputed every forward. Mean, std and
          alpha are computed deterministically. Straight-through estimator: dL/dW = sum_i dL/dB_i (no clipping).
inputs:   H_n(x) = +1 where clip(x + v_n, 0, 1) >= 0.5, else -1 (n = 0..N-1), i.e. +1 where the float32 sum
          x + v_n reaches 0.5. Learnable shifts v_n start at 0.5 - t_n, thresholds t_n evenly spread over [-1, 1]
          (t = 0 for N = 1: the sign of a batch-normalised input); learnable coefficients beta_n start at
          1 / (N - 1) (1 for N = 1), which makes sum_n beta_n H_n(x) a staircase approximation of x on [-1, 1].
          Gradient: the clip's (1 where 0 <= x + v_n <= 1), to both x and v_n.
coefficients: the M x N products c_in = alpha_i * beta_n (float32) in fixed point: one power-of-two scale
          2^e for the layer, e the smallest integer with max |c| <= 127 * 2^e, and int8 codes
          q_in = round_half_even(c_in / 2^e) in [-127, 127] (hbnn's change to ABC-Net, so that hardware can
          match it: the layer's output is then one integer combination of its M x N partial sums). Training
          uses q * 2^e with c's gradient (straight-through), so beta learns through the rounding.
output:   2^e * sum_i sum_n q_in * conv(H_n(x), B_i) (+ bias).
padding:  AbcConv2d pads each activation base H_n with +1, like a binary conv (input_pad_code = 1, see
          exact_ops.PaddedConv): hardware streams H_n one bit per element.

Eval: every P_ni = conv(H_n, B_i) is an exact integer (computed in float64) and so is the accumulator
acc = sum_i sum_n q_in * P_ni (int64); then, as for an int8 layer,

    out = f32(float64(acc) * 2^e)           # exact (one rounding only where |acc| >= 2^24)
    out = out + bias                        # float32, only with bias

Custom torch code: Brevitas has no multi-basis quantizer.
"""

from __future__ import annotations

import torch
from torch import nn

from .exact_ops import (PaddedConv, channel_dim, exact_weighted_sum, integer_weighted_sum, per_channel,
                        require_eval, require_weights, straight_through, weighted_sum)
from .weight_stats import deterministic_mean, deterministic_std, least_squares_coefficients

__all__ = ["AbcConv2d", "AbcLinear", "coefficient_codes", "evenly_spread"]

COEFFICIENT_CODE_MAX = 127  # the M x N coefficient codes are int8, symmetric: [-127, 127]
ACT_THRESHOLD = 0.5  # H_n = +1 where clip(x + v_n, 0, 1) >= ACT_THRESHOLD (ABC-Net; like sign(0) = +1)


def evenly_spread(count: int) -> torch.Tensor:
    """count float32 values evenly spread over [-1, 1]; [0.] for count == 1."""
    return torch.linspace(-1.0, 1.0, count) if count > 1 else torch.zeros(1)


class _AbcLayer:
    """Parameters, forward, integer inference and weight codes shared by AbcConv2d and AbcLinear."""

    def _init_bases(self, precision) -> None:
        require_weights(type(self).__name__, precision, "abc")
        self.precision = precision
        weight_bases, act_bases = precision.weight_bases, precision.act_bases
        # Fixed by M alone, so not saved in the state dict.
        self.register_buffer("weight_shifts", evenly_spread(weight_bases), persistent=False)
        self.activation_shifts = nn.Parameter(ACT_THRESHOLD - evenly_spread(act_bases))
        self.activation_coefficients = nn.Parameter(torch.full((act_bases,), 1.0 / max(act_bases - 1, 1)))

    def weight_bases(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(bases (M, *weight.shape) in {-1, +1} carrying W's straight-through gradient, alpha (M,) float32)."""
        latent = self.weight.detach()
        # Deterministic statistics: the bases and alpha must not depend on thread count (see weight_stats).
        mean, std = deterministic_mean(latent), deterministic_std(latent)
        shifts = (self.weight_shifts * std).view(-1, *[1] * latent.dim())
        shifted = (self.weight - mean).unsqueeze(0) + shifts
        hard = torch.where(shifted.detach() >= 0, 1.0, -1.0)
        return straight_through(hard, shifted), least_squares_coefficients(hard, latent)

    def activation_soft(self, x: torch.Tensor) -> torch.Tensor:
        """clip(x + v_n, 0, 1) for every n, stacked (N, *x.shape)."""
        shifts = self.activation_shifts.view(-1, *[1] * x.dim())
        return torch.clamp(x.unsqueeze(0) + shifts, 0.0, 1.0)

    def coefficient_codes(self, alpha: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
        """(int64 codes (M, N) in [-127, 127], exponent e): alpha_i * beta_n ~ codes[i, n] * 2^e (module doc)."""
        if alpha is None:
            alpha = self.weight_bases()[1]
        with torch.no_grad():
            return coefficient_codes(alpha.detach()[:, None] * self.activation_coefficients.detach()[None, :])

    def coefficients(self, alpha: torch.Tensor) -> torch.Tensor:
        """alpha_i * beta_n in fixed point (M, N) float32: codes * 2^e, carrying c's gradient to beta."""
        soft = alpha.detach()[:, None] * self.activation_coefficients[None, :]
        codes, exponent = coefficient_codes(soft.detach())
        return straight_through(codes.to(torch.float32) * 2.0 ** exponent, soft)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        soft = self.activation_soft(x)
        activations = straight_through(torch.where(soft.detach() >= ACT_THRESHOLD, 1.0, -1.0), soft)
        bases, alpha = self.weight_bases()
        stacked = bases.flatten(0, 1)  # (M * C_out, ...): basis i is output channels [i*C_out, (i+1)*C_out)
        if not self.training:
            codes, exponent = self.coefficient_codes(alpha)
            sums = [exact_weighted_sum(self, a, stacked).to(torch.int64) for a in activations]
            return self._exact_output(sums, codes, exponent)
        coefficients = self.coefficients(alpha)
        parts = [s.chunk(len(alpha), dim=channel_dim(self)) for s in (weighted_sum(self, a, stacked)
                                                                       for a in activations)]
        out = sum(coefficients[i, n] * parts[n][i] for i in range(len(alpha)) for n in range(len(activations)))
        return out if self.bias is None else out + per_channel(self, self.bias)

    def _exact_output(self, sums: list[torch.Tensor], codes: torch.Tensor, exponent: int) -> torch.Tensor:
        """f32(float64(sum_i sum_n codes[i, n] * P_ni) * 2^e) (+ bias), from the int64 partial sums."""
        parts = [s.chunk(codes.shape[0], dim=channel_dim(self)) for s in sums]  # parts[n][i] = P_ni
        acc = sum(int(codes[i, n]) * parts[n][i] for i in range(codes.shape[0]) for n in range(codes.shape[1]))
        out = (acc.double() * 2.0 ** exponent).to(torch.float32)  # exact product, one rounding
        return out if self.bias is None else out + per_channel(self, self.bias)

    def quantized_weight_codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(int8 codes (M, *weight.shape) in {-1, +1}, alpha (M,) float32)."""
        with torch.no_grad():
            bases, alpha = self.weight_bases()
            return bases.to(torch.int8), alpha

    def activation_codes(self, x: torch.Tensor) -> torch.Tensor:
        """int64 codes (N, *x.shape) in {-1, +1} of the N activation bases."""
        with torch.no_grad():
            return torch.where(self.activation_soft(x) >= ACT_THRESHOLD, 1, -1).to(torch.int64)

    def integer_inference(self, x: torch.Tensor) -> torch.Tensor:
        require_eval(self)
        with torch.no_grad():
            w_codes, alpha = self.quantized_weight_codes()
            codes, exponent = self.coefficient_codes(alpha)
            stacked = w_codes.flatten(0, 1)
            sums = [integer_weighted_sum(self, a, stacked) for a in self.activation_codes(x)]
            return self._exact_output(sums, codes, exponent)


def coefficient_codes(coefficients: torch.Tensor) -> tuple[torch.Tensor, int]:
    """float32 coefficients -> (int64 codes in [-127, 127], exponent e) with coefficients ~ codes * 2^e: e the
    smallest integer with max |c| <= 127 * 2^e (exact: frexp, no log2 rounding), codes round half to even
    (c / 2^e is exact). All-zero coefficients: codes 0, e = 0."""
    largest = coefficients.abs().max()
    if not torch.isfinite(largest):
        raise ValueError(f"ABC-Net coefficients must be finite, got {coefficients.tolist()}")
    if largest == 0:
        return torch.zeros(coefficients.shape, dtype=torch.int64), 0
    mantissa, power = torch.frexp(largest)  # largest = mantissa * 2^power, mantissa in [0.5, 1)
    exponent = int(power) - 7  # largest / 2^exponent = 128 * mantissa in [64, 128)
    if 128 * float(mantissa) > COEFFICIENT_CODE_MAX:
        exponent += 1
    codes = torch.round(coefficients * 2.0 ** -exponent)  # exact scaling, then half to even
    return codes.clamp(-COEFFICIENT_CODE_MAX, COEFFICIENT_CODE_MAX).to(torch.int64), exponent


class AbcConv2d(PaddedConv, _AbcLayer, nn.Conv2d):
    def __init__(self, precision, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = False) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self._init_bases(precision)


class AbcLinear(_AbcLayer, nn.Linear):
    def __init__(self, precision, in_features: int, out_features: int, bias: bool = False) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_bases(precision)
