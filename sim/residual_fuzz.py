"""Random small residual CNNs, compiled and simulated against PyTorch: hbnn.sim.conv_fuzz's method for residual
blocks (forks, integer adds, bypass FIFOs).

A case is a stem conv (int8 or weight-binary on pixels), then one or two blocks of conv1 -> conv2 plus a shortcut,
added through hbnn.quant.residual.QuantAdd: an identity shortcut where the block keeps its width and size, else a
1x1 conv (the block's stride) or the CIFAR ResNets' parameter-free zero-pad shortcut (every stride-th pixel, the
added channels zero), each conv of the contract's kinds, then a global average pool of int8 codes and an
int8 linear head. `check_residual_case` compiles it with random foldings and residual-add SIMD and streams the
images through the whole DataflowGraph in Amaranth's simulator, undisturbed and with random back-pressure: every
output must equal PyTorch's bit for bit, and latency and every gap must equal the cycle analysis.
"""
from __future__ import annotations

import math

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..compiler.check import divisors
from ..compiler.ir import ElementwiseAdd, window_output_size
from ..quant.activation_quant import Int8Activation
from ..quant.layers import ExactBatchNorm2d
from ..quant.models.blocks import activation_for
from ..quant.pooling import ExactAvgPool2d
from ..quant.precision import Precision, conv2d, linear
from ..quant.residual import QuantAdd, ZeroPadShortcut
from .conv_fuzz import compile_and_simulate, draw_batch_norm
from .fuzz import CaseResult

__all__ = ["Block", "ResidualCase", "ResidualStack", "random_residual_stack", "draw_residual_case",
           "check_residual_case"]

PRECISIONS = ("binary", "weight-binary", "int8")
ZERO_PAD = "zero-pad"


@dataclass(frozen=True)
class Block:
    channels: int  # output channels
    stride: int
    conv1: str  # precisions
    conv2: str
    shortcut: str | None  # the 1x1 shortcut conv's precision, "zero-pad" (to a width at least the input's), or
    # None: identity (same width and size only)


@dataclass(frozen=True)
class ResidualCase:
    in_channels: int
    size: int
    stem: tuple[str, int]  # (precision, channels)
    blocks: tuple[Block, ...]
    classes: int
    foldings: tuple[tuple[int, int], ...]  # (PE, SIMD) per Dense, in graph order
    add_simd: tuple[int, ...]  # per residual add, in order
    images: int
    seed: int

    def describe(self) -> str:
        blocks = ", ".join(f"[{b.conv1}/{b.conv2} -> {b.channels} stride {b.stride}, shortcut "
                           f"{b.shortcut or 'identity'}]" for b in self.blocks)
        return (f"{self.in_channels}x{self.size}x{self.size}: stem {self.stem[0]} -> {self.stem[1]}, {blocks} -> "
                f"{self.classes}; foldings {list(self.foldings)}, add SIMD {list(self.add_simd)}; {self.images} "
                f"images, seed {self.seed}")


class _ResidualBlock(nn.Module):
    def __init__(self, block: Block, in_channels: int, reader: Precision):
        super().__init__()
        p1, p2 = Precision.parse(block.conv1), Precision.parse(block.conv2)
        self.conv1 = conv2d(p1, in_channels, block.channels, 3, stride=block.stride, padding=1)
        self.bn1 = ExactBatchNorm2d(block.channels)
        self.act1 = activation_for(p2)
        self.conv2 = conv2d(p2, block.channels, block.channels, 3, padding=1)
        self.bn2 = ExactBatchNorm2d(block.channels)
        self.shortcut = None
        if block.shortcut == ZERO_PAD:
            self.shortcut = ZeroPadShortcut(in_channels, block.channels, block.stride)
        elif block.shortcut is not None:
            self.shortcut = nn.Sequential(conv2d(Precision.parse(block.shortcut), in_channels, block.channels, 1,
                                                 stride=block.stride), ExactBatchNorm2d(block.channels))
        self.add = QuantAdd()
        self.act = activation_for(reader)

    def forward(self, x):
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act(self.add(out, x if self.shortcut is None else self.shortcut(x)))


class ResidualStack(nn.Module):
    """Pixels - 0.5 -> stem conv-BN-act -> residual blocks -> Int8Activation -> global average pool -> linear."""

    def __init__(self, case: ResidualCase):
        super().__init__()
        readers = [Precision.parse(block.conv1) for block in case.blocks]
        shortcuts = [Precision.parse(block.shortcut) if block.shortcut not in (None, ZERO_PAD) else None
                     for block in case.blocks]
        firsts = [tuple(p for p in (reader, shortcut) if p is not None) for reader, shortcut in zip(readers, shortcuts)]
        stem, channels = case.stem
        self.stem = conv2d(Precision.parse(stem), case.in_channels, channels, 3, padding=1)
        self.bn = ExactBatchNorm2d(channels)
        self.act = activation_for(*firsts[0])
        self.blocks = nn.Sequential()
        for index, block in enumerate(case.blocks):
            following = firsts[index + 1] if index + 1 < len(case.blocks) else (Precision.parse("int8"),)
            self.blocks.append(_ResidualBlock(block, channels, *following[:1]))
            channels = block.channels
        self.pool_quant = Int8Activation()
        self.pool = ExactAvgPool2d(_final_size(case))
        self.classifier = linear(Precision.parse("int8"), channels, case.classes, bias=True)

    def forward(self, x):
        x = self.blocks(self.act(self.bn(self.stem(x - 0.5))))
        return self.classifier(torch.flatten(self.pool(self.pool_quant(x)), 1))


def _final_size(case: ResidualCase) -> int:
    size = case.size
    for block in case.blocks:
        size = window_output_size(size, 3, block.stride, 1)
    return size


def random_residual_stack(case: ResidualCase) -> ResidualStack:
    """The case's network in eval mode: quantizer scales from training-mode passes over random pixels, batch norms
    drawn around each conv's typical accumulator (some negative scales, the last channel shifted up)."""
    torch.manual_seed(case.seed)
    rng = np.random.default_rng(case.seed)
    model = ResidualStack(case)
    convs = [module for module in model.modules() if isinstance(module, nn.Conv2d)]
    norms = [module for module in model.modules() if isinstance(module, ExactBatchNorm2d)]
    with torch.no_grad():
        for conv, bn in zip(convs, norms):  # modules() lists each conv right before its batch norm
            draw_batch_norm(rng, conv, bn, last="lifted")
        # Quantizer scales learn from training-mode passes; the batch norms keep the drawn statistics.
        model.train()
        for bn in norms:
            bn.eval()
        for _ in range(3):
            model(torch.rand(64, case.in_channels, case.size, case.size))
    return model.eval()


def dead_quantizers(model: nn.Module) -> list[str]:
    """The int8 quantizers (activations, and layers' own input quantizers) whose calibration saw only zeros (a ReLU
    over all-negative values, or a batch-normed constant): Brevitas leaves them a
    1e-10 floor instead of a power-of-two scale, which no hardware maps (the compiler refuses it, naming the layer).
    A drawn case with one is degenerate, not a compiler bug."""
    from ..compiler.lower import _probe
    from ..quant.activation_quant import Int8Activation
    from ..quant.input_codes import input_codes

    dead = []
    for path, module in model.named_modules():
        if isinstance(module, Int8Activation):
            _, scale = module.codes(torch.ones(1, 1, 1, 1))
        elif getattr(getattr(module, "precision", None), "inputs", None) == "int8" and hasattr(module, "input_quant"):
            _, scale = input_codes("int8", module.input_quant, _probe(module))  # a layer's own input quantizer
        else:
            continue
        if math.frexp(float(scale))[0] != 0.5:
            dead.append(path)
    return dead


def draw_residual_case(rng: np.random.Generator, *, max_blocks: int = 2, max_channels: int = 6, max_size: int = 6,
                       max_images: int = 3) -> ResidualCase:
    in_channels = int(rng.integers(1, 3))
    size = int(rng.integers(3, max_size + 1))
    # At least two channels: a lone channel after a ReLU can be all zeros, leaving the next int8 quantizer no scale.
    channels = int(rng.integers(2, max_channels + 1))
    stem = (str(rng.choice(("int8", "weight-binary"))), channels)
    blocks = []
    for _ in range(int(rng.integers(1, max_blocks + 1))):
        stride = int(rng.choice((1, 2)))
        width = int(rng.choice((channels, int(rng.integers(2, max_channels + 1)))))
        identity = stride == 1 and width == channels and rng.random() < 0.7
        if identity:
            shortcut = None
        elif width >= channels and rng.random() < 0.4:
            shortcut = ZERO_PAD
        else:
            shortcut = str(rng.choice(PRECISIONS))
        blocks.append(Block(width, stride, str(rng.choice(PRECISIONS)), str(rng.choice(PRECISIONS)), shortcut))
        channels = width
    classes = int(rng.integers(2, 5))
    # Dense layers in graph order: stem, then per block conv1, conv2, shortcut (if any), then the classifier.
    shapes = [(stem[1], in_channels)]
    previous = stem[1]
    for block in blocks:
        shapes += [(block.channels, previous), (block.channels, block.channels)]
        if block.shortcut not in (None, ZERO_PAD):
            shapes.append((block.channels, previous))
        previous = block.channels
    shapes.append((classes, previous))
    foldings = tuple((int(rng.choice(divisors(out))), int(rng.choice(divisors(inp)))) for out, inp in shapes)
    add_simd = tuple(int(rng.choice(divisors(block.channels))) for block in blocks)
    return ResidualCase(in_channels, size, stem, tuple(blocks), classes, foldings, add_simd,
                        int(rng.integers(1, max_images + 1)), int(rng.integers(0, 2 ** 31)))


def check_residual_case(case: ResidualCase, backpressure: tuple[float, float] = (0.3, 0.3)) -> CaseResult:
    return compile_and_simulate(case, random_residual_stack(case), ElementwiseAdd, case.add_simd, backpressure)
