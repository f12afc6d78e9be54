"""The float baseline: plain nn.Conv2d / nn.Linear tagged with their Precision; no integer form exists."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FloatConv2d", "FloatLinear"]


class _FloatLayer:
    def _no_integer_form(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} (precision {self.precision.name!r}) is the float baseline "
                                  "and has no integer form; use a quantized precision such as 'int8'")

    def integer_inference(self, x: torch.Tensor) -> torch.Tensor:
        self._no_integer_form()

    def quantized_weight_codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._no_integer_form()


class FloatConv2d(_FloatLayer, nn.Conv2d):
    def __init__(self, precision, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.precision = precision


class FloatLinear(_FloatLayer, nn.Linear):
    def __init__(self, precision, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.precision = precision
