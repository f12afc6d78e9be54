"""Which layers to binarize: Hybrid Binary Networks, MixBin, their baselines, under FLOPs or hardware budgets.

    context = SelectionContext(trained_fp_model, calibration_images, labels)
    budget = parse_budget("flops:0.3").for_model(context.model, context.input_shape)
    selection = select("mixbin-grad", context, budget)
    plan = plan_of(context, selection, budget, "flops:0.3")   # a PrecisionPlan, saved as JSON
"""

from .budgets import BUDGET_KINDS, Budget, BudgetSpec, FlopsBudget, fits, parse_budget, register_budget
from .context import SelectionContext, batch_statistics, transfer_weights
from .methods import METHODS, plan_of, select
from .result import BudgetUnreachableError, Selection, binarize_until_within

__all__ = [
    "BUDGET_KINDS", "Budget", "BudgetSpec", "BudgetUnreachableError", "FlopsBudget", "METHODS", "Selection",
    "SelectionContext", "batch_statistics", "binarize_until_within", "fits", "parse_budget", "plan_of",
    "register_budget", "select", "transfer_weights",
]
