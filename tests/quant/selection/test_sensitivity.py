"""Sensitivity baselines: BNAS's amplitude by hand, Hutchinson's trace against the exact Hessian, HAWQ-v2 plans."""
import math

import pytest
import torch
import torch.nn.functional as F

from hbnn.quant.models import build_model
from hbnn.quant.precision import BINARY
from hbnn.quant.selection import FlopsBudget, SelectionContext, fits, select
from hbnn.quant.selection.sensitivity import binarization_error, bnas_amplitude, float_twin, hutchinson_traces


def tiny_context(images=24, seed=0):
    torch.manual_seed(seed)
    model = build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8)
    generator = torch.Generator().manual_seed(seed)
    return SelectionContext(model, torch.randn(images, 1, 8, 8, generator=generator),
                            torch.randint(0, 10, (images,), generator=generator), batch_size=12)


def budget_of(context, fraction):
    return FlopsBudget.for_model(context.model, context.input_shape, fraction)


def test_binarization_error_by_hand():
    weight = torch.tensor([1.0, -3.0, 0.0, 2.0])  # alpha = 1.5; sign(0) = +1
    error = binarization_error(weight)
    assert error.tolist() == [0.5, 1.5, 1.5, -0.5]
    assert float(error.norm()) == pytest.approx(math.sqrt(5))


def test_bnas_scores_are_the_unnormalized_amplitudes_and_set_the_order():
    context = tiny_context()
    pattern = torch.tensor([1.0, -3.0, 0.0, 2.0])
    candidates = context.candidates
    expected = {}
    with torch.no_grad():
        for rank, name in enumerate(candidates):
            weight = context.model.get_submodule(name).weight
            factor = 0.01 * (len(candidates) - rank)  # later layers get smaller amplitudes
            weight.copy_(factor * pattern.repeat(weight.numel() // 4).view_as(weight))
            expected[name] = factor * math.sqrt(5 * weight.numel() / 4)  # not normalized by the size
    selection = bnas_amplitude(context, budget_of(context, 0.5))
    assert selection.method == "bnas"
    assert selection.scores == pytest.approx(expected, rel=1e-6)
    ascending = sorted(candidates, key=expected.__getitem__)
    assert ascending != candidates  # the order comes from the scores, not from forward order
    assert selection.order == ascending[:len(selection.order)]
    assert set(selection.binarized()) == set(selection.order)
    assert all(selection.layers[name] == BINARY for name in selection.order)
    assert fits(budget_of(context, 0.5), selection.layers)


def test_bnas_takes_an_exactly_binary_layer_first():
    context = tiny_context()
    name = context.candidates[-3]
    with torch.no_grad():
        weight = context.model.get_submodule(name).weight
        weight.copy_(torch.where(torch.rand_like(weight) < 0.5, -0.25, 0.25))
    selection = select("bnas", context, budget_of(context, 0.9))
    assert selection.scores[name] == 0.0
    assert selection.order[0] == name


def _tiny_network_loss(w1, w2, x, y):
    return F.cross_entropy(torch.tanh(x @ w1.T) @ w2.T, y)


def _exact_block_statistics(w1, w2, x, y):
    """Exact Tr(H_jj) of each block, and the variance of one Hutchinson sample v_j^T (H v)_j for Rademacher v."""
    hessian = torch.autograd.functional.hessian(lambda a, b: _tiny_network_loss(a, b, x, y), (w1, w2))
    sizes = [w1.numel(), w2.numel()]
    full = torch.cat([torch.cat([hessian[i][k].reshape(sizes[i], sizes[k]) for k in range(2)], dim=1)
                      for i in range(2)])
    traces, variances, start = [], [], 0
    for size in sizes:
        rows = full[start:start + size]
        inside = rows[:, start:start + size]
        traces.append(float(inside.trace()))
        # Distinct pairs {a, b} with a in the block: coefficient H_ab + H_ba = 2 H_ab inside, H_ab outside.
        off_inside = (inside - torch.diag(inside.diagonal())).square().sum() / 2 * 4
        outside = rows.square().sum() - inside.square().sum()
        variances.append(float(off_inside + outside))
        start += size
    return traces, variances


def test_hutchinson_trace_matches_the_exact_hessian_trace():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    w1 = torch.randn(4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(2, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    exact, variances = _exact_block_statistics(w1.detach(), w2.detach(), x, y)
    samples = 3000
    estimates = hutchinson_traces([_tiny_network_loss(w1, w2, x, y)], [w1, w2], n_samples=samples,
                                  generator=torch.Generator().manual_seed(1))
    for estimate, trace, variance in zip(estimates, exact, variances):
        tolerance = 5 * math.sqrt(variance / samples)  # five standard deviations of the mean
        assert abs(trace) > 3 * tolerance  # so that the check can fail
        assert estimate == pytest.approx(trace, abs=tolerance)


def test_hutchinson_sums_loss_terms_with_the_same_vectors():
    # hawq_v2 passes one loss term per calibration batch; the estimate is the one for their sum.
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, 4, dtype=torch.float64)
    terms = lambda: (torch.tanh(x[part] @ w.T).square().sum() for part in (slice(0, 2), slice(2, 5)))  # noqa: E731
    separate = hutchinson_traces(terms(), [w], n_samples=5, generator=torch.Generator().manual_seed(2))
    summed = hutchinson_traces([sum(terms())], [w], n_samples=5, generator=torch.Generator().manual_seed(2))
    assert separate == pytest.approx(summed, rel=1e-12)


def test_hutchinson_of_a_quadratic_is_exact_on_a_diagonal_hessian():
    # L = sum_i c_i w_i^2 / 2 has H = diag(c): v^T H v = sum c_i for every Rademacher v.
    c = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    traces = hutchinson_traces([(c * w.square()).sum() / 2], [w], n_samples=3, generator=torch.Generator())
    assert traces == pytest.approx([2.5], abs=1e-12)


def test_hutchinson_is_deterministic_per_seed():
    w = torch.randn(5, 5, dtype=torch.float64, requires_grad=True)

    def traces(seed):
        loss = torch.tanh(w @ w).sum()
        return hutchinson_traces([loss], [w], n_samples=3, generator=torch.Generator().manual_seed(seed))

    assert traces(3) == traces(3)
    assert traces(3) != traces(4)


def test_float_twin_has_float_layers_and_the_trained_weights():
    context = tiny_context()
    twin = float_twin(context)
    for name in context.layers:
        layer = twin.get_submodule(name)
        assert layer.precision.name == "float"
        assert torch.equal(layer.weight, context.model.get_submodule(name).weight)


def test_hawq_v2_plan_fits_the_budget_and_keeps_first_and_last_layers():
    context = tiny_context()
    budget = budget_of(context, 0.4)
    selection = select("hawq-v2", context, budget, seed=0, n_samples=4, max_batches=2)
    assert selection.method == "hawq-v2"
    assert fits(budget, selection.layers)
    assert set(selection.layers) == set(context.layers)
    for kept in (context.layers[0], context.layers[-1]):
        assert selection.layers[kept] == context.model.precision_of(kept)
        assert kept not in selection.scores
    assert set(selection.scores) == set(context.candidates)
    assert all(math.isfinite(score) for score in selection.scores.values())
    ascending = sorted(context.candidates, key=selection.scores.__getitem__)
    assert selection.order == ascending[:len(selection.order)]
    assert selection.details["calibration_images"] == 24
    again = select("hawq-v2", context, budget, seed=0, n_samples=4, max_batches=2)
    assert again.scores == selection.scores


def test_hawq_v2_score_is_mean_trace_times_squared_error():
    context = tiny_context()
    selection = select("hawq-v2", context, budget_of(context, 0.9), seed=1, n_samples=2, max_batches=1)
    assert selection.details["calibration_images"] == 12
    for name in context.candidates:
        weight = context.model.get_submodule(name).weight.double()
        expected = (selection.details["hessian_traces"][name] / weight.numel()
                    * float(binarization_error(weight).square().sum()))
        assert selection.scores[name] == pytest.approx(expected, rel=1e-12)


def test_hawq_v2_rejects_bad_sample_counts():
    context = tiny_context()
    with pytest.raises(ValueError, match="n_samples"):
        select("hawq-v2", context, budget_of(context, 0.5), n_samples=0)
