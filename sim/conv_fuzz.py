"""Random small CNNs, compiled and simulated against PyTorch: hbnn.sim.fuzz's method for convolutions.

A case is a few conv layers of the contract's kinds (binary with +1 padding, weight-binary, ternary, int8, with or
without XNOR-Net's / TWN's alpha), kernels 1/3, strides 1/2, padding 0/1, random batch norms, optional max pools (2x2, or 3x3 stride
2 padding 1 as NIN's), then one of three heads: flatten and a linear layer, a global average pool of int8 codes
(Int8Activation) and a linear layer, or a global average pool straight on the last conv's accumulators (NIN's: the
host divides by the area). `check_conv_case` compiles it with random foldings and streams the images through the
whole Dataflow in Amaranth's simulator, undisturbed and with random back-pressure: every output must equal
PyTorch's bit for bit, and the undisturbed latency and every gap must equal the cycle analysis.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..compiler.check import divisors
from ..compiler.ir import Folding, Pool, window_output_size
from ..compiler.lower import lower_model
from ..compiler.pipeline import compile_graph
from ..quant.activation_quant import Int8Activation
from ..quant.layers import ExactBatchNorm2d
from ..quant.models.blocks import activation_for
from ..quant.pooling import ExactAvgPool2d
from ..quant.precision import Precision, conv2d, linear
from .fuzz import CaseResult, simulate_case

__all__ = ["ConvLayer", "ConvCase", "ConvStack", "random_conv_stack", "draw_conv_case", "check_conv_case", "HEADS",
           "with_simd", "compile_and_simulate", "draw_batch_norm", "PRECISIONS", "CALIBRATION_PRECISIONS"]

# The cost model's conv calibration designs (bench/calibrate_conv_cost.py) were drawn from these and keep them, so
# that the same seeds give the same designs; the fuzz draws ternary layers too.
CALIBRATION_PRECISIONS = ("binary", "weight-binary", "int8", "binary+alpha")
# ABC-Net (M weight bases x N activation bases) never reads the network input: a first layer drawn ABC is int8.
ABC_PRECISIONS = ("abc1x1", "abc3x2", "abc2x3")
PRECISIONS = CALIBRATION_PRECISIONS + ("ternary", "ternary+alpha") + ABC_PRECISIONS
HEADS = ("flatten", "average", "average-accumulators")
POOLS = {None: None, "2": (2, 2, 0), "3/2": (3, 2, 1)}


@dataclass(frozen=True)
class ConvLayer:
    precision: str
    channels: int  # output channels
    kernel: int
    stride: int
    padding: int
    pool: str | None  # a key of POOLS


@dataclass(frozen=True)
class ConvCase:
    in_channels: int
    size: int
    layers: tuple[ConvLayer, ...]
    head: str
    head_precision: str  # of the linear head ("average-accumulators" has none)
    classes: int
    foldings: tuple[tuple[int, ...], ...]  # (PE, SIMD) per conv, then the linear head's; ABC: (PE, SIMD, bases)
    pool_simd: tuple[int, ...]  # per pool, in order (the head's average pool last)
    images: int
    seed: int

    def describe(self) -> str:
        layers = ", ".join(f"{layer.precision} {layer.kernel}x{layer.kernel}/{layer.stride} pad {layer.padding} "
                           f"-> {layer.channels}" + (f" pool {layer.pool}" if layer.pool else "")
                           for layer in self.layers)
        return (f"{self.in_channels}x{self.size}x{self.size}: [{layers}], head {self.head} "
                f"({self.head_precision}) -> {self.classes}; foldings {list(self.foldings)}, pool SIMD "
                f"{list(self.pool_simd)}; {self.images} images, seed {self.seed}")


def _map_sizes(case: ConvCase) -> list[int]:
    """The feature-map size after each conv layer (and its pool)."""
    sizes, size = [], case.size
    for layer in case.layers:
        size = window_output_size(size, layer.kernel, layer.stride, layer.padding)
        if layer.pool:
            kernel, stride, padding = POOLS[layer.pool]
            size = window_output_size(size, kernel, stride, padding)
        sizes.append(size)
    return sizes


class ConvStack(nn.Module):
    """Pixels - 0.5 -> [conv, ExactBatchNorm2d, activation, max pool?] per layer -> head."""

    def __init__(self, case: ConvCase):
        super().__init__()
        precisions = [Precision.parse(layer.precision) for layer in case.layers]
        head = Precision.parse(case.head_precision) if case.head != "average-accumulators" else None
        readers = precisions[1:] + ([head] if head is not None else [])
        self.head = case.head
        self.features = nn.Sequential()
        channels = case.in_channels
        last = len(case.layers) - 1
        for index, (layer, precision) in enumerate(zip(case.layers, precisions)):
            self.features.append(conv2d(precision, channels, layer.channels, layer.kernel, stride=layer.stride,
                                        padding=layer.padding))
            if index < last or case.head != "average-accumulators":
                self.features.append(ExactBatchNorm2d(layer.channels))
                self.features.append(activation_for(readers[index]))
            if layer.pool:
                kernel, stride, padding = POOLS[layer.pool]
                self.features.append(nn.MaxPool2d(kernel, stride, padding))
            channels = layer.channels
        size = _map_sizes(case)[-1]
        if case.head == "flatten":
            # A float bias after binary weights has no integer output form: only an int8 head has one.
            self.classifier = linear(head, channels * size * size, case.classes, bias=head.weights == "int8")
        elif case.head == "average":
            self.pool_quant = Int8Activation()
            self.pool = ExactAvgPool2d(size)
            self.classifier = linear(head, channels, case.classes, bias=True)
        else:
            self.pool = ExactAvgPool2d(size)

    def forward(self, x):
        x = self.features(x - 0.5)
        if self.head == "flatten":
            return self.classifier(torch.flatten(x, 1))
        if self.head == "average":
            return self.classifier(torch.flatten(self.pool(self.pool_quant(x)), 1))
        return torch.flatten(self.pool(x), 1)


def draw_batch_norm(rng: np.random.Generator, conv: nn.Conv2d, bn: ExactBatchNorm2d, *, last: str) -> None:
    """Statistics around the conv's typical accumulator, a quarter of the scales negative; the last channel
    "constant" (scale 0, where there are several channels: a lone constant channel after a ReLU may be all zeros,
    leaving the next quantizer no scale) or "lifted" (shifted up: positive after a ReLU, so the next int8
    quantizer always has a scale to learn)."""
    channels = bn.num_features
    fan_in = conv.in_channels * conv.kernel_size[0] ** 2
    typical = np.sqrt(fan_in) * (1 if conv.precision.inputs == "binary" else 0.3)
    bn.running_mean.copy_(torch.tensor(rng.normal(0, typical, channels), dtype=torch.float32))
    bn.running_var.copy_(torch.tensor(rng.uniform(0.1, 2, channels) * typical ** 2, dtype=torch.float32))
    gamma = rng.normal(0, 1, channels)
    gamma[: channels // 4] = -np.abs(gamma[: channels // 4])
    if last == "constant" and channels > 1:
        gamma[-1] = 0.0
    beta = rng.normal(0, 1, channels)
    if last == "lifted":
        beta[-1] = 4 + abs(beta[-1])
    bn.weight.copy_(torch.tensor(gamma, dtype=torch.float32))
    bn.bias.copy_(torch.tensor(beta, dtype=torch.float32))


def random_conv_stack(case: ConvCase) -> ConvStack:
    """The case's network in eval mode: quantizer scales from one training-mode pass over random pixels, batch
    norms drawn around each layer's typical accumulator (some negative scales, one zero scale per layer of more
    than one channel)."""
    torch.manual_seed(case.seed)
    rng = np.random.default_rng(case.seed)
    model = ConvStack(case)
    model.train()
    with torch.no_grad():
        model(torch.rand(64, case.in_channels, case.size, case.size))
        convs = [module for module in model.features if isinstance(module, nn.Conv2d)]
        norms = [module for module in model.features if isinstance(module, ExactBatchNorm2d)]
        for conv, bn in zip(convs, norms):
            draw_batch_norm(rng, conv, bn, last="constant")
        if case.head != "average-accumulators":
            # The head's quantizers see what the drawn batch norms make, not what training-mode ones made.
            model.eval()
            for module in (getattr(model, "pool_quant", None), model.classifier):
                if module is not None:
                    module.train()
            model(torch.rand(64, case.in_channels, case.size, case.size))
    return model.eval()


def draw_conv_case(rng: np.random.Generator, *, max_layers: int = 2, max_channels: int = 6, max_size: int = 7,
                   max_images: int = 3, precisions: tuple[str, ...] = PRECISIONS) -> ConvCase:
    """A random case whose feature maps never vanish; foldings are random divisors (SIMD dividing the input
    channels of a windowed layer); layer precisions drawn from `precisions`."""
    while True:
        in_channels = int(rng.integers(1, 4))
        size = int(rng.integers(3, max_size + 1))
        layers = []
        for index in range(int(rng.integers(1, max_layers + 1))):
            kernel = int(rng.choice((1, 3)))
            precision = str(rng.choice(precisions))
            if index == 0 and precision in ABC_PRECISIONS:
                precision = "int8"
            pool = [None, None, "2", "3/2"][int(rng.integers(0, 4))]
            layers.append(ConvLayer(precision, int(rng.integers(1, max_channels + 1)), kernel,
                                    int(rng.choice((1, 2))), int(rng.integers(0, 2)) if kernel == 3 else 0, pool))
        head = str(rng.choice(HEADS))
        if head == "average-accumulators":
            # NIN's head: the last conv is int8, and its accumulators are pooled directly (no max pool between).
            last = layers[-1]
            layers[-1] = ConvLayer("int8", last.channels, last.kernel, last.stride, last.padding, None)
        case_layers = tuple(layers)
        sizes = _map_sizes(ConvCase(in_channels, size, case_layers, head, "", 1, (), (), 1, 0))
        if min(sizes) >= 1:
            break
    heads = ("int8", "binary", "weight-binary") + (("ternary",) if "ternary" in precisions else ()) + \
        tuple(name for name in ABC_PRECISIONS if name in precisions)[:1]
    head_precision = str(rng.choice(heads)) if head == "flatten" else "int8"
    if head == "average-accumulators":
        head_precision = ""
    classes = int(rng.integers(2, 6))
    channels = [in_channels] + [layer.channels for layer in case_layers]
    foldings = []
    for index, layer in enumerate(case_layers):  # SIMD divides the input channels, windowed or not
        foldings.append((int(rng.choice(divisors(layer.channels))), int(rng.choice(divisors(channels[index])))) +
                        _bases_folding(rng, layer.precision))
    if head != "average-accumulators":
        features = channels[-1] * (sizes[-1] ** 2 if head == "flatten" else 1)
        foldings.append((int(rng.choice(divisors(classes))), int(rng.choice(divisors(features)))) +
                        _bases_folding(rng, head_precision))
    pools = [channels[index + 1] for index, layer in enumerate(case_layers) if layer.pool]
    if head != "flatten":
        pools.append(channels[-1])
    pool_simd = tuple(int(rng.choice(divisors(c))) for c in pools)
    return ConvCase(in_channels, size, case_layers, head, head_precision, classes, tuple(foldings), pool_simd,
                    int(rng.integers(1, max_images + 1)), int(rng.integers(0, 2 ** 31)))


def _bases_folding(rng: np.random.Generator, precision: str) -> tuple[int, ...]:
    """(weight bases side by side,) for an ABC-Net layer, drawn from the divisors of M; () otherwise."""
    if precision not in ABC_PRECISIONS:
        return ()
    return (int(rng.choice(divisors(Precision.parse(precision).weight_bases))),)


def with_simd(graph, kind: type, simds):
    """The graph with the given SIMD on its nodes of `kind` (Pool, ElementwiseAdd), in order."""
    simds = iter(simds)
    return graph.replace([dataclasses.replace(node, simd=next(simds)) if isinstance(node, kind) else node
                          for node in graph.nodes])


def compile_and_simulate(case, model: nn.Module, kind: type, simds, backpressure) -> CaseResult:
    """A random case's model lowered with the case's SIMD on its `kind` nodes and the case's foldings (one per
    Dense, in graph order), streamed through its design in Amaranth's simulator (hbnn.sim.fuzz.simulate_case) on
    `case.images` random images."""
    graph = with_simd(lower_model(model, (case.in_channels, case.size, case.size)), kind, simds)
    names = [layer.name for layer in graph.dense_layers()]
    compiled = compile_graph(graph, dict(zip(names, (Folding(*folding) for folding in case.foldings))))
    x = torch.from_numpy(np.random.default_rng(case.seed).random((case.images, case.in_channels, case.size,
                                                                  case.size), dtype=np.float32))
    return simulate_case(case, model, compiled, x, backpressure)


def check_conv_case(case: ConvCase, backpressure: tuple[float, float] = (0.3, 0.3)) -> CaseResult:
    return compile_and_simulate(case, random_conv_stack(case), Pool, case.pool_simd, backpressure)
