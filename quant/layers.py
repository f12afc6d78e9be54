"""Binary quantizers (+-1 weights, +-1 activations) and batch-norms whose eval output is bit-reproducible."""

from __future__ import annotations

import numpy as np
import torch
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst

__all__ = [
    "BinaryWeight", "BinaryAct", "ExactBatchNorm1d", "ExactBatchNorm2d", "correctly_rounded_sqrt",
]


class BinaryWeight(SignedBinaryWeightPerTensorConst):
    """Weights quantized to exactly +1/-1 (sign(0) = +1, Brevitas' binary_sign).

    Brevitas' default scale is 0.1; a scale of 1.0 makes the quantized weights the integers the hardware stores as bits.
    The latent float weights are clamped in place to [-1, 1], the usual BNN weight clipping.
    """

    scaling_const = 1.0


class BinaryAct(SignedBinaryActPerTensorConst):
    """Activations quantized to +1/-1 with scale 1: clamp to [-1, 1], then sign.

    The gradient is the clipped straight-through estimator: 1 where |x| <= 1, 0 elsewhere.
    """


class _ExactBatchNormEval:
    """The eval-mode formula shared by ExactBatchNorm1d and ExactBatchNorm2d (mixed in before torch's class)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None) -> None:
        # Both are needed: the eval formula reads weight/bias and running_mean/running_var.
        name = type(self).__name__
        if not affine:
            raise ValueError(f"{name} requires affine=True (its eval formula uses weight and bias)")
        if not track_running_stats:
            raise ValueError(f"{name} requires track_running_stats=True "
                             "(its eval formula uses running_mean and running_var)")
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine,
                         track_running_stats=track_running_stats, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        self._check_input_dim(x)
        mean, var, weight, bias = self.running_mean, self.running_var, self.weight, self.bias
        # Per-channel parameters (C,) broadcast over every axis after the channel axis: (C, 1, ...).
        trailing = [1] * (x.dim() - 2)
        mean, var, weight, bias = (t.view(-1, *trailing) for t in (mean, var, weight, bias))
        return (x - mean) / correctly_rounded_sqrt(var + self.eps) * weight + bias


class ExactBatchNorm1d(_ExactBatchNormEval, torch.nn.BatchNorm1d):
    """BatchNorm1d whose eval-mode output is a fixed sequence of float32 elementwise ops.

    In training mode this is exactly torch.nn.BatchNorm1d. In eval mode it computes

        (x - running_mean) / sqrt(running_var + eps) * weight + bias

    as separate float32 operations, left to right, each IEEE-754 correctly rounded (eps is rounded to float32
    before the add). A compiler can therefore reproduce the result bit-exactly, e.g. in numpy as
    `(x - mean) / np.sqrt(var + np.float32(eps)) * gamma + beta`, when it derives integer thresholds for the
    following sign activation. torch's fused batch-norm kernel may use FMA or a precomputed scale/shift and cannot
    be matched bit for bit.

    The sqrt is the one step not done by torch: torch's vectorized CPU sqrt is approximate (in torch 2.13 about one
    float32 result in five is 1 ulp off), so the per-channel sqrt is taken with numpy's IEEE sqrt instead.
    """


class ExactBatchNorm2d(_ExactBatchNormEval, torch.nn.BatchNorm2d):
    """BatchNorm2d with ExactBatchNorm1d's eval formula, the per-channel parameters broadcast over (H, W).

    Training mode is exactly torch.nn.BatchNorm2d; eval mode is the same separate float32 ops
    `(x - running_mean) / sqrt(running_var + eps) * weight + bias` with numpy's correctly rounded sqrt.
    """


def correctly_rounded_sqrt(t: torch.Tensor) -> torch.Tensor:
    """Elementwise sqrt in t's dtype, rounded to nearest as IEEE-754 requires; carries no gradient.

    numpy's sqrt is the hardware instruction (exact, then rounded once); torch.sqrt is not on every CPU path.
    Only eval-mode batch-norm uses it, on running_var, a buffer that needs no gradient.
    """
    return torch.from_numpy(np.sqrt(t.detach().cpu().numpy())).to(t.device)
