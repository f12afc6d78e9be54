"""The registry of selection methods: name -> function(context, budget, *, seed, **params) -> Selection."""

from __future__ import annotations

import importlib
from typing import Any, Callable

from ..plan import PrecisionPlan
from .budgets import Budget
from .context import SelectionContext
from .result import Selection

__all__ = ["METHODS", "plan_of", "select"]

# name -> (module, function). Imported on use, so that one method's dependencies never slow the others.
METHODS: dict[str, tuple[str, str]] = {
    "hbn": ("hbn", "hbn_selection"),
    "mixbin-loss": ("mixbin", "mixbin_loss"),
    "mixbin-grad": ("mixbin", "mixbin_grad"),
    "random": ("baselines", "random_selection"),
    "front": ("baselines", "front_binarized"),
    "rear": ("baselines", "rear_binarized"),
    "iterative": ("baselines", "iterative_greedy"),
    "pseudo-random": ("baselines", "pseudo_random"),
    "bnas": ("sensitivity", "bnas_amplitude"),
    "hawq-v2": ("sensitivity", "hawq_v2"),
}


def method_function(name: str) -> Callable[..., Selection]:
    if name not in METHODS:
        raise ValueError(f"unknown selection method {name!r}; methods: {', '.join(METHODS)}")
    module, function = METHODS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


def select(name: str, context: SelectionContext, budget: Budget, *, seed: int = 0, **params: Any) -> Selection:
    """Run selection method `name` on the context under the budget."""
    return method_function(name)(context, budget, seed=seed, **params)


def plan_of(context: SelectionContext, selection: Selection, budget: Budget, budget_text: str) -> PrecisionPlan:
    """The PrecisionPlan of a selection, with its provenance (method, budget, scores, time)."""
    base = PrecisionPlan.from_model(context.model)
    return base.with_layers(selection.layers, selection=selection.provenance(budget, budget_text))
