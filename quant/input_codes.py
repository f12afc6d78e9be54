"""Input quantizers for the int8 and binary input kinds, and the integer codes (+ scale) they stand for."""

from __future__ import annotations

import torch
from brevitas.quant.fixed_point import Int8ActPerTensorFixedPoint

from .layers import BinaryAct

__all__ = ["INPUT_QUANTIZERS", "INT8_MAX", "INT8_MIN", "input_codes"]

# Brevitas quantizers per Precision.inputs kind. Int8ActPerTensorFixedPoint: signed, not narrow ([-128, 127]),
# round half to even, scale a learned power of two (initialised from input statistics during training).
INPUT_QUANTIZERS = {"int8": Int8ActPerTensorFixedPoint, "binary": BinaryAct}
INT8_MIN, INT8_MAX = -128, 127


def input_codes(kind: str, quantizer: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x -> (int64 codes, float32 scale) with quantizer(x).value == codes * scale, for an eval-mode quantizer.

    int8: codes = clamp(round_half_even(x / s), -128, 127), s the quantizer's power-of-two scale (in eval mode a
    learned constant, not a function of x; x / s is exact). binary: codes = +1 where clamp(x, -1, 1) >= 0 (so
    sign(0) = +1), else -1, scale 1.
    """
    if kind == "int8":
        scale = quantizer(x).scale.detach().reshape(())
        return torch.clamp(torch.round(x / scale), INT8_MIN, INT8_MAX).to(torch.int64), scale
    if kind == "binary":
        codes = torch.where(torch.clamp(x, -1.0, 1.0) >= 0, 1, -1).to(torch.int64)
        return codes, torch.ones((), dtype=torch.float32)
    raise ValueError(f"input kind {kind!r} has no Brevitas input quantizer here (int8 or binary)")
