"""Activation quantizers that stand on their own, outside a conv/linear layer, where later arithmetic needs
integer codes: the zoo puts Int8Activation in front of a global average pool that an int8 layer reads
(ExactAvgPool2d is exact only on integer codes times one power of two)."""

from __future__ import annotations

import torch
from brevitas.nn import QuantIdentity

from .exact_ops import require_eval
from .input_codes import INPUT_QUANTIZERS, input_codes

__all__ = ["Int8Activation"]


class Int8Activation(QuantIdentity):
    """x -> int8 codes times a learned power-of-two scale, returned as a plain float32 tensor.

    The int8 layers' own input quantizer (INPUT_QUANTIZERS["int8"], Brevitas Int8ActPerTensorFixedPoint):
    codes = clamp(round_half_even(x / s), -128, 127), s a learned power of two (from input statistics during
    training, a constant in eval mode). Straight-through gradient as Brevitas gives it.
    """

    def __init__(self) -> None:
        super().__init__(act_quant=INPUT_QUANTIZERS["int8"], return_quant_tensor=False)

    def codes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(int64 codes in [-128, 127], 0-d float32 power-of-two scale s) with codes * s == self(x) exactly, in
        eval mode (in training mode every call moves the scale's statistics)."""
        require_eval(self, "codes")
        with torch.no_grad():
            return input_codes("int8", self.act_quant, x)
