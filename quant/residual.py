"""The residual sum, made integer: both addends quantized by one shared int8 quantizer, then added; and the CIFAR
ResNets' parameter-free shortcut (ZeroPadShortcut), which hardware maps exactly because quantizing 0.0 gives 0.

A float sum of two batch-norm outputs, sign(bn_a(acc_a) + bn_b(acc_b)), depends on two integers, and no threshold
on one accumulator reproduces it in hardware. Here each addend becomes int8 codes times one learned power-of-two
scale s (the same Int8Activation instance for both, so the same s, as FINN's residual networks share a
QuantIdentity), so the sum is (codes_a + codes_b) * s, exact in float32: an integer add in hardware, and whatever
reads the sum (an activation, a sign, an int8 quantizer) is a threshold on that integer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activation_quant import Int8Activation

__all__ = ["QuantAdd", "ZeroPadShortcut"]


class QuantAdd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = Int8Activation()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.quant(a) + self.quant(b)


class ZeroPadShortcut(nn.Module):
    """He et al.'s option A: keep every `stride`-th pixel, zero-pad the added channels (half before the old ones,
    half after). No parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        added = out_channels - in_channels
        self.pad_before, self.pad_after = added // 2, added - added // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_before, self.pad_after))
