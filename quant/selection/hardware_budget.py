"""Hardware budgets (luts:N, dsps:N, cycles:N, bram:N): a plan's cost from the compiler's cost models.

A network of linear layers: `HardwareBudget.for_model` records each layer's kind and shape once; `cost(plan)` then
asks hbnn.compiler.cost_model, which builds and maps the network the compiler would build for that plan (dummy
weights, the compiler's folding at target_cycles), for:
- cycles: the latency of one image; exact where every layer after the first takes signs, otherwise an upper bound
  by about a cycle per layer that feeds an int8 layer;
- DSPs: exact, PE x SIMD per int8 layer;
- LUTs: an estimate of Yosys' logic LUTs (the cost model states its measured error, LUT_MAX_ERROR).
- bram: an estimate of the block RAM (BRAM36).

A network with convolutions (and pools, residual adds): `cost(plan)` rebuilds the trained network at the plan's
precisions with its weights (hbnn.quant.selection.context.model_at) and prices what `hbnn compile --board B
--target-cycles T` builds from it (hbnn.compiler.model_cost): the same quantities, the cycles exact (its own
thresholds), the LUTs from the same model with the spatial terms calibrated on conv and residual designs
(cost_model.CONV_LUT_MAX_ERROR). Each plan is priced once (cached).

A layer the plan puts at a precision the compiler cannot map (float, ABC-Net reading the network input, or +alpha on
the last layer)
makes `cost` fail with an UnsupportedLayerError naming the layer. That is the honest answer: a budget that priced
unmapped layers at 0 would accept any plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from torch import nn
from torch.nn.modules.conv import _ConvNd

from ...boards import get_board
from ...compiler.cost_model import CONV_LUT_MAX_ERROR, LUT_MAX_ERROR, HardwareCost, check_mappable, network_cost
from ...compiler.passes.set_folding import DEFAULT_TARGET_CYCLES
from ..precision import Precision
from .context import model_at

__all__ = ["HARDWARE_METRICS", "HardwareBudget", "LayerShape"]

HARDWARE_METRICS = {"luts": "LUTs", "dsps": "DSPs", "cycles": "cycles", "bram": "BRAM36"}  # metric -> unit
COST_FIELDS = {"luts": "luts", "dsps": "dsps", "cycles": "cycles", "bram": "bram36"}  # metric -> HardwareCost field
DEFAULT_BOARD = "pynq-z2"  # the board a conv network is priced for unless one is given (as hbnn compile's)


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
    """At most `limit` of `kind` (LUTs, DSPs, cycles or BRAM36) for the network the compiler builds from a plan."""

    kind: str  # "luts" | "dsps" | "cycles" | "bram"
    limit: float
    unit: str
    layers: tuple[LayerShape, ...]  # forward order
    target_cycles: int = DEFAULT_TARGET_CYCLES  # the compiler's folding target
    model: nn.Module | None = None  # a network with convolutions: priced as itself (model_cost), for `board`
    board: str = DEFAULT_BOARD
    _priced: dict = field(default_factory=dict, compare=False, repr=False)  # plan -> HardwareCost

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
                  target_cycles: int = DEFAULT_TARGET_CYCLES, board: str | None = None) -> HardwareBudget:
        """The budget `metric:value` for `model`. input_shape is part of every budget factory's signature; the
        priced network does not depend on it beyond the model's own. A network of linear layers is priced from
        its layers' shapes at target_cycles (`board` must not be given: that cost model has no board); one with
        convolutions as itself, compiled for `board` (default DEFAULT_BOARD) at target_cycles. Precisions are
        checked per plan, by `cost`."""
        if metric not in HARDWARE_METRICS:
            raise ValueError(f"hardware budget kind must be one of {', '.join(HARDWARE_METRICS)}, not {metric!r}")
        layers = tuple(_shape(name, model.get_submodule(name)) for name in _layer_names(model))
        spatial = any(layer.kind == "conv" for layer in layers)
        if not spatial:
            if board is not None:
                raise ValueError(f"a network of linear layers is priced without a board (cost_model.network_cost "
                                 f"folds for target_cycles alone); drop the board {board!r}")
            for layer in layers:
                check_mappable(layer.name, layer.kind)
        if spatial and not callable(getattr(model, "config", None)):
            raise ValueError(f"a network with convolutions is priced by rebuilding it at each plan's precisions: "
                             f"a zoo model is needed, not a {type(model).__name__}")
        board = board or DEFAULT_BOARD
        get_board(board)  # an unknown board is an error now, not at the first plan
        return cls(kind=metric, limit=value, unit=HARDWARE_METRICS[metric], layers=layers,
                   target_cycles=target_cycles, model=model if spatial else None, board=board)

    def hardware_cost(self, layers: Mapping[str, Precision]) -> HardwareCost:
        """The cost model's whole answer (LUTs, DSPs, cycles, BRAM36) for the plan `layers` ({name: Precision})."""
        missing = [layer.name for layer in self.layers if layer.name not in layers]
        if missing:
            raise ValueError(f"{self.kind} budget: the plan gives no precision for layer {missing[0]!r}")
        if self.model is None:
            return network_cost([(layer.name, layer.kind, layers[layer.name], layer.in_features,
                                  layer.out_features) for layer in self.layers], self.target_cycles)
        key = tuple((layer.name, layers[layer.name].name) for layer in self.layers)
        if key not in self._priced:
            from ...compiler.model_cost import model_cost  # the whole compiler: only when a conv net is priced

            plan = {layer.name: layers[layer.name] for layer in self.layers}
            self._priced[key] = model_cost(model_at(self.model, plan), get_board(self.board), self.target_cycles)
        return self._priced[key]

    def cost(self, layers: Mapping[str, Precision]) -> float:
        return float(getattr(self.hardware_cost(layers), COST_FIELDS[self.kind]))

    def compiled(self, model: nn.Module):
        """The compiler's graph, before mapping, of the design this budget prices, built from `model` (a network at
        some plan, e.g. fine-tuned): for synthesizing what was priced."""
        from ...compiler.lower import lower_model
        from ...compiler.model_cost import compiled_for
        from ...compiler.pipeline import compile_graph

        if self.model is None:
            return compile_graph(lower_model(model.eval()), None, self.target_cycles)
        return compiled_for(model, get_board(self.board), self.target_cycles)

    def describe(self) -> str:
        error = max((CONV_LUT_MAX_ERROR if self.model is not None else LUT_MAX_ERROR).values())
        meaning = {
            "luts": f"logic LUTs as the compiler's cost model estimates them, measured within {error:.0%}",
            "dsps": "DSP slices, one per int8 multiplier",
            "cycles": ("cycles of latency per image" if self.model is not None else
                       "cycles of latency per image, an upper bound where a layer feeds an int8 layer"),
            "bram": "BRAM36 of block RAM, estimated",
        }[self.kind]
        count = len(self.layers)
        where = (f"compiled for {self.board} at a target of {self.target_cycles} cycles per layer"
                 if self.model is not None else f"folded for {self.target_cycles} cycles per layer")
        return (f"{self.kind}:{self.limit:g} (at most {self.limit:,.0f} {meaning}; {count} "
                f"layer{'' if count == 1 else 's'} {where})")
