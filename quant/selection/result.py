"""What a selection method returns, and the rule every budgeted method ends with: binarize in order until the
budget is met."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..precision import BINARY, Precision
from .budgets import Budget, fits

__all__ = ["BudgetUnreachableError", "Selection", "binarize_until_within"]


class BudgetUnreachableError(ValueError):
    """No plan the method may form meets the budget; the message gives the cheapest cost it could reach."""


@dataclass(frozen=True)
class Selection:
    method: str
    layers: dict[str, Precision]  # every layer -> its precision
    seconds: float  # wall time of the selection itself (scoring included, fine-tuning not)
    scores: dict[str, float] = field(default_factory=dict)  # the per-layer score the method ranked by, if any
    order: list[str] = field(default_factory=list)  # the order in which layers were taken
    details: dict[str, Any] = field(default_factory=dict)

    def binarized(self) -> list[str]:
        return [name for name, precision in self.layers.items() if precision.weights == "binary"]

    def provenance(self, budget: Budget, budget_text: str) -> dict[str, Any]:
        """What a plan file records of how it was chosen."""
        return {"method": self.method, "budget": budget_text, "cost": budget.cost(self.layers),
                "limit": budget.limit, "unit": budget.unit, "seconds": round(self.seconds, 3),
                "binarized": self.binarized(), "order": list(self.order),
                "scores": {name: float(score) for name, score in self.scores.items()}, **self.details}


def binarize_until_within(order: Sequence[str], start: Mapping[str, Precision], budget: Budget,
                          precision: Precision = BINARY, method: str = "selection") -> tuple[dict[str, Precision], list[str]]:
    """Set layers to `precision` in `order`, one at a time, until the plan fits the budget.

    Returns (plan, the layers taken). Raises BudgetUnreachableError, with the cost reached, if the whole order
    does not suffice.
    """
    layers = dict(start)
    taken: list[str] = []
    for name in order:
        if fits(budget, layers):
            break
        layers[name] = precision
        taken.append(name)
    if not fits(budget, layers):
        raise BudgetUnreachableError(
            f"{method}: with all {len(taken)} candidate layers at {precision.name} the network costs "
            f"{budget.cost(layers):,.0f} {budget.unit}, over the budget of {budget.limit:,.0f} "
            "(the first and last layers stay at full precision)")
    return layers, taken
