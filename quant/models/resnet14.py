"""ResNet-14 with selectable shortcuts (Amani's shortcut study of hybrid binary ResNets).

Stem conv-BN-ReLU (16), three residual blocks of two 3x3 conv-BN-ReLU each (widths 16/32/64; blocks 2 and 3 start
with stride 2), each shortcut a 1x1 conv (stride as the block's) with BN+ReLU added to the block's output, then
dropout, global average pooling and the classifier. The sum is not passed through a further ReLU: both addends
already went through their own activation. Changed from the paper so that hardware can add exactly: both addends
are quantized to int8 codes of one shared power-of-two scale before the add (hbnn.quant.residual.QuantAdd).

Options: shortcuts "all" (every block has one), "hybrid" (only block 2: blocks 1 and 3 are plain), "none".
Variants, our reading of the study:
  fp      every layer at full precision;
  hybrid  the blocks' 3x3 convs binary; stem, 1x1 shortcut convs and classifier full precision (the shortcuts
          are the cheap path that keeps full-precision information flowing past the binary convs);
  binary  everything binary except the stem conv and the classifier (shortcut convs binary too).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import ExactBatchNorm2d
from ..precision import BINARY, Precision, conv2d, linear
from ..residual import QuantAdd
from .base import Option, ZooModel, check_probability, one_of
from .blocks import activation_for, conv_bn_act, dropout_for, global_average_pool, halved_size, pool_quant_for

__all__ = ["ResNet14", "SHORTCUT_BLOCKS"]

BLOCK_WIDTHS = (16, 32, 64)
# Which blocks (1-based) carry a shortcut, per `shortcuts` option.
SHORTCUT_BLOCKS = {"all": (1, 2, 3), "hybrid": (2,), "none": ()}


class ShortcutBlock(nn.Module):
    """conv1-BN-act1-conv2-BN-act2, plus (optionally) a 1x1 conv-BN-act shortcut from the block's input.

    `readers` are the precisions of the layers that read the block's output; they choose its activations.
    """

    def __init__(self, plan: dict[str, Precision], prefix: str, in_channels: int, width: int, stride: int,
                 readers: list[Precision], has_shortcut: bool) -> None:
        super().__init__()
        conv2 = plan[f"{prefix}.conv2"]
        self.conv1 = conv2d(plan[f"{prefix}.conv1"], in_channels, width, 3, stride=stride, padding=1)
        self.bn1 = ExactBatchNorm2d(width)
        self.act1 = activation_for(conv2)
        self.conv2 = conv2d(conv2, width, width, 3, padding=1)
        self.bn2 = ExactBatchNorm2d(width)
        # Both addends get the activation the block's readers need: a sum of two ReLU outputs is all-positive too.
        self.act2 = activation_for(*readers)
        self.shortcut = conv_bn_act(plan[f"{prefix}.shortcut.conv"], in_channels, width, 1, stride=stride,
                                    activation=activation_for(*readers)) if has_shortcut else None
        self.add = QuantAdd() if has_shortcut else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        return out if self.shortcut is None else self.add(out, self.shortcut(x))


class ResNet14(ZooModel):
    NAME = "resnet14"
    VARIANTS = ("fp", "hybrid", "binary")
    OPTIONS = {
        "shortcuts": Option("all", one_of(*SHORTCUT_BLOCKS)),
        "dropout": Option(0.2, check_probability),
    }

    def __init__(self, **arguments: Any) -> None:
        super().__init__(**arguments)
        shortcut_blocks = SHORTCUT_BLOCKS[self.options["shortcuts"]]
        plan = self._plan_layers(shortcut_blocks)
        plan = self._set_plan(plan)

        def readers(block: int) -> list[Precision]:
            """The layers that read block `block`'s input (block 4 = the classifier)."""
            if block > len(BLOCK_WIDTHS):
                return [plan["fc"]]
            return [plan[f"block{block}.conv1"]] + ([plan[f"block{block}.shortcut.conv"]]
                                                     if block in shortcut_blocks else [])

        self.stem = conv_bn_act(plan["stem.conv"], self.in_channels, BLOCK_WIDTHS[0], 3, padding=1,
                                activation=activation_for(*readers(1)))
        in_channels = BLOCK_WIDTHS[0]
        for block, width in enumerate(BLOCK_WIDTHS, start=1):
            self.add_module(f"block{block}", ShortcutBlock(
                plan, f"block{block}", in_channels, width, stride=1 if block == 1 else 2,
                readers=readers(block + 1), has_shortcut=block in shortcut_blocks))
            in_channels = width
        self.dropout = dropout_for(self.options["dropout"], plan["fc"])
        self.pool_quant = pool_quant_for(plan["fc"])  # Int8Activation or None
        self.pool = global_average_pool(halved_size(self.image_size, 2))
        self.fc = linear(plan["fc"], BLOCK_WIDTHS[-1], self.num_classes, bias=True)

    def _plan_layers(self, shortcut_blocks: tuple[int, ...]) -> dict[str, Precision]:
        full, variant = self.full_precision, self.variant
        block_convs = full if variant == "fp" else BINARY
        shortcut_convs = BINARY if variant == "binary" else full
        plan = {"stem.conv": full}
        for block in range(1, len(BLOCK_WIDTHS) + 1):
            plan[f"block{block}.conv1"] = block_convs
            plan[f"block{block}.conv2"] = block_convs
            if block in shortcut_blocks:
                plan[f"block{block}.shortcut.conv"] = shortcut_convs
        plan["fc"] = full
        return plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.block3(self.block2(self.block1(self.stem(x)))))
        if self.pool_quant is not None:
            x = self.pool_quant(x)
        return self.fc(torch.flatten(self.pool(x), 1))
