"""BlinkNet (Amani & Brege): a ResNet whose three residual blocks each follow a convolutional pre-residual layer.

Stem 3x3 conv-BN-ReLU (16), then three stages (widths 16/32/64) of
    pre-residual 3x3 conv-BN-act (stride 2 in stages 2 and 3: it changes width and size, so the block after it
    can use an identity shortcut) -> residual block x + BN(conv(act(BN(conv(x))))) -> act,
then global average pooling, dropout and the one linear layer. 32x32 and 28x28 inputs (e.g. Fashion-MNIST,
in_channels=1) both work. Changed from the paper so that hardware can add exactly: both addends of each residual
sum are quantized to int8 codes of one shared power-of-two scale first (hbnn.quant.residual.QuantAdd).

Variants:
  fp      every layer at full precision;
  hybrid  the three pre-residual convs binary, everything else full precision (the paper's hybrid);
  binary  everything binary except the stem conv and the linear layer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import ExactBatchNorm2d
from ..precision import BINARY, Precision, conv2d, linear
from ..residual import QuantAdd
from .base import Option, ZooModel, check_probability
from .blocks import activation_for, conv_bn_act, dropout_for, global_average_pool, halved_size, pool_quant_for

__all__ = ["BlinkNet"]

STAGE_WIDTHS = (16, 32, 64)


class BlinkStage(nn.Module):
    """Pre-residual conv-BN-act, then a two-conv residual block with an identity shortcut."""

    def __init__(self, plan: dict[str, Precision], prefix: str, in_channels: int, width: int, stride: int,
                 reader: Precision) -> None:
        super().__init__()
        conv1, conv2 = plan[f"{prefix}.conv1"], plan[f"{prefix}.conv2"]
        self.pre = conv_bn_act(plan[f"{prefix}.pre.conv"], in_channels, width, 3, stride=stride, padding=1,
                               activation=activation_for(conv1))
        self.conv1 = conv2d(conv1, width, width, 3, padding=1)
        self.bn1 = ExactBatchNorm2d(width)
        self.act1 = activation_for(conv2)
        self.conv2 = conv2d(conv2, width, width, 3, padding=1)
        self.bn2 = ExactBatchNorm2d(width)
        self.add = QuantAdd()
        self.act = activation_for(reader)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        return self.act(self.add(x, self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))))


class BlinkNet(ZooModel):
    NAME = "blinknet"
    VARIANTS = ("fp", "hybrid", "binary")
    OPTIONS = {"dropout": Option(0.2, check_probability)}

    def __init__(self, **arguments: Any) -> None:
        super().__init__(**arguments)
        plan = self._plan_layers()
        plan = self._set_plan(plan)

        self.stem = conv_bn_act(plan["stem.conv"], self.in_channels, STAGE_WIDTHS[0], 3, padding=1,
                                activation=activation_for(plan["stage1.pre.conv"]))
        in_channels = STAGE_WIDTHS[0]
        for stage, width in enumerate(STAGE_WIDTHS, start=1):
            reader = plan[f"stage{stage + 1}.pre.conv"] if stage < len(STAGE_WIDTHS) else plan["fc"]
            self.add_module(f"stage{stage}", BlinkStage(plan, f"stage{stage}", in_channels, width,
                                                        stride=1 if stage == 1 else 2, reader=reader))
            in_channels = width
        self.pool_quant = pool_quant_for(plan["fc"])  # Int8Activation or None
        self.pool = global_average_pool(halved_size(self.image_size, 2))
        self.dropout = dropout_for(self.options["dropout"], plan["fc"])
        self.fc = linear(plan["fc"], STAGE_WIDTHS[-1], self.num_classes, bias=True)

    def _plan_layers(self) -> dict[str, Precision]:
        full, variant = self.full_precision, self.variant
        pre = full if variant == "fp" else BINARY
        body = BINARY if variant == "binary" else full
        plan = {"stem.conv": full}
        for stage in range(1, len(STAGE_WIDTHS) + 1):
            plan[f"stage{stage}.pre.conv"] = pre
            plan[f"stage{stage}.conv1"] = body
            plan[f"stage{stage}.conv2"] = body
        plan["fc"] = full
        return plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        if self.pool_quant is not None:
            x = self.pool_quant(x)
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))
