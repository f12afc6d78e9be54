"""Arithmetic shared by the quantized layers: the layer's conv/matmul in float32 (training), in float64 (eval,
exact) and on integer codes (int64), the code a conv pads its input with, per-channel broadcasting, the
straight-through estimator, and the checks every quantized layer makes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from brevitas.quant_tensor import QuantTensor
from torch import nn

from .input_codes import input_codes

__all__ = [
    "BIPOLAR_INPUTS", "FLOAT64_EXACT_LIMIT", "PaddedConv", "channel_dim", "exact_weighted_sum", "integer_weighted_sum",
    "per_channel", "require_eval", "require_weights", "scale_and_bias", "straight_through", "value_of", "weighted_sum",
]

# Every integer of magnitude below 2^53 is a float64, so integer-valued float64 sums below it are exact.
FLOAT64_EXACT_LIMIT = 2 ** 53

# Input kinds quantized to +-1 codes (binary, and each of ABC-Net's activation bases). Hardware streams one bit
# per such element, which cannot carry the code 0.
BIPOLAR_INPUTS = frozenset({"binary", "abc"})


class PaddedConv:
    """Mixin of the quantized conv layers: the input code their padding adds.

    A conv whose input codes are +-1 pads them with +1, as Larq's pad_values=1.0 does (the sign of a zero input,
    sign(0) = +1): hardware streams one bit per element and has no code 0. The other input kinds pad with code 0,
    the value 0 (zero padding). weighted_sum pads the quantized input with it, so the training forward, the eval
    forward and integer_inference agree.
    """

    @property
    def input_pad_code(self) -> int:
        """The integer code each padded input element holds: +1 for binary/abc inputs, else 0."""
        return 1 if self.precision.inputs in BIPOLAR_INPUTS else 0


def weighted_sum(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The layer's linear op without bias, in x's dtype: conv2d with the layer's stride/padding, or a matmul.

    x is the quantized input (values or codes); a conv pads it with the code layer.input_pad_code. A nonzero code
    only pads +-1 inputs, whose values are their codes (scale 1); it is padded explicitly (F.pad with a constant,
    which passes the gradient on to the unpadded elements), then the conv runs without padding of its own.
    """
    if isinstance(layer, nn.Conv2d):
        padding = layer.padding
        pad_code = layer.input_pad_code
        if pad_code != 0 and any(padding):
            height, width = padding
            x, padding = F.pad(x, (width, width, height, height), value=float(pad_code)), 0
        return F.conv2d(x, weight, None, layer.stride, padding, layer.dilation, layer.groups)
    return F.linear(x, weight)


def exact_weighted_sum(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """weighted_sum in float64.

    When x and weight are integers times powers of two (quantized values) every product is exact in float64, and
    so is every partial sum below 2^53 units of the smallest product: the result is the exact sum whatever order
    (or FMA use) the kernel adds in. float32 cannot promise that past 2^24, and may be demoted on CPU by
    torch.set_float32_matmul_precision; float64 never is.
    """
    return weighted_sum(layer, x.double(), weight.double())


def integer_weighted_sum(layer: nn.Module, x_codes: torch.Tensor, weight_codes: torch.Tensor) -> torch.Tensor:
    """weighted_sum of integer codes as an int64 tensor (computed in float64, exact below 2^53, checked)."""
    fan_in = weight_codes[0].numel()
    bound = int(x_codes.abs().max()) * int(weight_codes.abs().max()) * fan_in if x_codes.numel() else 0
    if bound >= FLOAT64_EXACT_LIMIT:
        raise ValueError(f"{type(layer).__name__}: integer accumulations up to {bound} reach 2^53, beyond exact "
                         "float64 arithmetic")
    return weighted_sum(layer, x_codes.double(), weight_codes.double()).to(torch.int64)


def channel_dim(layer: nn.Module) -> int:
    """The output-channel axis: 1 for a conv's (N, C, H, W), the last for a linear's (..., C)."""
    return 1 if isinstance(layer, nn.Conv2d) else -1


def per_channel(layer: nn.Module, values: torch.Tensor) -> torch.Tensor:
    """A per-output-channel vector (C,) shaped to broadcast over the layer's output."""
    return values.view(-1, 1, 1) if isinstance(layer, nn.Conv2d) else values


def scale_and_bias(layer: nn.Module, out: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
    """out * alpha_c (if alpha), then + bias_c (if the layer has one): two float32 ops in this fixed order."""
    if alpha is not None:
        out = out * per_channel(layer, alpha)
    if layer.bias is not None:
        out = out + per_channel(layer, layer.bias)
    return out


def scaled_weight_inference(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Integer form shared by layers whose weights are small integer codes times an optional per-channel scale
    (binary, ternary): exact integer conv, times the input's power-of-two scale (one rounding), then alpha, bias."""
    require_eval(layer)
    with torch.no_grad():
        x_codes, x_scale = input_codes(layer.precision.inputs, layer.input_quant, x)
        w_codes, w_scale = layer.quantized_weight_codes()
        accumulator = integer_weighted_sum(layer, x_codes, w_codes)
        out = (accumulator.double() * x_scale.double()).to(torch.float32)  # s_x a power of two: one rounding
        return scale_and_bias(layer, out, w_scale if layer.precision.weight_scale else None)


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """hard in the forward pass, soft's gradient in the backward pass.

    Written as hard + (soft - soft.detach()): soft - soft.detach() is exactly +0 for finite soft, so the forward
    value is bit-for-bit `hard` (soft + (hard - soft) would round).
    """
    return hard + (soft - soft.detach())


def value_of(t: torch.Tensor | QuantTensor) -> torch.Tensor:
    """The float tensor a Brevitas QuantTensor stands for (plain tensors pass through)."""
    return t.value if isinstance(t, QuantTensor) else t


def require_eval(layer: nn.Module, method: str = "integer_inference") -> None:
    """integer_inference (or `method`) reproduces the eval-mode forward; in training mode the quantizers still
    move."""
    if layer.training:
        raise RuntimeError(f"{type(layer).__name__}.{method} reproduces the eval-mode output; call .eval() first")


def require_weights(layer_name: str, precision, weights: str) -> None:
    """A layer class implements one weight kind; the factories pick it by Precision.weights."""
    if precision.weights != weights:
        raise ValueError(f"{layer_name} implements weights={weights!r}, not precision {precision.name!r} "
                         f"(weights={precision.weights!r})")
