"""The Network-in-Network that XNOR-Net (Rastegari et al., 2016) binarizes for CIFAR-10, with full-precision first
and last layers (the layout of the authors' and the common PyTorch reimplementation's CIFAR NIN).

conv 5x5 192 | 1x1 160 | 1x1 96 | max-pool 3/2 | [dropout] 5x5 192 | 1x1 192 | 1x1 192 | pool 3/2 |
[dropout] 3x3 192 | 1x1 192 | 1x1 classes | global average pool, every conv but the last followed by BN and act.

Variants: "fp" (all full precision) and "binary": every conv but the first and the last is an XNOR layer --
binary inputs, binary weights with XNOR-Net's scaling factor (weight_scale=True).

Our reading and its differences from the original:
* XNOR-Net's block is BN -> sign -> conv -> ReLU; here it is conv -> BN -> (the next layer's sign), the zoo's
  conv-BN-activation order that folds into integer thresholds. The ReLU between a binary conv and the next BN is
  dropped; where the next layer is full precision, a ReLU follows the BN instead.
* The second pool is a 3/2 max-pool, not the original average pool, until integer average pooling exists.
* Dropout (0.5 as the original) sits in front of the convs that read full-precision inputs only: in front of a
  sign a dropped value would become +1, see blocks.dropout_for.
* No ReLU after the classifier conv: its outputs are the logits.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from ..precision import Precision, conv2d
from .base import Option, ZooModel, check_probability
from .blocks import activation_for, conv_bn_act_parts, dropout_for, global_average_pool, halved_size

__all__ = ["NIN", "XNOR"]

# XNOR-Net: sign inputs, sign weights times the mean absolute weight per output channel.
XNOR = Precision("binary", "binary", weight_scale=True)

# (out_channels, kernel_size, padding) of the convs before the classifier conv.
CONVS = ((192, 5, 2), (160, 1, 0), (96, 1, 0), (192, 5, 2), (192, 1, 0), (192, 1, 0), (192, 3, 1), (192, 1, 0))
POOL_AFTER = (3, 6)  # 1-based conv indices followed by a 3/2 pool
DROPOUT_BEFORE = (4, 7)
LAYER_NAMES = tuple(f"features.conv{index}" for index in range(1, len(CONVS) + 2))


class NIN(ZooModel):
    NAME = "nin"
    VARIANTS = ("fp", "binary")
    OPTIONS = {"dropout": Option(0.5, check_probability)}

    def __init__(self, **arguments: Any) -> None:
        super().__init__(**arguments)
        full = self.full_precision
        middle = full if self.variant == "fp" else XNOR
        plan = {name: middle for name in LAYER_NAMES}
        plan[LAYER_NAMES[0]] = plan[LAYER_NAMES[-1]] = full
        plan = self._set_plan(plan)

        layers: dict[str, nn.Module] = {}
        in_channels = self.in_channels
        for index, (out_channels, kernel_size, padding) in enumerate(CONVS, start=1):
            if index in DROPOUT_BEFORE:
                layers[f"dropout{index}"] = dropout_for(self.options["dropout"], plan[f"features.conv{index}"])
            reader = plan[f"features.conv{index + 1}"]
            layers.update(conv_bn_act_parts(plan[f"features.conv{index}"], in_channels, out_channels, kernel_size,
                                            padding=padding, activation=activation_for(reader), suffix=str(index)))
            if index in POOL_AFTER:
                layers[f"pool{index}"] = nn.MaxPool2d(3, stride=2, padding=1)
            in_channels = out_channels
        classifier = len(CONVS) + 1
        layers[f"conv{classifier}"] = conv2d(plan[LAYER_NAMES[-1]], in_channels, self.num_classes, 1, bias=True)
        self.features = nn.Sequential(OrderedDict(layers))
        # The convs keep the size. No pool quantizer (blocks.pool_quant_for): the pool reads the classifier conv's
        # output, for an int8 classifier its integer accumulator times a power of two already.
        self.pool = global_average_pool(halved_size(self.image_size, len(POOL_AFTER)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)
