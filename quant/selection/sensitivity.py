"""Sensitivity baselines: rank layers by a per-layer score and binarize the least sensitive first.

bnas     BNAS's criterion as MixBin describes it: the L2 amplitude of the binarization error of the weights.
hawq-v2  HAWQ-v2 (Dong et al. 2020): the average Hessian trace of the layer times its squared binarization error.

Both score every candidate layer once, sort ascending (ties in forward order) and binarize along that order until
the budget is met. Binarizing means BINARY (binary weights on sign inputs), with B(W) = alpha * sign(W),
alpha = mean |W| and sign(0) = +1, the approximation a binary layer with a weight scale makes of W.
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .budgets import Budget
from .context import SelectionContext, batch_statistics, transfer_weights
from .result import Selection, binarize_until_within

__all__ = ["binarization_error", "bnas_amplitude", "float_twin", "hawq_v2", "hutchinson_traces"]


def binarization_error(weight: torch.Tensor) -> torch.Tensor:
    """B(W) - W with B(W) = alpha * sign(W), alpha = mean |W| over the whole tensor, sign(0) = +1."""
    weight = weight.detach()
    alpha = weight.abs().mean()
    signs = torch.where(weight >= 0, 1.0, -1.0).to(weight.dtype)
    return alpha * signs - weight


def bnas_amplitude(context: SelectionContext, budget: Budget, *, seed: int = 0) -> Selection:
    """BNAS: score = ||W - alpha * sign(W)||_2 of each candidate layer's full-precision weight W.

    This is the L2 amplitude of the binarization error as the MixBin paper describes BNAS's criterion, taken on
    the latent float weights (`module.weight`) of the trained network. It is not normalized by the number of
    weights, so larger layers tend to score higher and to be binarized later. Deterministic: `seed` is unused.
    """
    started = time.perf_counter()
    scores = {name: float(binarization_error(_weight(context, name)).norm()) for name in context.candidates}
    return _binarize_by_score("bnas", context, budget, scores, started)


def hawq_v2(context: SelectionContext, budget: Budget, *, seed: int = 0, n_samples: int = 16,
            max_batches: int | None = 2) -> Selection:
    """HAWQ-v2: Omega_j = Tr(H_j) / n_j * ||B(W_j) - W_j||_2^2 for each candidate layer j.

    H_j is the Hessian of the calibration loss (mean cross-entropy) with respect to layer j's n_j weights. Its
    trace is estimated with Hutchinson's method: Tr(H_j) ~ mean over `n_samples` Rademacher vectors v of
    v_j^T (H v)_j, the Hessian-vector products taken by double backpropagation. One v covers all candidate layers
    at once (one Hessian-vector product per sample, not one per layer); the cross-layer terms of v_j^T (H v)_j
    vanish in expectation, so each block trace stays unbiased, at the price of some variance. The vectors come
    from a torch.Generator seeded with `seed`.

    Second derivatives through Brevitas' int8 quantizers (straight-through estimators) are not meaningful, so the
    Hessian is taken on a float twin of the network (`float_twin`: every layer float, the trained latent weights
    copied in), with batch-norm normalizing by each batch's statistics as `SelectionContext.loss` does. The loss
    is over the first `max_batches` calibration batches (None: all), weighted by their sizes. The trace is not
    clipped: a layer whose estimate is negative (the loss is not convex there) scores below zero and goes first.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, not {n_samples!r}")
    if max_batches is not None and (isinstance(max_batches, bool) or not isinstance(max_batches, int)
                                    or max_batches < 1):
        raise ValueError(f"max_batches must be a positive integer or None, not {max_batches!r}")
    started = time.perf_counter()
    twin = float_twin(context)
    modules = dict(twin.named_modules())
    weights = [modules[name].weight for name in context.candidates]
    batches = list(context.batches())[:max_batches]
    images_used = sum(len(images) for images, _ in batches)
    device = weights[0].device

    def losses() -> Iterable[torch.Tensor]:
        for images, labels in batches:
            logits = twin(images.to(device))
            yield F.cross_entropy(logits, labels.to(device), reduction="sum") / images_used

    generator = torch.Generator().manual_seed(seed)
    with batch_statistics(twin), torch.enable_grad():
        traces = hutchinson_traces(losses(), weights, n_samples=n_samples, generator=generator)
    traces = dict(zip(context.candidates, traces))
    scores = {name: traces[name] / _weight(context, name).numel()
              * float(binarization_error(_weight(context, name)).square().sum())
              for name in context.candidates}
    details = {"n_samples": n_samples, "calibration_images": images_used, "hessian": "float twin, batch statistics",
               "hessian_traces": traces}
    return _binarize_by_score("hawq-v2", context, budget, scores, started, details)


def hutchinson_traces(losses: Iterable[torch.Tensor], parameters: Sequence[torch.Tensor], *, n_samples: int,
                      generator: torch.Generator) -> list[float]:
    """Hutchinson estimates of Tr(d^2 L / d theta_j^2) for each tensor theta_j in `parameters`, L = sum(losses).

    `losses` may be a generator yielding one scalar at a time (one calibration batch each), so that only one
    batch's graph is alive at once. The same `n_samples` Rademacher vectors v (drawn from `generator`, in order:
    sample by sample, parameter by parameter) are used for every loss term, so the result is the estimate for L:
    Tr_j ~ mean_v sum_terms v_j^T (H_term v)_j.
    """
    parameters = list(parameters)
    vectors = [[_rademacher(parameter, generator) for parameter in parameters] for _ in range(n_samples)]
    sums = torch.zeros(n_samples, len(parameters), dtype=torch.float64)
    for loss in losses:
        gradients = torch.autograd.grad(loss, parameters, create_graph=True, allow_unused=True)
        # A gradient that does not depend on any parameter (None, or constant) has a zero Hessian row.
        live = [index for index, gradient in enumerate(gradients) if gradient is not None and gradient.requires_grad]
        if not live:
            continue
        for sample, vector in enumerate(vectors):
            products = torch.autograd.grad([gradients[index] for index in live], parameters,
                                           grad_outputs=[vector[index] for index in live], allow_unused=True,
                                           retain_graph=sample < n_samples - 1)
            for index, (product, v) in enumerate(zip(products, vector)):
                if product is not None:
                    sums[sample, index] += float((product * v).sum())
    return sums.mean(dim=0).tolist()


def float_twin(context: SelectionContext) -> nn.Module:
    """The context's network rebuilt with every layer float (nn.Conv2d/nn.Linear), the trained weights copied."""
    from ..models import model_from_config

    config = context.model.config()
    config = {**config, "precision": "fp", "full_precision": "float",
              "options": {**config["options"], "layer_precisions": {}}}
    twin = model_from_config(config)
    transfer_weights(context.model, twin)
    parameter = next(context.model.parameters())
    return twin.to(device=parameter.device, dtype=parameter.dtype).eval()


def _weight(context: SelectionContext, name: str) -> torch.Tensor:
    """The layer's latent float weight, in float64 so that the scores' sums lose nothing to rounding."""
    return context.model.get_submodule(name).weight.detach().double()


def _rademacher(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    signs = torch.randint(0, 2, like.shape, generator=generator) * 2 - 1
    return signs.to(device=like.device, dtype=like.dtype)


def _binarize_by_score(method: str, context: SelectionContext, budget: Budget, scores: dict[str, float],
                       started: float, details: dict | None = None) -> Selection:
    """Lowest score first (ties in forward order), binarized until the budget is met."""
    order = sorted(context.candidates, key=scores.__getitem__)
    layers, taken = binarize_until_within(order, context.full_precision, budget, method=method)
    return Selection(method=method, layers=layers, seconds=time.perf_counter() - started, scores=scores,
                     order=taken, details=dict(details or {}))
