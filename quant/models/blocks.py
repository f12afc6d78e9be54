"""Building blocks shared by the zoo: conv-BN-activation units, the activation/dropout rules for what feeds a
layer that binarizes its input, and feature-map sizes. Conv/linear layers come from precision.conv2d/linear, which
tag each with its `.precision`."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..activation_quant import Int8Activation
from ..layers import ExactBatchNorm1d, ExactBatchNorm2d
from ..pooling import ExactAvgPool2d
from ..precision import Precision, conv2d, linear
from .precision_names import takes_signs

__all__ = [
    "activation_for", "conv_bn_act", "conv_bn_act_parts", "conv_output_size", "dropout_for", "global_average_pool",
    "halved_size", "linear_bn_act_parts", "pool_quant_for",
]


def activation_for(*consumers: Precision) -> nn.Module:
    """The activation in front of the given consumer layers.

    A layer whose inputs are binary/abc takes the sign of its input itself (sign(0) = +1); after a ReLU every
    sign would be +1. So if any consumer binarizes, batch-norm output goes to it unchanged (Identity) and the
    consumer's own quantizer acts as the activation; full-precision consumers accept the signed values too.
    """
    return nn.Identity() if any(takes_signs(consumer) for consumer in consumers) else nn.ReLU()


def dropout_for(probability: float, *consumers: Precision) -> nn.Module:
    """Dropout in front of the given consumers, or Identity where it would be meaningless or harmful.

    In front of a sign, a dropped value (0) becomes +1, not "no contribution", and training would see a
    different input distribution than evaluation; such consumers get no dropout.
    """
    if probability == 0.0 or any(takes_signs(consumer) for consumer in consumers):
        return nn.Identity()
    return nn.Dropout(probability)


def conv_bn_act_parts(precision: Precision, in_channels: int, out_channels: int, kernel_size: int, *,
                      stride: int = 1, padding: int = 0, activation: nn.Module, bn_eps: float = 1e-5,
                      suffix: str = "") -> dict[str, nn.Module]:
    """{conv, bn, act}+suffix: conv -> ExactBatchNorm2d -> activation, for a flat nn.Sequential("conv1", ...)."""
    return {
        f"conv{suffix}": conv2d(precision, in_channels, out_channels, kernel_size, stride=stride, padding=padding),
        f"bn{suffix}": ExactBatchNorm2d(out_channels, eps=bn_eps),
        f"act{suffix}": activation,
    }


def linear_bn_act_parts(precision: Precision, in_features: int, out_features: int, *, activation: nn.Module,
                        bn_eps: float = 1e-5, suffix: str = "") -> dict[str, nn.Module]:
    """{fc, bn, act}+suffix: linear -> ExactBatchNorm1d -> activation."""
    return {
        f"fc{suffix}": linear(precision, in_features, out_features),
        f"bn{suffix}": ExactBatchNorm1d(out_features, eps=bn_eps),
        f"act{suffix}": activation,
    }


def conv_bn_act(precision: Precision, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                padding: int = 0, activation: nn.Module, bn_eps: float = 1e-5) -> nn.Sequential:
    """conv -> ExactBatchNorm2d -> activation as one unit, children named conv, bn, act."""
    return nn.Sequential(OrderedDict(conv_bn_act_parts(precision, in_channels, out_channels, kernel_size,
                                                       stride=stride, padding=padding, activation=activation,
                                                       bn_eps=bn_eps)))


def global_average_pool(map_size: int) -> nn.Module:
    """(N, C, map_size, map_size) -> (N, C, 1, 1): the mean over the whole final feature map.

    An ExactAvgPool2d over the known map size rather than AdaptiveAvgPool2d: its eval output is a fixed float64
    window sum and one division, which the compiler can reproduce when the inputs are quantized (pool_quant_for).
    """
    return ExactAvgPool2d(map_size)


def pool_quant_for(reader: Precision) -> Int8Activation | None:
    """The quantizer in front of a global average pool over float activations (batch-norm/ReLU outputs), given
    the precision of the layer that reads the pool's output; None where the pool stays as it is.

    ExactAvgPool2d is exact in hardware only on integer codes times one power of two. A reader with int8 inputs
    gets Int8Activation in front of the pool: hardware then sums int8 codes. A float reader (the paper baseline)
    claims no integer form, so its model is left unchanged. Binary and abc readers get None too: they take signs
    of the float average, a pool the integer contract does not cover yet.
    """
    return Int8Activation() if reader.inputs == "int8" else None


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial size after a conv or pool (floor mode), as torch computes it."""
    return (size + 2 * padding - kernel_size) // stride + 1


def halved_size(size: int, times: int) -> int:
    """Spatial size after `times` stride-2 3x3 steps with padding 1 (convs or pools): 32 -> 16 -> 8, 28 -> 14 -> 7."""
    for _ in range(times):
        size = conv_output_size(size, 3, stride=2, padding=1)
    return size
