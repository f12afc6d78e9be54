"""Budgets a selection must meet: one pluggable cost function per kind, read from text such as "flops:0.3".

A Budget gives the cost of a whole plan ({layer: Precision}) and a limit; `fits` compares them. Kinds:

  flops:F    FLOPs at most F x the all-full-precision network's (MixBin's budget; a binary layer costs its
             BOPs / 64, see hbnn.quant.metrics). "0.3" and "30%" mean flops:0.3.
  luts:N, dsps:N, cycles:N, bram:N
             from the compiler's hardware cost models (hbnn.quant.selection.hardware_budget): a network of linear
             layers from its shapes, one with convolutions as the compiler builds it for a board; a layer the
             compiler cannot map makes such a budget an error naming that layer.

New kinds (energy, when the compiler reports it) join with `register_budget`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Protocol

from torch import nn

from ..metrics import layer_flops, measure
from ..precision import Precision

__all__ = ["BUDGET_KINDS", "Budget", "BudgetSpec", "FlopsBudget", "fits", "parse_budget", "register_budget"]


class Budget(Protocol):
    kind: str
    limit: float
    unit: str

    def cost(self, layers: Mapping[str, Precision]) -> float: ...


def fits(budget: Budget, layers: Mapping[str, Precision]) -> bool:
    return budget.cost(layers) <= budget.limit


@dataclass(frozen=True)
class FlopsBudget:
    """FLOPs of a plan from each layer's MACs (measured once on the network) and its precision."""

    layer_macs: Mapping[str, int]
    fraction: float
    reference_flops: float  # every layer at full precision
    other_flops: float = 0.0  # nothing outside conv/linear layers counts today (metrics' definition)
    kind: str = "flops"
    unit: str = "FLOPs"

    @classmethod
    def for_model(cls, model: nn.Module, input_shape: tuple[int, ...], fraction: float) -> FlopsBudget:
        if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"a FLOPs budget is a fraction in (0, 1] of the full-precision network's FLOPs, "
                             f"not {fraction!r}")
        metrics = measure(model, input_shape)
        layers = set(model.binarizable_layers())
        macs = {layer.name: layer.macs for layer in metrics.layers if layer.name in layers}
        return cls(layer_macs=macs, fraction=float(fraction), reference_flops=float(sum(macs.values())))

    @property
    def limit(self) -> float:
        return self.fraction * self.reference_flops

    def cost(self, layers: Mapping[str, Precision]) -> float:
        missing = [name for name in self.layer_macs if name not in layers]
        if missing:
            raise ValueError(f"FLOPs budget: the plan gives no precision for layer {missing[0]!r}")
        return self.other_flops + sum(layer_flops(layers[name], macs) for name, macs in self.layer_macs.items())

    def describe(self) -> str:
        return f"flops:{self.fraction:g} ({self.limit:,.0f} of {self.reference_flops:,.0f} full-precision FLOPs)"


@dataclass(frozen=True)
class BudgetSpec:
    """A budget as the user wrote it: kind and value; `for_model` makes the Budget for one network."""

    kind: str
    value: float

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.value:g}"

    def for_model(self, model: nn.Module, input_shape: tuple[int, ...], **hardware: object) -> Budget:
        """hardware: board= and target_cycles= for the hardware kinds (hardware_budget.HardwareBudget.for_model);
        an error for the others."""
        if hardware and self.kind not in HARDWARE_KINDS:
            raise ValueError(f"{', '.join(sorted(hardware))} applies to hardware budgets "
                             f"({', '.join(HARDWARE_KINDS)}), not to {self.text}")
        return BUDGET_KINDS[self.kind](model, input_shape, self.value, **hardware)


def _hardware(metric: str) -> Callable[..., Budget]:
    def make(model: nn.Module, input_shape: tuple[int, ...], value: float, **options) -> Budget:
        from .hardware_budget import HardwareBudget  # imports the compiler only when asked for

        return HardwareBudget.for_model(model, input_shape, metric, value, **options)
    return make


HARDWARE_KINDS = ("luts", "dsps", "cycles", "bram")


BUDGET_KINDS: dict[str, Callable[[nn.Module, tuple[int, ...], float], Budget]] = {
    "flops": FlopsBudget.for_model,
    "luts": _hardware("luts"),
    "dsps": _hardware("dsps"),
    "cycles": _hardware("cycles"),
    "bram": _hardware("bram"),
}


def register_budget(kind: str, factory: Callable[[nn.Module, tuple[int, ...], float], Budget]) -> None:
    """Add a budget kind: factory(model, input_shape, value) -> Budget."""
    if kind in BUDGET_KINDS:
        raise ValueError(f"budget kind {kind!r} exists already")
    BUDGET_KINDS[kind] = factory


def parse_budget(text: str) -> BudgetSpec:
    """"flops:0.3", "0.3" or "30%" (FLOPs fraction), "luts:20000", "dsps:0", "cycles:5000", "bram:40" ->
    BudgetSpec."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a budget is KIND:VALUE (kinds: {', '.join(BUDGET_KINDS)}), not {text!r}")
    kind, _, value = text.strip().rpartition(":")
    kind = kind.strip().lower() or "flops"
    if kind not in BUDGET_KINDS:
        raise ValueError(f"unknown budget kind {kind!r} in {text!r}; kinds: {', '.join(BUDGET_KINDS)}")
    value = value.strip()
    percent = value.endswith("%")
    try:
        number = float(value[:-1] if percent else value)
    except ValueError:
        raise ValueError(f"budget {text!r}: {value!r} is not a number") from None
    if percent:
        if kind != "flops":
            raise ValueError(f"budget {text!r}: a percentage applies to flops only")
        number /= 100
    if not number >= 0 or number != number or number == float("inf"):
        raise ValueError(f"budget {text!r}: the value must be a finite number >= 0")
    if kind == "flops" and not 0 < number <= 1:
        raise ValueError(f"budget {text!r}: a FLOPs budget is a fraction in (0, 1] (or a percentage)")
    return BudgetSpec(kind, number)
