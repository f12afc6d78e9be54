"""Hardware budgets (luts:N, dsps:N, cycles:N): a plan's cost from the compiler's cost model.

`HardwareBudget.for_model` records each conv/linear layer's kind and shape once; `cost(plan)` then asks
hbnn.compiler.cost_model, which builds and maps the network the compiler would build for that plan (dummy weights,
the compiler's folding), for:
- cycles: the latency of one image; exact where every layer after the first takes signs, otherwise an upper bound
  by about a cycle per layer that feeds an int8 layer;
- DSPs: exact, PE x SIMD per int8 layer;
- LUTs: an estimate of Yosys' logic LUTs (the cost model states its measured error, LUT_MAX_ERROR).
The compiler maps linear layers at binary, binary+alpha, weight-binary(+alpha) and int8 precision. A conv layer
makes `for_model` fail, and a layer the plan puts at a precision the compiler cannot map (ternary, ABC-Net, float,
or +alpha on the last layer) makes `cost` fail, each with an UnsupportedLayerError naming the layer. That is the
honest answer: a budget that priced unmapped layers at 0 would accept any plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from torch import nn
from torch.nn.modules.conv import _ConvNd

from ...compiler.cost_model import LUT_MAX_ERROR, HardwareCost, check_mappable, network_cost
from ...compiler.passes.set_folding import DEFAULT_TARGET_CYCLES
from ..precision import Precision

__all__ = ["HARDWARE_METRICS", "HardwareBudget", "LayerShape"]

HARDWARE_METRICS = {"luts": "LUTs", "dsps": "DSPs", "cycles": "cycles"}  # metric -> unit


@dataclass(frozen=True)
class LayerShape:
    """A conv/linear layer as the hardware sees it: a matrix of out_features rows by in_features columns (a conv's
    columns are in_channels x kernel height x kernel width / groups, its rows its output channels)."""

    name: str
    kind: str  # "linear" | "conv"
    in_features: int
    out_features: int


def _shape(name: str, module: nn.Module) -> LayerShape:
    if isinstance(module, _ConvNd):
        columns = module.in_channels // module.groups
        for size in module.kernel_size:
            columns *= size
        return LayerShape(name, "conv", columns, module.out_channels)
    if isinstance(module, nn.Linear):
        return LayerShape(name, "linear", module.in_features, module.out_features)
    raise ValueError(f"layer {name!r} is a {type(module).__name__}, neither a convolution nor a linear layer")


def _layer_names(model: nn.Module) -> list[str]:
    """The model's conv/linear layers in forward order: a zoo model's binarizable_layers(), or for other models
    (the binary MLP the compiler builds) every conv/linear module in module order."""
    if callable(getattr(model, "binarizable_layers", None)):
        return list(model.binarizable_layers())
    return [name for name, module in model.named_modules() if isinstance(module, (_ConvNd, nn.Linear))]


@dataclass(frozen=True)
class HardwareBudget:
    """At most `limit` of `kind` (LUTs, DSPs or cycles) for the network the compiler builds from a plan."""

    kind: str  # "luts" | "dsps" | "cycles"
    limit: float
    unit: str
    layers: tuple[LayerShape, ...]  # forward order
    target_cycles: int = DEFAULT_TARGET_CYCLES  # the compiler's folding target

    def __post_init__(self) -> None:
        if self.kind not in HARDWARE_METRICS:
            raise ValueError(f"hardware budget kind must be one of {', '.join(HARDWARE_METRICS)}, not {self.kind!r}")
        if self.unit != HARDWARE_METRICS[self.kind]:
            raise ValueError(f"a {self.kind} budget is counted in {HARDWARE_METRICS[self.kind]}, not {self.unit!r}")
        number = isinstance(self.limit, (int, float)) and not isinstance(self.limit, bool)
        if not number or not 0 <= self.limit < float("inf"):
            raise ValueError(f"a {self.kind} budget's limit must be a finite number >= 0, not {self.limit!r}")
        if not self.layers:
            raise ValueError("a hardware budget needs at least one conv/linear layer")
        object.__setattr__(self, "limit", float(self.limit))
        object.__setattr__(self, "layers", tuple(self.layers))

    @classmethod
    def for_model(cls, model: nn.Module, input_shape: tuple[int, ...], metric: str, value: float,
                  target_cycles: int = DEFAULT_TARGET_CYCLES) -> HardwareBudget:
        """The budget `metric:value` for `model`. input_shape is part of every budget factory's signature; the
        mapped layers (linear) do not depend on it. Raises UnsupportedLayerError at the first layer whose kind
        the compiler cannot map (any conv layer today); precisions are checked per plan, by `cost`."""
        if metric not in HARDWARE_METRICS:
            raise ValueError(f"hardware budget kind must be one of {', '.join(HARDWARE_METRICS)}, not {metric!r}")
        layers = tuple(_shape(name, model.get_submodule(name)) for name in _layer_names(model))
        for layer in layers:
            check_mappable(layer.name, layer.kind)
        return cls(kind=metric, limit=value, unit=HARDWARE_METRICS[metric], layers=layers,
                   target_cycles=target_cycles)

    def hardware_cost(self, layers: Mapping[str, Precision]) -> HardwareCost:
        """The cost model's whole answer (LUTs, DSPs, cycles) for the plan `layers` ({name: Precision})."""
        missing = [layer.name for layer in self.layers if layer.name not in layers]
        if missing:
            raise ValueError(f"{self.kind} budget: the plan gives no precision for layer {missing[0]!r}")
        return network_cost([(layer.name, layer.kind, layers[layer.name], layer.in_features, layer.out_features)
                             for layer in self.layers], self.target_cycles)

    def cost(self, layers: Mapping[str, Precision]) -> float:
        return float(getattr(self.hardware_cost(layers), self.kind))

    def describe(self) -> str:
        meaning = {
            "luts": f"logic LUTs as the compiler's cost model estimates them, measured within "
                    f"{max(LUT_MAX_ERROR.values()):.0%}",
            "dsps": "DSP slices, one per int8 multiplier",
            "cycles": "cycles of latency per image, an upper bound where a layer feeds an int8 layer",
        }[self.kind]
        count = len(self.layers)
        return (f"{self.kind}:{self.limit:g} (at most {self.limit:,.0f} {meaning}; {count} "
                f"layer{'' if count == 1 else 's'} folded for {self.target_cycles} cycles per layer)")
