"""Hybrid Binary Networks' selection: the input binarization error, the metric, exact 1-D k-means, the ratio rule,
and the whole selection on a tiny ResNet-20 under FLOPs budgets."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from hbnn.quant.models import build_model
from hbnn.quant.precision import BINARY, INT8, WEIGHT_BINARY
from hbnn.quant.selection import BudgetUnreachableError, SelectionContext, fits, parse_budget, select
from hbnn.quant.selection.hbn import (achievable_ratios, clusters_for_ratio, hbn_metric, hbn_selection,
                                      input_binarization_error, kmeans_1d, layer_input_errors)

INPUT_SHAPE = (1, 8, 8)


# -- E ------------------------------------------------------------------------------------------------------------
def test_error_of_a_hand_computed_image():
    # alpha = 6/4 = 1.5; I_B = [1.5, -1.5, 1.5, 1.5] (sign(0) = +1); ||I - I_B||^2 = 0.25 + 2.25 + 2.25 + 0.25 = 5
    errors = input_binarization_error(torch.tensor([[1.0, -3.0, 0.0, 2.0]]))
    assert errors.shape == (1,)
    assert errors.item() == pytest.approx(math.sqrt(5) / 4, rel=1e-12)


def test_zero_binarizes_to_plus_or_minus_alpha_not_to_zero():
    # alpha = 0.5. hbnn's sign(0) = +1 gives I_B = [0.5, 0.5] and error sqrt(0.25 + 0.25) / 2; torch.sign's
    # sign(0) = 0 would give I_B = [0, 0.5] and 0.25. (sign(0) = -1 gives the same E as +1: |0 -+ alpha| = alpha.)
    error = input_binarization_error(torch.tensor([[0.0, 1.0]])).item()
    assert error == pytest.approx(math.sqrt(0.5) / 2, rel=1e-12)


def test_error_is_per_image_over_all_its_elements():
    batch = torch.tensor([[[1.0, -3.0], [0.0, 2.0]],   # the image above, as 2x2: n = 4
                          [[2.0, 2.0], [-2.0, 2.0]]])  # |I| constant: I = alpha sign(I) exactly
    errors = input_binarization_error(batch)
    assert errors.tolist() == pytest.approx([math.sqrt(5) / 4, 0.0], abs=1e-12)


def test_error_rejects_a_tensor_without_a_batch_dimension():
    with pytest.raises(ValueError, match="batch"):
        input_binarization_error(torch.tensor([1.0, 2.0]))


# -- M ------------------------------------------------------------------------------------------------------------
def test_metric_adds_gamma_over_flops():
    errors = {"a": 0.5, "b": 0.25}
    flops = {"a": 1000, "b": 4}
    assert hbn_metric(errors, flops, 0.0) == {"a": 0.5, "b": 0.25}
    assert hbn_metric(errors, flops, 2.0) == pytest.approx({"a": 0.5 + 0.002, "b": 0.25 + 0.5})


def test_metric_needs_flops_of_every_layer():
    with pytest.raises(ValueError, match="'b'"):
        hbn_metric({"a": 0.1, "b": 0.2}, {"a": 10}, 1.0)


# -- k-means ------------------------------------------------------------------------------------------------------
def test_kmeans_finds_the_obvious_groups():
    assert kmeans_1d([0, 0.1, 0.2, 5, 5.1, 10], 3) == [0, 0, 0, 1, 1, 2]
    # Input order is kept; clusters are numbered by mean, not by position.
    assert kmeans_1d([10, 5.1, 0, 5, 0.2, 0.1], 3) == [2, 1, 0, 1, 0, 0]
    assert kmeans_1d([3.0, 1.0, 2.0], 1) == [0, 0, 0]


def _within_cost(values, labels):
    cost = 0.0
    for cluster in set(labels):
        group = [value for value, label in zip(values, labels) if label == cluster]
        mean = sum(group) / len(group)
        cost += sum((value - mean) ** 2 for value in group)
    return cost


def _brute_force_cost(values, k):
    """Least within-cluster sum of squares over every split of the sorted values into k contiguous groups."""
    ordered = sorted(values)
    best = math.inf
    for cuts in itertools.combinations(range(1, len(ordered)), k - 1):
        bounds = (0, *cuts, len(ordered))
        labels = [group for group in range(k) for _ in range(bounds[group], bounds[group + 1])]
        best = min(best, _within_cost(ordered, labels))
    return best


@pytest.mark.parametrize("trial", range(5))
def test_kmeans_is_the_exact_optimum_and_deterministic(trial):
    rng = random.Random(trial)
    values = [rng.uniform(0, 1) for _ in range(8)]
    for k in range(1, 9):
        labels = kmeans_1d(values, k)
        assert sorted(set(labels)) == list(range(k))
        assert _within_cost(values, labels) == pytest.approx(_brute_force_cost(values, k), abs=1e-12)
        assert kmeans_1d(values, k) == labels


def test_kmeans_keeps_equal_values_together():
    assert kmeans_1d([1.0, 1.0, 4.0, 1.0], 2) == [0, 0, 1, 0]
    with pytest.raises(ValueError, match="distinct"):
        kmeans_1d([1.0, 1.0, 4.0], 3)


# -- the ratio rule -----------------------------------------------------------------------------------------------
# k = 1: all six layers (share 1); k = 2: {e, f} (2/6), the low four are tight; k = 3: {f} alone (1/6).
SCORES = {"a": 0.0, "b": 0.1, "c": 0.2, "d": 0.3, "e": 9.0, "f": 11.0}


def test_ratio_rule_takes_the_smallest_k_within_the_ratio():
    assert clusters_for_ratio(SCORES, 1.0) == (1, set(SCORES))
    assert clusters_for_ratio(SCORES, 0.5) == (2, {"e", "f"})
    assert clusters_for_ratio(SCORES, 2 / 6) == (2, {"e", "f"})
    assert clusters_for_ratio(SCORES, 0.2) == (3, {"f"})
    assert clusters_for_ratio(SCORES, 1 / 6) == (3, {"f"})


def test_ratio_below_one_layer_gives_no_cluster():
    assert clusters_for_ratio(SCORES, 0.1) == (None, set())
    assert clusters_for_ratio({"a": 1.0, "b": 1.0}, 0.9) == (None, set())  # ties cannot be split


def test_achievable_ratios_are_the_top_cluster_shares():
    assert achievable_ratios(SCORES) == pytest.approx([1.0, 2 / 6, 1 / 6])


# -- the selection on a tiny ResNet-20 ----------------------------------------------------------------------------
# Each selection runs the network twice (errors, MACs): the fixtures below run each one once per module.


@pytest.fixture(scope="module")
def context():
    torch.manual_seed(0)
    model = build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8)
    images = torch.randn(16, *INPUT_SHAPE)
    labels = torch.randint(0, 10, (16,))
    return SelectionContext(model, images, labels, batch_size=5)  # 5 + 5 + 5 + 1: averaging across batches


@pytest.fixture(scope="module")
def errors(context):
    return layer_input_errors(context)


@pytest.fixture(scope="module")
def run(context):
    """run(budget text, **params) -> the Selection, computed once per distinct call."""
    cache = {}

    def selection(text, **params):
        key = (text, tuple(sorted(params.items())))
        if key not in cache:
            cache[key] = select("hbn", context, budget(context, text), **params)
        return cache[key]
    return selection


def budget(context, text):
    return parse_budget(text).for_model(context.model, INPUT_SHAPE)


def plan_with(context, weight_binarized):
    layers = context.plan_with(context.candidates, BINARY)
    layers.update({name: WEIGHT_BINARY for name in weight_binarized})
    return layers


def test_errors_are_taken_on_each_layers_raw_input(context, errors):
    assert list(errors) == context.candidates
    with torch.no_grad():
        stem_output = context.model.stem(context.images)  # what stage1.0.conv1 reads, before its quantizer
    expected = input_binarization_error(stem_output).mean().item()
    assert errors["stage1.0.conv1"] == pytest.approx(expected, rel=1e-9)


def test_errors_do_not_depend_on_the_batch_size(context, errors):
    whole = SelectionContext(context.model, context.images, context.labels, batch_size=256)
    assert layer_input_errors(whole) == pytest.approx(errors, rel=1e-12)


def test_selection_weight_binarizes_the_top_cluster(context, errors, run):
    selection = run("flops:0.5", ratio=0.3)
    layers = selection.layers
    assert selection.method == "hbn" and list(layers) == context.layers
    assert layers["stem.conv"] == INT8 and layers["fc"] == INT8
    clusters, top = clusters_for_ratio(selection.scores, 0.3)
    assert top and len(top) <= 0.3 * len(context.candidates)
    assert {name for name in context.candidates if layers[name] == WEIGHT_BINARY} == top
    assert all(layers[name] == BINARY for name in context.candidates if name not in top)
    assert fits(budget(context, "flops:0.5"), layers)
    details = selection.details
    assert details["clusters"] == clusters and details["ratio"] == 0.3 and details["gamma"] == 0.0
    assert set(details["weight_binarized"]) == top
    assert details["errors"] == pytest.approx(errors, rel=1e-12)
    assert selection.scores == pytest.approx(errors, rel=1e-12)  # gamma = 0: M = E
    assert selection.order == sorted(context.candidates, key=lambda name: -selection.scores[name])
    # The top cluster holds the highest scores.
    assert min(selection.scores[name] for name in top) > max(
        selection.scores[name] for name in context.candidates if name not in top)


def test_gamma_adds_over_each_layers_macs(context, errors, run):
    selection = run("flops:1", gamma=1000.0, ratio=1.0)
    assert selection.scores["stage2.0.conv1"] == pytest.approx(errors["stage2.0.conv1"] + 1000.0 / 73728)
    assert selection.scores["stage2.0.conv2"] == pytest.approx(errors["stage2.0.conv2"] + 1000.0 / 147456)
    assert selection.details["clusters"] == 1  # ratio 1: one cluster, every candidate weight-binarized
    assert all(selection.layers[name] == WEIGHT_BINARY for name in context.candidates)


def test_ratio_below_one_layer_fully_binarizes_every_candidate(context, run):
    selection = run("flops:0.5", ratio=0.01)
    assert all(selection.layers[name] == BINARY for name in context.candidates)
    assert selection.details["clusters"] is None and selection.details["weight_binarized"] == []
    assert "fully binarized" in selection.details["note"]


def test_a_given_ratio_over_the_budget_is_an_error(context):
    with pytest.raises(BudgetUnreachableError, match=r"ratio 1 .* over the budget"):
        hbn_selection(context, budget(context, "flops:0.2"), ratio=1.0)


BUDGETS = ("flops:0.1", "flops:0.3", "flops:0.6", "flops:1")


@pytest.mark.parametrize("text", BUDGETS)
def test_without_a_ratio_the_largest_fitting_share_is_taken(context, run, text):
    flops = budget(context, text)
    selection = run(text)
    assert fits(flops, selection.layers)
    chosen = selection.details["ratio"]
    # the plan is the rule's own at the ratio chosen, and no larger achievable share fits
    top = clusters_for_ratio(selection.scores, chosen)[1]
    assert set(selection.details["weight_binarized"]) == top
    assert selection.layers == plan_with(context, top)
    for larger in (ratio for ratio in achievable_ratios(selection.scores) if ratio > chosen):
        assert not fits(flops, plan_with(context, clusters_for_ratio(selection.scores, larger)[1]))


def test_a_tighter_budget_weight_binarizes_no_more_layers(context, run):
    counts = [len(run(text).details["weight_binarized"]) for text in BUDGETS]
    assert counts == sorted(counts)
    assert counts[-1] == len(context.candidates)  # the whole network fits: one cluster, every layer
    assert counts[0] < counts[2]


def test_a_budget_even_full_binarization_misses_is_an_error(context):
    # all candidates binary: stem + fc MACs + the rest / 64, about 1.9% of the full-precision FLOPs
    with pytest.raises(BudgetUnreachableError, match="fully binarized"):
        hbn_selection(context, budget(context, "flops:0.01"))


def test_selection_leaves_the_model_as_it_was(context):
    context.model.train()
    try:
        hbn_selection(context, budget(context, "flops:1"), ratio=0.5)
        assert all(module.training for module in context.model.modules())
        assert not any(module._forward_pre_hooks for module in context.model.modules())
    finally:
        context.model.eval()


def test_parameters_are_checked(context):
    with pytest.raises(ValueError, match="ratio"):
        hbn_selection(context, budget(context, "flops:0.5"), ratio=1.5)
    with pytest.raises(ValueError, match="gamma"):
        hbn_selection(context, budget(context, "flops:0.5"), gamma=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        hbn_selection(context, budget(context, "flops:0.5"), gamma=math.inf)
