"""Network metrics for hybrid binary networks: parameter memory, effective 32-bit parameters, MACs, FLOPs and BOPs.

`measure(model, input_shape)` walks the model once and runs one forward pass on a zero image to count every
convolution's and linear layer's multiply-accumulates (MACs). Each layer's precision is read from the duck-typed
`.precision` attribute that hbnn's precision layers carry (fields `weights`, `inputs`, `weight_scale`,
`weight_bases`, `act_bases`); a layer without it is float weights on float inputs.

Definitions (the section and table numbers are quoted from the project brief and from memory; they were not
re-checked against the papers while writing this module):

* Parameter memory (BlinkNet, Amani & Brege, Table 1): every stored parameter at its storage width.
  Weights: binary 1 bit, ternary 2 bits, int8 8 bits, float 32 bits, ABC-Net with M bases M bits (one bit per
  basis). Float scalars at 32 bits: biases, the per-output-channel alpha of scaled binary/ternary weights, ABC-Net's
  M weight alphas (Lin et al. 2017, section 3.1), batch-norm weight and bias.
* Effective 32-bit parameters (Amani, ResNet-14 paper, section 2.3): 32 one-bit parameters count as one, i.e.
  memory_bits / 32.
* BOPs and FLOPs (MixBin, Bamba et al., section 4.1, following Bi-Real Net, Liu et al. 2018, section 4.4):
  BOPs are the MACs done as XNOR-popcount (binary weights on binary inputs; ABC-Net does M*N binary convolutions,
  so M*N BOPs per MAC); FLOPs = full-precision MACs + BOPs / 64.

Interpretations this module makes where the papers leave a choice (each repeated where it is implemented):

* Batch-norm running mean and variance are not counted: they are buffers, not parameters, and at inference the
  four per-channel values fold into one scale and one shift -- the same 2 x 32 bits per channel as weight + bias.
* ABC-Net activations (section 3.2) carry N betas and N shift parameters v_n, all trainable: counted as 2N
  32-bit parameters of the layer whose inputs they quantize.
* An int8 layer stores no scale: 8-bit fixed point has its binary point fixed by the format. Nor does a
  stand-alone int8 quantizer (Int8Activation, e.g. in front of a global average pool): no row, no parameters.
* int8 MACs, binary weights on int8/float inputs, ternary weights and any weights on float/int8 inputs count as
  full-precision MACs (FLOPs): none of them is an XNOR-popcount. This is conservative for int8 and ternary.
  Hybrid Binary Networks (Prabhu et al. 2018) likewise do not credit weight-only binarization with XNOR speed-up
  (our reading of that paper).
* ABC-Net weights on non-binary inputs are one convolution with the reconstructed weight sum(alpha_m B_m): MACs
  FLOPs, not M times as many.
* The per-output scaling multiplications of XNOR-style layers (alpha, beta) and batch-norm arithmetic are not
  counted, as in Bi-Real Net's FLOPs: only convolution and linear MACs are operations here.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from .activation_quant import Int8Activation

__all__ = ["LayerMetrics", "NetworkMetrics", "measure", "layer_flops", "FLOAT_BITS", "BOPS_PER_FLOP"]

FLOAT_BITS = 32
# Bi-Real Net section 4.4: a 64-bit CPU does 64 binary operations in one instruction.
BOPS_PER_FLOP = 64

_WEIGHT_KINDS = ("float", "int8", "binary", "ternary", "abc")
_INPUT_KINDS = ("float", "int8", "binary", "abc")
_WEIGHT_BITS = {"float": FLOAT_BITS, "int8": 8, "binary": 1, "ternary": 2}  # "abc": M bits, one per basis


@dataclass(frozen=True)
class LayerMetrics:
    """Metrics of one layer. macs, flops and bops are per image; flops = full-precision MACs + bops / 64."""

    name: str
    kind: str
    precision: str
    params: int
    weight_bits_per_param: int
    memory_bits: int
    effective_params_32: float
    macs: int
    flops: float
    bops: int


@dataclass(frozen=True)
class NetworkMetrics:
    """Per-layer metrics of a network and their totals (properties, so they always agree with the layers)."""

    input_shape: tuple[int, ...]
    layers: tuple[LayerMetrics, ...]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def memory_bits(self) -> int:
        return sum(layer.memory_bits for layer in self.layers)

    @property
    def memory_bytes(self) -> float:
        return self.memory_bits / 8

    @property
    def effective_params_32(self) -> float:
        return self.memory_bits / FLOAT_BITS

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def flops(self) -> float:
        return sum(layer.flops for layer in self.layers)

    @property
    def bops(self) -> int:
        return sum(layer.bops for layer in self.layers)

    @property
    def totals(self) -> dict[str, int | float]:
        return {"params": self.params, "memory_bits": self.memory_bits, "memory_bytes": self.memory_bytes,
                "effective_params_32": self.effective_params_32, "macs": self.macs, "flops": self.flops,
                "bops": self.bops}

    def as_dict(self) -> dict:
        """Plain JSON-able dict: json.loads(json.dumps(d)) == d."""
        return {"input_shape": list(self.input_shape), "layers": [asdict(layer) for layer in self.layers],
                "totals": self.totals}

    @classmethod
    def from_dict(cls, data: dict) -> NetworkMetrics:
        """Inverse of as_dict (the totals in data are recomputed from the layers, not read)."""
        return cls(input_shape=tuple(data["input_shape"]),
                   layers=tuple(LayerMetrics(**layer) for layer in data["layers"]))

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    def table(self) -> str:
        """Aligned plain-text table, one row per layer and a final total row; numbers are right-aligned."""
        headers = ["layer", "kind", "precision", "params", "w bits", "memory bits", "eff. params 32", "MACs",
                   "FLOPs", "BOPs"]
        rows = [[layer.name, layer.kind, layer.precision, _int_text(layer.params),
                 _int_text(layer.weight_bits_per_param), _int_text(layer.memory_bits),
                 _float_text(layer.effective_params_32), _int_text(layer.macs), _float_text(layer.flops),
                 _int_text(layer.bops)] for layer in self.layers]
        total = ["total", "", "", _int_text(self.params), "", _int_text(self.memory_bits),
                 _float_text(self.effective_params_32), _int_text(self.macs), _float_text(self.flops),
                 _int_text(self.bops)]
        return _aligned(headers, rows, total, numeric_from=3)


def measure(model: nn.Module, input_shape: tuple[int, ...]) -> NetworkMetrics:
    """Metrics of model for one input of shape input_shape (without the batch axis).

    Runs one forward pass in eval mode on zeros of shape (1, *input_shape); afterwards every module's training
    flag, parameter and buffer is as it was. Layers are listed in module order; a layer the forward pass never
    reaches has 0 MACs. Parameters are counted from each layer's shape and precision, not from
    module.parameters(), so a quantizer's own scale parameters (Brevitas proxies inside a layer) are not counted a
    second time.
    """
    input_shape = tuple(int(size) for size in input_shape)
    modules = list(_metric_modules(model))
    compute = [module for _, module, kind in modules if kind in ("conv", "linear")]
    output_elements = _output_elements(model, input_shape, compute)
    layers = tuple(_layer_metrics(name, module, kind, output_elements.get(module, 0))
                   for name, module, kind in modules)
    return NetworkMetrics(input_shape=input_shape, layers=layers)


@dataclass(frozen=True)
class _Precision:
    """A layer's precision, normalized from its duck-typed `.precision` attribute."""

    weights: str
    inputs: str
    weight_scale: bool
    weight_bases: int
    act_bases: int

    @property
    def name(self) -> str:
        weights = f"abc{self.weight_bases}" if self.weights == "abc" else self.weights
        if self.weight_scale and self.weights in ("binary", "ternary"):
            weights += "+scale"
        inputs = f"abc{self.act_bases}" if self.inputs == "abc" else self.inputs
        return f"{weights}/{inputs}"

    @property
    def weight_bits(self) -> int:
        return self.weight_bases if self.weights == "abc" else _WEIGHT_BITS[self.weights]

    @property
    def binary_weight_planes(self) -> int:
        """How many {-1,+1} weight tensors an XNOR-popcount kernel sees; 0 when weights are not binary."""
        return {"binary": 1, "abc": self.weight_bases}.get(self.weights, 0)

    @property
    def binary_input_planes(self) -> int:
        return {"binary": 1, "abc": self.act_bases}.get(self.inputs, 0)


_FLOAT = _Precision(weights="float", inputs="float", weight_scale=False, weight_bases=1, act_bases=1)


def _precision_of(name: str, module: nn.Module) -> _Precision:
    declared = getattr(module, "precision", None)
    if declared is None:
        return _FLOAT
    precision = _Precision(weights=getattr(declared, "weights", "float"), inputs=getattr(declared, "inputs", "float"),
                           weight_scale=bool(getattr(declared, "weight_scale", False)),
                           weight_bases=getattr(declared, "weight_bases", 1),
                           act_bases=getattr(declared, "act_bases", 1))
    _check_precision(name, precision)
    return precision


def _check_precision(name: str, precision: _Precision) -> None:
    if precision.weights not in _WEIGHT_KINDS:
        raise ValueError(f"{name}: precision.weights must be one of {_WEIGHT_KINDS}, not {precision.weights!r}")
    if precision.inputs not in _INPUT_KINDS:
        raise ValueError(f"{name}: precision.inputs must be one of {_INPUT_KINDS}, not {precision.inputs!r}")
    # Bases only matter (and must make sense) where ABC-Net is used.
    if precision.weights == "abc":
        _check_bases(name, "weight_bases", precision.weight_bases)
    if precision.inputs == "abc":
        _check_bases(name, "act_bases", precision.act_bases)


def _check_bases(name: str, field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: precision.{field} must be a positive integer, not {value!r}")


def _kind(name: str, module: nn.Module) -> str:
    if isinstance(module, _ConvNd):
        if module.transposed:  # its MACs follow the input size, not the output size
            raise ValueError(f"{name}: transposed convolutions are not supported by metrics")
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, _BatchNorm):
        return "batchnorm"
    if hasattr(module, "precision"):  # counting it as float would misstate its memory silently
        raise ValueError(f"{name}: {type(module).__name__} has .precision but is neither a convolution nor a linear "
                         "layer; metrics cannot count it")
    return type(module).__name__.lower()


def _metric_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module, str]]:
    """(name, module, kind) of every conv, linear and batch-norm layer, and of any other module owning parameters.

    Modules inside a conv or linear layer (its quantizers) are skipped: the layer's own count covers them. An
    Int8Activation and its insides are skipped too: int8 stores no scale (see the module docstring).
    """
    covered: list[str] = []
    for name, module in model.named_modules():  # parents come before their children
        if any(_is_inside(name, prefix) for prefix in covered):
            continue
        if isinstance(module, Int8Activation):
            covered.append(name)
            continue
        kind = _kind(name or "model", module)
        if kind in ("conv", "linear"):
            covered.append(name)
        if kind in ("conv", "linear", "batchnorm") or next(module.parameters(recurse=False), None) is not None:
            yield name or type(module).__name__, module, kind


def _is_inside(name: str, prefix: str) -> bool:
    return name != prefix and (prefix == "" or name.startswith(prefix + "."))


def _layer_metrics(name: str, module: nn.Module, kind: str, output_elements: int) -> LayerMetrics:
    if kind in ("conv", "linear"):
        return _weight_layer_metrics(name, module, kind, output_elements)
    # Batch-norm (weight and bias; running stats are buffers, see the module docstring) and any other module's
    # own parameters are float scalars.
    params = sum(parameter.numel() for parameter in module.parameters(recurse=False))
    return LayerMetrics(name=name, kind=kind, precision="float", params=params, weight_bits_per_param=FLOAT_BITS,
                        memory_bits=params * FLOAT_BITS, effective_params_32=float(params), macs=0, flops=0.0,
                        bops=0)


def _weight_layer_metrics(name: str, module: nn.Module, kind: str, output_elements: int) -> LayerMetrics:
    precision = _precision_of(name, module)
    weights = module.weight.numel()
    float_scalars = _bias_count(module) + _weight_scale_count(precision, module) + _input_param_count(precision)
    memory_bits = weights * precision.weight_bits + float_scalars * FLOAT_BITS
    macs = output_elements * _macs_per_output(module)
    bops = precision.binary_weight_planes * precision.binary_input_planes * macs
    full_precision_macs = 0 if bops else macs
    return LayerMetrics(name=name, kind=kind, precision=precision.name, params=weights + float_scalars,
                        weight_bits_per_param=precision.weight_bits, memory_bits=memory_bits,
                        effective_params_32=memory_bits / FLOAT_BITS, macs=macs,
                        flops=full_precision_macs + bops / BOPS_PER_FLOP, bops=bops)


def layer_flops(precision, macs: int) -> float:
    """FLOPs of a conv/linear layer doing `macs` MACs per image at `precision` (the rule measure() applies):
    full-precision MACs, or BOPs / 64 where the layer is an XNOR-popcount (ABC-Net: M*N BOPs per MAC)."""
    normalized = _precision_of("layer", _Declared(precision))
    bops = normalized.binary_weight_planes * normalized.binary_input_planes * macs
    return bops / BOPS_PER_FLOP if bops else float(macs)


@dataclass(frozen=True)
class _Declared:
    precision: object


def _bias_count(module: nn.Module) -> int:
    return 0 if module.bias is None else module.bias.numel()


def _weight_scale_count(precision: _Precision, module: nn.Module) -> int:
    """32-bit weight scales: ABC-Net's M alphas (one per basis, section 3.1), or one alpha per output channel."""
    if precision.weights == "abc":
        return precision.weight_bases
    if precision.weight_scale and precision.weights in ("binary", "ternary"):
        return module.weight.shape[0]  # output channels / features: dim 0 for both Conv and Linear
    return 0


def _input_param_count(precision: _Precision) -> int:
    """ABC-Net activations: N betas and N shifts v_n, trainable 32-bit scalars (section 3.2)."""
    return 2 * precision.act_bases if precision.inputs == "abc" else 0


def _macs_per_output(module: nn.Module) -> int:
    if isinstance(module, _ConvNd):
        return module.in_channels // module.groups * math.prod(module.kernel_size)
    return module.in_features


def _output_elements(model: nn.Module, input_shape: tuple[int, ...], modules: list[nn.Module]) -> dict[nn.Module, int]:
    """Output elements each module produces for one image (summed over calls, for layers used more than once)."""
    counts = {module: 0 for module in modules}

    def count(module: nn.Module, inputs: tuple, output: object) -> None:
        counts[module] += _output_tensor(output).numel()  # batch of 1: numel is per image

    handles = [module.register_forward_hook(count) for module in modules]
    try:
        with _unchanged(model), torch.no_grad():
            model.eval()
            model(torch.zeros((1, *input_shape), **_tensor_options(model)))
    finally:
        for handle in handles:
            handle.remove()
    return counts


def _output_tensor(output: object) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    value = getattr(output, "value", None)  # Brevitas QuantTensor (return_quant_tensor=True)
    if isinstance(value, torch.Tensor):
        return value
    raise TypeError(f"cannot count the elements of a layer output of type {type(output).__name__}")


def _tensor_options(model: nn.Module) -> dict:
    parameter = next((p for p in model.parameters() if p.is_floating_point()), None)
    return {} if parameter is None else {"dtype": parameter.dtype, "device": parameter.device}


@contextlib.contextmanager
def _unchanged(model: nn.Module) -> Iterator[None]:
    """Restore every module's training flag (one model.train(mode) would flatten mixed modes) and every parameter
    and buffer value, so that measuring never changes the model, whatever its quantizers do in forward."""
    modes = [(module, module.training) for module in model.modules()]
    state = {key: tensor.clone() for key, tensor in model.state_dict(keep_vars=False).items()}
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        with torch.no_grad():
            for key, tensor in model.state_dict(keep_vars=False).items():
                tensor.copy_(state[key])


def _int_text(value: int) -> str:
    return f"{value:,}"


def _float_text(value: float) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def _aligned(headers: list[str], rows: list[list[str]], total: list[str], numeric_from: int) -> str:
    """Columns padded to equal width, numeric columns right-aligned, rules under the header and above the total."""
    widths = [max(len(row[column]) for row in [headers, *rows, total]) for column in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.rjust(width) if column >= numeric_from else cell.ljust(width)
                         for column, (cell, width) in enumerate(zip(cells, widths)))

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows), rule, line(total)])
