"""CIFAR ResNet-20 (He et al., "Deep Residual Learning for Image Recognition", 2016, section 4.2).

3x3 stem conv (16), three stages of three basic blocks (widths 16/32/64; the first block of stages 2 and 3
halves the feature map with stride 2), global average pooling, a 64 -> classes linear layer: 6n+2 = 20 layers
with n = 3. Shortcuts are option A, parameter-free: identity, or where the shape changes, stride-2 subsampling
with the new channels zero-padded (half before, half after the old ones), giving the paper's 0.27M parameters.
Changed from the paper so that hardware can add exactly: both addends of each residual sum are quantized to int8
codes of one shared power-of-two scale first (hbnn.quant.residual.QuantAdd; one scale parameter per block).

Variants: "fp" (every layer at full precision) and "binary" (all but the stem conv and the final linear layer
binary). Like every zoo model it takes `layer_precisions` for per-layer plans: {"stage3.2.conv2": "fp",
"stem.conv": "weight-binary"}; values are "fp" (the model's full precision) or Precision names ("binary", "int8",
"weight-binary", "ternary", "binary+alpha", "abc3x1", ...).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import ExactBatchNorm2d
from ..precision import BINARY, Precision, conv2d, linear
from ..residual import QuantAdd, ZeroPadShortcut
from .base import ZooModel
from .blocks import activation_for, conv_bn_act, global_average_pool, halved_size, pool_quant_for

__all__ = ["CifarResNet20", "LAYER_NAMES"]

STAGE_WIDTHS = (16, 32, 64)
BLOCKS_PER_STAGE = 3

LAYER_NAMES: tuple[str, ...] = (
    "stem.conv",
    *(f"stage{stage}.{block}.{conv}" for stage in range(1, len(STAGE_WIDTHS) + 1)
      for block in range(BLOCKS_PER_STAGE) for conv in ("conv1", "conv2")),
    "fc",
)


class BasicBlock(nn.Module):
    """conv1-BN-act1-conv2-BN, plus the shortcut, then `activation` (chosen by whoever reads the block)."""

    def __init__(self, conv1: Precision, conv2: Precision, in_channels: int, out_channels: int, stride: int,
                 activation: nn.Module) -> None:
        super().__init__()
        self.conv1 = conv2d(conv1, in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = ExactBatchNorm2d(out_channels)
        self.act1 = activation_for(conv2)
        self.conv2 = conv2d(conv2, out_channels, out_channels, 3, padding=1)
        self.bn2 = ExactBatchNorm2d(out_channels)
        changes_shape = stride != 1 or in_channels != out_channels
        self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride) if changes_shape else nn.Identity()
        self.add = QuantAdd()
        self.act = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(self.add(out, self.shortcut(x)))


class CifarResNet20(ZooModel):
    NAME = "cresnet20"
    VARIANTS = ("fp", "binary")

    def __init__(self, **arguments: Any) -> None:
        super().__init__(**arguments)
        full = self.full_precision
        plan = {name: full if self.variant == "fp" or name in ("stem.conv", "fc") else BINARY
                for name in LAYER_NAMES}
        plan = self._set_plan(plan)

        self.stem = conv_bn_act(plan["stem.conv"], self.in_channels, STAGE_WIDTHS[0], 3, padding=1,
                                activation=activation_for(plan["stage1.0.conv1"]))
        in_channels = STAGE_WIDTHS[0]
        for stage, width in enumerate(STAGE_WIDTHS, start=1):
            blocks = []
            for block in range(BLOCKS_PER_STAGE):
                prefix = f"stage{stage}.{block}"
                reader = self._next_layer(prefix)
                blocks.append(BasicBlock(plan[f"{prefix}.conv1"], plan[f"{prefix}.conv2"], in_channels, width,
                                         stride=2 if stage > 1 and block == 0 else 1,
                                         activation=activation_for(plan[reader])))
                in_channels = width
            self.add_module(f"stage{stage}", nn.Sequential(*blocks))
        self.pool_quant = pool_quant_for(plan["fc"])  # Int8Activation or None
        self.pool = global_average_pool(halved_size(self.image_size, 2))
        self.fc = linear(plan["fc"], STAGE_WIDTHS[-1], self.num_classes, bias=True)

    @staticmethod
    def _next_layer(block_prefix: str) -> str:
        """The conv/linear layer that reads a block's output: the next block's conv1, or the classifier."""
        return LAYER_NAMES[LAYER_NAMES.index(f"{block_prefix}.conv2") + 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.stage3(self.stage2(self.stage1(x)))
        if self.pool_quant is not None:
            x = self.pool_quant(x)
        return self.fc(torch.flatten(self.pool(x), 1))
