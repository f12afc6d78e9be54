"""MLP: the multilayer perceptron on flattened pixels, the network the hbnn compiler first mapped to hardware.

pixels (N, features) or (N, C, H, W) in [0, 1] -> flatten -> x - 0.5 -> fc1-bn1-act1 -> ... -> fcN, with
N = len(hidden) + 1 linear layers (no bias), batch-norm after every one but the last (whose outputs are the
logits) and the zoo's activation rule in front of each next layer.

Variants:
  fp      every layer at full precision;
  hybrid  first and last layer full precision, the hidden ones BINARY (with one hidden width: the same as fp);
  binary  every layer BINARY, the input included: sign(pixel - 0.5), the fully binary MLP.
Weight-binarized layers (binary weights on int8 inputs) come through layer_precisions, e.g. {"fc2":
"weight-binary"}.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..precision import BINARY, Precision, linear
from .base import Option, ZooModel, check_positive_int
from .blocks import activation_for, linear_bn_act_parts

__all__ = ["MLP"]

# Subtracted from every pixel before the first layer, whose own input quantizer then sees values centered on 0.
PIXEL_CENTER = 0.5


def check_hidden(name: str, value: Any) -> list[int]:
    """Hidden layer widths -> a list of positive ints (a list, as the JSON config holds it)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ValueError(f"{name} must be a non-empty list of hidden layer widths such as [128, 128], not {value!r}")
    return [check_positive_int(f"{name}[{index}]", width) for index, width in enumerate(value)]


def has_unscaled_logits(precision: Precision) -> bool:
    """Whether a last layer at `precision` outputs sums of +-1 (or 0) weights times its inputs, with no scale that
    shrinks them: binary or ternary weights without +alpha."""
    return precision.weights in ("binary", "ternary") and not precision.weight_scale


class MLP(ZooModel):
    NAME = "mlp"
    VARIANTS = ("fp", "hybrid", "binary")
    OPTIONS = {"hidden": Option((128, 128), check_hidden)}
    input_layout = "flat"  # hbnn.quant.train feeds (N, features) pixels, without image augmentation

    def __init__(self, **arguments: Any) -> None:
        super().__init__(**arguments)
        widths = [self.features, *self.hidden, self.num_classes]
        names = [f"fc{index}" for index in range(1, len(widths))]
        plan = self._set_plan(self._plan_layers(names))
        precisions = list(plan.values())

        # Registered in forward order; forward() runs the children one after the other.
        for index, (precision, reader) in enumerate(zip(precisions[:-1], precisions[1:]), start=1):
            parts = linear_bn_act_parts(precision, widths[index - 1], widths[index],
                                        activation=activation_for(reader), suffix=str(index))
            for name, module in parts.items():
                self.add_module(name, module)
        last = precisions[-1]
        self.add_module(names[-1], linear(last, widths[-2], widths[-1]))  # no batch-norm: these are the logits

        # Only the training loss reads logit_scale (cross-entropy on logits * |logit_scale|). A last layer with +-1
        # weights outputs sums whose size grows like sqrt(fan-in) (integers, for binary inputs), which would
        # saturate softmax; the learned scale starts at 1/sqrt(fan-in). A positive scale leaves the argmax alone,
        # so hardware ignores it. int8/float (and +alpha) weights are learned at ~1/sqrt(fan-in) already, their
        # outputs are logits of ordinary size: no parameter there, and the loss takes them as they are.
        if has_unscaled_logits(last):
            self.logit_scale = nn.Parameter(torch.tensor(1.0 / math.sqrt(widths[-2])))

    def _plan_layers(self, names: list[str]) -> dict[str, Precision]:
        full = self.full_precision
        if self.variant == "binary":
            return {name: BINARY for name in names}
        plan = {name: BINARY if self.variant == "hybrid" else full for name in names}
        plan[names[0]] = plan[names[-1]] = full
        return plan

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(self._options["hidden"])

    @property
    def features(self) -> int:
        """Input width: pixels per image."""
        return self.in_channels * self.image_size ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # No shape check: the compiler captures forward() with torch.fx, which refuses branches on the input (a
        # wrong width fails in fc1's matmul). Centering is one float32 subtraction: a binary fc1 takes
        # sign(pixel - 0.5), +1 exactly where pixel >= 0.5 (pixel - 0.5 is exact for pixels in [0.25, 1] and stays
        # negative below), the threshold the hardware applies; an int8 fc1 quantizes [-0.5, 0.5], its whole signed
        # range in use.
        x = torch.flatten(x, 1) - PIXEL_CENTER
        for module in self.children():
            x = module(x)
        return x
