"""BinaryMLP: a fully binary multilayer perceptron whose outputs are integer logits."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from brevitas.nn import QuantLinear

from .layers import ExactBatchNorm1d, binary_activation, binary_linear
from .precision import BINARY
from .validation import check_positive_int

__all__ = ["BinaryMLP"]

KIND = "binary_mlp"


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise ValueError(f"sizes must be a sequence of layer widths such as (64, 128, 128, 10), got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least 2 entries (input width, classes), got {list(sizes)!r}")
    return tuple(check_positive_int(f"sizes[{position}]", size) for position, size in enumerate(sizes))


def _check_threshold(threshold: float) -> float:
    try:
        if isinstance(threshold, bool):
            raise TypeError
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"input_threshold must be a number in [0, 1], got {threshold!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"input_threshold must be in [0, 1] (pixels are scaled to [0, 1]), got {threshold!r}")
    return value


class BinaryMLP(nn.Module):
    """Binary MLP: pixels -> +-1 bits -> [binary_linear, ExactBatchNorm1d, sign] per hidden layer -> binary_linear.

    sizes = (input width, hidden widths..., classes). With +-1 inputs and +-1 weights every output is an integer
    (a sum of +-1 products), so forward() returns integer-valued float tensors; their argmax is the prediction.
    """

    input_layout = "flat"  # hbnn.quant.train feeds (N, features) pixels, not (N, C, H, W) images

    def __init__(self, sizes: Sequence[int], input_threshold: float = 0.5) -> None:
        super().__init__()
        self.sizes = _check_sizes(sizes)
        self.input_threshold = _check_threshold(input_threshold)

        layers: list[nn.Module] = []
        for width_in, width_out in zip(self.sizes[:-2], self.sizes[1:-1]):
            layers += [binary_linear(width_in, width_out), ExactBatchNorm1d(width_out), binary_activation()]
        # No batch-norm after the last layer: its raw integer sums are the logits the hardware compares.
        layers.append(binary_linear(self.sizes[-2], self.sizes[-1]))
        self.layers = nn.Sequential(*layers)
        for layer in self.layers:
            if isinstance(layer, QuantLinear):  # binary weights, sign inputs (pixels are thresholded): for metrics
                layer.precision = BINARY

        # Only the training loss uses this: integer logits of size ~sqrt(width) saturate softmax. A positive scale
        # does not change the argmax, so the hardware ignores it.
        self.logit_scale = nn.Parameter(torch.tensor(float(1 / math.sqrt(self.sizes[-2]))))

    def binarize_input(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels (N, in) in [0, 1] -> float32 +1/-1 tensor, +1 where x >= input_threshold (compared in x's dtype)."""
        if x.dim() != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"BinaryMLP expects input of shape (N, {self.sizes[0]}), got {tuple(x.shape)}")
        ones = torch.ones((), dtype=torch.float32, device=x.device)
        return torch.where(x >= self.input_threshold, ones, -ones)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.binarize_input(x))

    def config(self) -> dict[str, Any]:
        """JSON-able description from which from_config() rebuilds the same architecture."""
        return {"kind": KIND, "sizes": list(self.sizes), "input_threshold": self.input_threshold}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "BinaryMLP":
        if not isinstance(config, Mapping):
            raise ValueError(f"model config must be a dict, got {type(config).__name__}")
        if config.get("kind") != KIND:
            raise ValueError(f"unknown model kind {config.get('kind')!r} (expected {KIND!r})")
        unknown = set(config) - {"kind", "sizes", "input_threshold"}
        if unknown:
            raise ValueError(f"unknown keys in {KIND} config: {sorted(unknown)}")
        if "sizes" not in config:
            raise ValueError(f"{KIND} config lacks 'sizes'")
        return cls(config["sizes"], config.get("input_threshold", 0.5))
