"""MixBin (Bamba et al., "Partial Binarization of Neural Networks for Budget-Aware Efficient Learning", WACV 2024):
score every candidate layer by what binarizing it alone does to the trained network, then binarize the least
sensitive layers first until the budget is met. One pass over the layers, no retraining.

  kappa_loss_j = L(only j binarized) - L(full precision)
  kappa_grad_j = kappa_loss_j * ||g_j . B_j||_2

L is the calibration loss (SelectionContext.loss: mean cross-entropy, batch-norm on batch statistics), g_j the
gradient of L with respect to layer j's latent weights in the network with only j binarized, B_j = sign(W_j) the
binarized weights (sign(0) = +1).
"""

from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .budgets import Budget
from .context import SelectionContext, batch_statistics
from .result import Selection, binarize_until_within

__all__ = ["binarized_gradient_norm", "kappa_grad", "kappa_loss", "mixbin_grad", "mixbin_loss"]


def kappa_loss(context: SelectionContext) -> dict[str, float]:
    """Loss change when only layer j is binarized, every other layer at full precision, for each candidate j."""
    reference = context.loss()
    return {name: context.loss_with([name]) - reference for name in context.candidates}


def kappa_grad(context: SelectionContext) -> dict[str, float]:
    """kappa_loss_j x ||g_j . B_j||_2 for each candidate j.

    The paper's "||gradient . binarized weights||" is read as the L2 norm of the elementwise product of the
    gradient g_j and the binarized weights B_j. As every entry of B_j is +-1, that norm equals ||g_j||_2: the
    factor measures how steep the loss is at the binarized layer, not how well g_j and B_j align.
    """
    reference = context.loss()
    scores = {}
    for name in context.candidates:
        model = context.model_with(context.plan_with([name]))  # built once for both factors
        scores[name] = (context.loss(model) - reference) * binarized_gradient_norm(context, model, name)
    return scores


def binarized_gradient_norm(context: SelectionContext, model: nn.Module, layer: str) -> float:
    """||g . sign(W)||_2 of `layer` in `model`: g the gradient of the mean calibration loss w.r.t. its weights."""
    weight = model.get_submodule(layer).weight
    signs = torch.where(weight >= 0, 1.0, -1.0)  # sign(0) = +1, as BinaryWeight binarizes
    return float(torch.linalg.vector_norm(mean_loss_gradient(context, model, weight) * signs))


def mean_loss_gradient(context: SelectionContext, model: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """Gradient of the mean cross-entropy over all calibration images w.r.t. `weight`, batch-norm on each
    batch's statistics as in context.loss: the batches' summed losses over N, accumulated batch by batch."""
    gradient = torch.zeros_like(weight)
    with batch_statistics(model), torch.enable_grad():
        for images, labels in context.batches():
            loss = F.cross_entropy(model(images), labels, reduction="sum") / len(context.images)
            gradient += torch.autograd.grad(loss, weight)[0]
    return gradient


def mixbin_loss(context: SelectionContext, budget: Budget, *, seed: int = 0) -> Selection:
    """MixBin ranking layers by kappa_loss. `seed` is unused: the method is deterministic."""
    return _mixbin("mixbin-loss", kappa_loss, context, budget)


def mixbin_grad(context: SelectionContext, budget: Budget, *, seed: int = 0) -> Selection:
    """MixBin ranking layers by kappa_grad. `seed` is unused: the method is deterministic."""
    return _mixbin("mixbin-grad", kappa_grad, context, budget)


def _mixbin(method: str, score: Callable[[SelectionContext], dict[str, float]], context: SelectionContext,
            budget: Budget) -> Selection:
    start = time.perf_counter()
    # Scoring costs a network per layer: find out first whether any plan can meet the budget.
    binarize_until_within(context.candidates, context.full_precision, budget, method=method)
    scores = score(context)
    ranking = sorted(context.candidates, key=scores.__getitem__)  # a stable sort: ties keep forward order
    layers, taken = binarize_until_within(ranking, context.full_precision, budget, method=method)
    return Selection(method, layers, time.perf_counter() - start, scores=scores, order=taken,
                     details={"ranking": ranking})
