"""Random small layer stacks of every multiply-accumulate kind, compiled and simulated against PyTorch.

A case is a stack of the contract's linear layers (binary, weight-binary, ternary, int8, with or without XNOR-Net's
or TWN's alpha) with random batch norms (means and variances spread over the accumulator range, negative and zero
scales), random foldings, and random pixels. `check_case` lowers and compiles it, maps it to the hardware components and streams
the images through the whole Dataflow in Amaranth's simulator (the RTL the Verilog is written from), undisturbed and
with random back-pressure: every output must equal PyTorch's bit for bit, and the undisturbed latency and interval
must equal the cycle analysis. tests/sim/test_fuzz.py draws a few hundred cases with hypothesis; bench/fuzz.py runs
thousands.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..compiler.check import check_graph, divisors
from ..compiler.cycles import estimate_cycles
from ..compiler.ir import Folding
from ..compiler.lower import input_layer_of, lower_model, network_input_codes
from ..compiler.map_to_hardware import map_design, stream_formats
from ..compiler.pipeline import compile_graph
from ..quant.layers import ExactBatchNorm1d
from ..quant.models.blocks import activation_for
from ..quant.precision import Precision, linear
from .amaranth_stream import stream_through
from ..compiler.wire_order import wire_order
from .verify import mismatching

__all__ = ["LayerStack", "random_stack", "Case", "draw_case", "check_case", "simulate_case", "CaseResult",
           "PRECISIONS"]

# The first four have no float op after the accumulator, so they may end a stack.
PRECISIONS = ("binary", "weight-binary", "int8", "ternary", "binary+alpha", "weight-binary+alpha", "ternary+alpha")


class LayerStack(nn.Module):
    """Pixels -> flatten, centre -> [linear, ExactBatchNorm1d, activation] per layer but the last (a plain linear)."""

    def __init__(self, precisions: Sequence[str], sizes: Sequence[int]):
        super().__init__()
        precisions = [Precision.parse(p) for p in precisions]
        self.fcs = nn.ModuleList(linear(p, a, b) for p, a, b in zip(precisions, sizes, sizes[1:]))
        self.bns = nn.ModuleList(ExactBatchNorm1d(b) for b in sizes[1:-1])
        self.acts = nn.ModuleList(activation_for(p) for p in precisions[1:])

    def forward(self, x):
        x = x.flatten(1) - 0.5
        for index, fc in enumerate(self.fcs):
            x = fc(x)
            if index < len(self.bns):
                x = self.acts[index](self.bns[index](x))
        return x


def random_stack(precisions: Sequence[str], sizes: Sequence[int], seed: int = 0, zero_gamma: bool = True):
    """A LayerStack in eval mode: quantizer scales from one training-mode pass over random pixels, batch norms
    drawn around each layer's typical accumulator (some negative scales, and one zero scale per layer of more than one
    channel)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = LayerStack(precisions, sizes)
    model.train()
    with torch.no_grad():
        model(torch.rand(64, sizes[0]))
        for bn, fc in zip(model.bns, model.fcs):
            channels = bn.num_features
            typical = np.sqrt(fc.in_features) * (1 if fc.precision.inputs == "binary" else 0.3)
            bn.running_mean.copy_(torch.tensor(rng.normal(0, typical, channels), dtype=torch.float32))
            bn.running_var.copy_(torch.tensor(rng.uniform(0.1, 2, channels) * typical ** 2, dtype=torch.float32))
            gamma = rng.normal(0, 1, channels)
            gamma[: channels // 4] = -np.abs(gamma[: channels // 4])
            if zero_gamma and channels > 1:  # a lone constant channel after a ReLU may be all zeros: no scale
                gamma[-1] = 0.0
            bn.weight.copy_(torch.tensor(gamma, dtype=torch.float32))
            bn.bias.copy_(torch.tensor(rng.normal(0, 1, channels), dtype=torch.float32))
    return model.eval()


@dataclass(frozen=True)
class Case:
    precisions: tuple[str, ...]
    sizes: tuple[int, ...]
    foldings: tuple[tuple[int, int], ...]  # (PE, SIMD) per layer
    images: int
    seed: int

    def describe(self) -> str:
        layers = ", ".join(f"{p} {a}->{b} PE{pe}xSIMD{simd}" for p, a, b, (pe, simd)
                           in zip(self.precisions, self.sizes, self.sizes[1:], self.foldings))
        return f"[{layers}], {self.images} images, seed {self.seed}"


def draw_case(rng: np.random.Generator, *, max_layers: int = 3, max_width: int = 24, max_images: int = 6) -> Case:
    """A random case: 1..max_layers layers of random precision (alpha only where a batch norm follows), widths
    1..max_width (2.. for the input), and random divisors as foldings (PE = 1, SIMD = 1 and fully parallel included)."""
    layers = int(rng.integers(1, max_layers + 1))
    # At least two inputs: with one, every layer's values are one function of one sign, and a layer whose weights
    # cancel outputs zero for every image, leaving the next int8 quantizer no scale to learn.
    sizes = (int(rng.integers(2, max_width + 1)),) + tuple(int(rng.integers(1, max_width + 1)) for _ in range(layers))
    precisions = tuple(str(rng.choice(PRECISIONS if index < layers - 1 else PRECISIONS[:4]))
                       for index in range(layers))
    foldings = tuple((int(rng.choice(divisors(out))), int(rng.choice(divisors(inp))))
                     for inp, out in zip(sizes, sizes[1:]))
    return Case(precisions, sizes, foldings, int(rng.integers(1, max_images + 1)), int(rng.integers(0, 2 ** 31)))


@dataclass(frozen=True)
class CaseResult:
    case: Case
    mismatches: int
    compared: int
    latency: tuple[int, int]  # (measured, analytical)
    gaps: tuple[list[int], list[int]]  # between images' last outputs: (measured, analytical)

    @property
    def passed(self) -> bool:
        return (self.mismatches == 0 and self.compared > 0 and self.latency[0] == self.latency[1]
                and self.gaps[0] == self.gaps[1])

    def describe(self) -> str:
        return (f"{self.case.describe()}: {self.mismatches} of {self.compared} outputs differ; latency "
                f"{self.latency[0]} measured, {self.latency[1]} analytical; gaps {self.gaps[0]} measured, "
                f"{self.gaps[1]} analytical")


def simulate_case(case, model, compiled, x: torch.Tensor, backpressure: tuple[float, float]) -> CaseResult:
    """Streams the images x through the compiled design's Dataflow in Amaranth's simulator, undisturbed and with
    `backpressure` (input gaps, output stalls): outputs against the model's, and undisturbed cycles against the
    analysis. Shared by this module's dense stacks and hbnn.sim.conv_fuzz's CNNs."""
    images = len(x)
    types = check_graph(compiled)
    design = map_design(compiled)
    with torch.no_grad():
        expected = wire_order(model(x).numpy()).reshape(images, -1)
    codes = wire_order(network_input_codes(model, input_layer_of(compiled), x))
    first, last = design.stages[design.source.node], design.stages[design.sink.node]
    input_format, output_format = stream_formats(compiled, design)
    transfers = codes.reshape(images * first.transfers_in, -1)
    output = compiled.outputs[0]
    exponent, divisor = types[output].dtype.exponent, compiled.divisor_of(output)
    analytical = estimate_cycles(design)
    mismatches = compared = 0
    timing = None
    for run, (gaps, stalls) in enumerate(((0.0, 0.0), backpressure)):
        if run:
            design = map_design(compiled)  # fresh components: an elaborated one is not elaborated twice
        dut = design.accelerator()
        received, in_cycles, out_cycles = stream_through(
            dut, transfers, input_format, output_format, outputs=images * last.transfers_out,
            input_gaps=gaps, output_stalls=stalls, seed=case.seed)
        mismatches += mismatching(received.reshape(images, -1), exponent, expected, divisor)
        compared += expected.size
        if timing is None:
            ends = out_cycles[last.transfers_out - 1::last.transfers_out]
            timing = (ends[0] - in_cycles[0], [int(gap) for gap in np.diff(ends)])
    return CaseResult(case, mismatches, compared, (int(timing[0]), analytical.latency),
                      (timing[1], analytical.gaps(images)))


def check_case(case: Case, backpressure: tuple[float, float] = (0.3, 0.3)) -> CaseResult:
    model = random_stack(case.precisions, case.sizes, seed=case.seed)
    foldings = {f"fcs.{index}": Folding(pe, simd) for index, (pe, simd) in enumerate(case.foldings)}
    compiled = compile_graph(lower_model(model), foldings)
    x = torch.from_numpy(np.random.default_rng(case.seed).random((case.images, case.sizes[0]), dtype=np.float32))
    return simulate_case(case, model, compiled, x, backpressure)
