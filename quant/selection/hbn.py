"""Hybrid Binary Networks' layer selection (Prabhu, Batchu, Gajawada, Munagala, Namboodiri, WACV 2018).

A layer whose input loses much when binarized should keep that input at higher precision. For each candidate
layer (the first and last stay full precision) the input binarization error is

    E = ||I - I_B||_2 / n,    I_B = alpha * sign(I),  alpha = mean|I|,  n = number of elements of I,

per calibration image, averaged over the images; I is the layer's input as the trained full-precision network
computes it. The metric M = E + gamma / NF (NF: the layer's full-precision FLOPs, i.e. its MACs per image) also
favours cheap layers. The scores M are clustered by k-means with the smallest k whose highest-mean cluster holds
at most a share R (the hybridization ratio) of the candidates; that cluster's layers are weight-binarized (binary
weights, 8-bit inputs), all other candidates fully binarized.

Readings of the paper made here:
* k-means is the exact 1-D optimum (dynamic programming over the sorted scores), so that the result is
  deterministic; equal scores always share a cluster (it runs on the distinct scores weighted by their counts),
  so k goes from 1 to the number of distinct scores.
* With no ratio given, R is the largest share the rule can produce whose plan fits the budget (weight-binarized
  layers cost their MACs as FLOPs, fully binarized ones BOPs / 64); the all-fully-binarized plan is the last resort.
* sign(0) = +1, as everywhere in hbnn.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

from ..exact_ops import value_of
from ..metrics import measure
from ..precision import BINARY, WEIGHT_BINARY, Precision
from .budgets import Budget, fits
from .context import SelectionContext
from .result import BudgetUnreachableError, Selection

__all__ = ["achievable_ratios", "clusters_for_ratio", "hbn_metric", "hbn_selection", "input_binarization_error",
           "kmeans_1d", "layer_input_errors"]

METHOD = "hbn"


# -- the input binarization error ---------------------------------------------------------------------------------
def input_binarization_error(inputs: torch.Tensor) -> torch.Tensor:
    """Per-image E = ||I - alpha sign(I)||_2 / n of a batch (N, ...), alpha = mean|I| per image; shape (N,)."""
    if inputs.dim() < 2 or inputs.shape[0] == 0 or inputs[0].numel() == 0:
        raise ValueError(f"input_binarization_error needs a batch (N, ...) of non-empty images, "
                         f"not a tensor of shape {tuple(inputs.shape)}")
    images = inputs.detach().flatten(1).double()  # float64: the errors are small differences of large sums
    alpha = images.abs().mean(dim=1, keepdim=True)
    signs = torch.where(images >= 0, 1.0, -1.0).to(images.dtype)  # sign(0) = +1
    return torch.linalg.vector_norm(images - alpha * signs, dim=1) / images.shape[1]


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the capture; each module's training flag is restored afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def layer_input_errors(context: SelectionContext) -> dict[str, float]:
    """{candidate layer: E averaged over the calibration images}, from the trained full-precision model.

    A forward pre-hook sees the raw input of the Brevitas layer, before its own input quantizer: the tensor the
    layer would binarize.
    """
    totals = {name: 0.0 for name in context.candidates}

    def hook_for(name: str):
        def record(module: nn.Module, args: tuple) -> None:
            totals[name] += float(input_binarization_error(value_of(args[0])).sum())
        return record

    handles = [context.model.get_submodule(name).register_forward_pre_hook(hook_for(name))
               for name in context.candidates]
    try:
        with _eval_mode(context.model), torch.no_grad():
            for images, _ in context.batches():
                context.model(images)
    finally:
        for handle in handles:
            handle.remove()
    return {name: total / len(context.images) for name, total in totals.items()}


def hbn_metric(errors: Mapping[str, float], flops: Mapping[str, float], gamma: float) -> dict[str, float]:
    """M = E + gamma / NF per layer (NF: full-precision FLOPs); a large gamma favours cheap layers."""
    missing = [name for name in errors if name not in flops]
    if missing:
        raise ValueError(f"hbn_metric: no FLOPs for layer {missing[0]!r}")
    zero = [name for name in errors if not flops[name] > 0]
    if zero:
        raise ValueError(f"hbn_metric: layer {zero[0]!r} has {flops[zero[0]]!r} FLOPs; gamma / NF needs NF > 0")
    return {name: float(error) + gamma / float(flops[name]) for name, error in errors.items()}


# -- exact 1-D k-means --------------------------------------------------------------------------------------------
def _group_costs(values: Sequence[float], weights: Sequence[int]) -> list[list[float]]:
    """cost[i][j]: weighted within-group sum of squares of sorted values[i:j], computed from the group's own mean
    (prefix-sum formulas cancel badly when the scores are close together)."""
    count = len(values)
    cost = [[0.0] * (count + 1) for _ in range(count + 1)]
    for start in range(count):
        for end in range(start + 1, count + 1):
            group = range(start, end)
            mean = sum(weights[i] * values[i] for i in group) / sum(weights[i] for i in group)
            cost[start][end] = sum(weights[i] * (values[i] - mean) ** 2 for i in group)
    return cost


def _optimal_boundaries(values: Sequence[float], weights: Sequence[int], k: int) -> list[int]:
    """Start indices of the k contiguous groups of sorted `values` minimizing the within-group sum of squares.

    best[m][j]: least cost of splitting values[:j] into m groups. On equal costs the earliest split wins, so the
    result depends on the values alone.
    """
    count = len(values)
    cost = _group_costs(values, weights)
    best = [[math.inf] * (count + 1) for _ in range(k + 1)]
    split = [[0] * (count + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for groups in range(1, k + 1):
        for end in range(groups, count + 1):
            for start in range(groups - 1, end):
                total = best[groups - 1][start] + cost[start][end]
                if total < best[groups][end]:
                    best[groups][end], split[groups][end] = total, start
    starts, end = [], count
    for groups in range(k, 0, -1):
        end = split[groups][end]
        starts.append(end)
    return starts[::-1]


def kmeans_1d(values: Sequence[float], k: int) -> list[int]:
    """Exact k-means of 1-D values: the cluster (0 = lowest mean .. k-1 = highest) of each value, in input order.

    Equal values always share a cluster, so k may be at most the number of distinct values.
    """
    values = [float(value) for value in values]
    distinct = sorted(set(values))
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(distinct):
        raise ValueError(f"k-means of {len(distinct)} distinct value(s) needs k in 1..{len(distinct)}, not {k!r}")
    weights = [values.count(value) for value in distinct]
    starts = _optimal_boundaries(distinct, weights, k)
    cluster_of = {value: sum(1 for start in starts if start <= index) - 1 for index, value in enumerate(distinct)}
    return [cluster_of[value] for value in values]


def clusters_for_ratio(scores: Mapping[str, float], ratio: float) -> tuple[int | None, set[str]]:
    """(k, the layers of the highest-mean cluster) for the smallest k whose top cluster holds at most a share
    `ratio` of the layers; (None, empty set) if no k does (ratio below 1 / number of layers, or ties)."""
    names = list(scores)
    values = [scores[name] for name in names]
    for k in range(1, len(set(values)) + 1):
        labels = kmeans_1d(values, k)
        top = {name for name, label in zip(names, labels) if label == k - 1}
        if len(top) / len(names) <= ratio:  # the same division achievable_ratios makes: j / L <= j / L
            return k, top
    return None, set()


def achievable_ratios(scores: Mapping[str, float]) -> list[float]:
    """The shares of layers in the top cluster that some k gives, largest first."""
    values = list(scores.values())
    sizes = {kmeans_1d(values, k).count(k - 1) for k in range(1, len(set(values)) + 1)}
    return sorted((size / len(values) for size in sizes), reverse=True)


# -- the selection ------------------------------------------------------------------------------------------------
def _check_number(name: str, value: object, low: float, high: float = math.inf) -> float:
    valid = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not (valid and low <= value <= high):
        bounds = f"in [{low:g}, {high:g}]" if high < math.inf else f">= {low:g} and finite"
        raise ValueError(f"hbn: {name} must be a number {bounds}, not {value!r}")
    return float(value)


def _plan(context: SelectionContext, weight_binarized: set[str]) -> dict[str, Precision]:
    layers = context.plan_with(context.candidates, BINARY)
    for name in weight_binarized:
        layers[name] = WEIGHT_BINARY
    return layers


def _require_reachable(context: SelectionContext, budget: Budget) -> None:
    """Every candidate fully binarized is the cheapest plan; checked before scoring, which runs the network."""
    cheapest = _plan(context, set())
    if not fits(budget, cheapest):
        raise BudgetUnreachableError(
            f"{METHOD}: with all {len(context.candidates)} candidate layers fully binarized the network costs "
            f"{budget.cost(cheapest):,.0f} {budget.unit}, over the budget of {budget.limit:,.0f} "
            "(the first and last layers stay at full precision)")


def _choose_ratio(context: SelectionContext, scores: Mapping[str, float], budget: Budget) -> float:
    """The largest achievable share whose plan fits the budget, or 0: every candidate fully binarized (which
    _require_reachable has checked fits)."""
    for ratio in achievable_ratios(scores):
        if fits(budget, _plan(context, clusters_for_ratio(scores, ratio)[1])):
            return ratio
    return 0.0


def hbn_selection(context: SelectionContext, budget: Budget, *, seed: int = 0, gamma: float = 0.0,
                  ratio: float | None = None) -> Selection:
    """Hybrid Binary Networks: the top k-means cluster of M = E + gamma / NF is weight-binarized, the other
    candidates fully binarized. `ratio` fixes the hybridization ratio R (the plan must still fit the budget);
    without it R is the largest achievable share that fits. Deterministic: `seed` is accepted and unused."""
    started = time.perf_counter()
    gamma = _check_number("gamma", gamma, 0.0)
    if ratio is not None:
        ratio = _check_number("ratio", ratio, 0.0, 1.0)
    else:
        _require_reachable(context, budget)
    errors = layer_input_errors(context)
    macs = {layer.name: layer.macs for layer in measure(context.model, context.input_shape).layers}
    scores = hbn_metric(errors, macs, gamma)
    chosen = _choose_ratio(context, scores, budget) if ratio is None else ratio
    clusters, top = clusters_for_ratio(scores, chosen)
    layers = _plan(context, top)
    if ratio is not None and not fits(budget, layers):
        raise BudgetUnreachableError(
            f"{METHOD}: at ratio {ratio:g} ({len(top)} of {len(scores)} candidates weight-binarized) the network "
            f"costs {budget.cost(layers):,.0f} {budget.unit}, over the budget of {budget.limit:,.0f}")
    details = {"gamma": gamma, "ratio": chosen, "clusters": clusters, "errors": errors,
               "weight_binarized": [name for name in context.candidates if name in top]}
    if clusters is None:
        details["note"] = (f"no clustering puts a share <= {chosen:g} of the candidates in the top cluster: "
                           "every candidate is fully binarized")
    return Selection(method=METHOD, layers=layers, seconds=time.perf_counter() - started, scores=scores,
                     order=sorted(context.candidates, key=lambda name: -scores[name]), details=details)
