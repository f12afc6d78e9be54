"""Pooling whose eval output hardware can reproduce.

Max-pool needs nothing: it selects one of its inputs, no arithmetic, so torch.nn.MaxPool2d is exact as is (on
+-1 inputs it is an OR of the bits). Average pooling sums and divides; ExactAvgPool2d fixes how.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ExactAvgPool2d", "integer_avg_pool2d"]


class ExactAvgPool2d(nn.AvgPool2d):
    """AvgPool2d (no padding, floor mode) whose eval output is

        float32( float64(window sum) / (kh * kw) )

    i.e. the window sum taken exactly in float64, one IEEE float64 division by the window area, one rounding to
    float32 (numpy: `np.float32(window_sum_f64 / area)`). The float64 sum is exact, whatever order torch adds in,
    when the inputs are integers times one power of two (quantized activations: int8 codes * s, +-1, or
    accumulators before any float scale) and the sum stays below 2^53 of that unit; hardware then sums the integer
    codes and divides once. Training mode is torch's AvgPool2d.
    """

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        super().__init__(kernel_size, stride=stride, padding=0, ceil_mode=False, count_include_pad=True)

    @property
    def area(self) -> int:
        size = self.kernel_size
        height, width = (size, size) if isinstance(size, int) else size
        return height * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        return (self.window_sum(x.double()) / self.area).to(x.dtype)

    def window_sum(self, x: torch.Tensor) -> torch.Tensor:
        """The sum over each window, in x's dtype (divisor_override=1 turns the average into the plain sum)."""
        return F.avg_pool2d(x, self.kernel_size, self.stride, padding=0, divisor_override=1)

    def integer_inference(self, codes: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
        """The eval output for input codes * scale (integer codes, scale a power of two): int64 window sums, then
        float32(float64(sum) * scale / area)."""
        sums = self.window_sum(codes.double()).to(torch.int64)  # integer-valued float64 sums are exact below 2^53
        return (sums.double() * float(scale) / self.area).to(torch.float32)


def integer_avg_pool2d(kernel_size: int, stride: int | None = None) -> ExactAvgPool2d:
    """Average pooling with a fixed, reproducible eval form (see ExactAvgPool2d); max-pool is exact as is."""
    return ExactAvgPool2d(kernel_size, stride)
