"""MixBin's baselines: front, rear, random, iterative greedy and pseudo-random, under a FLOPs budget on a tiny
cresnet20 (losses and MixBin scores stubbed where only the order matters, real where the network matters)."""

import pytest
import torch

from hbnn.quant.models import build_model
from hbnn.quant.models.cresnet20 import LAYER_NAMES
from hbnn.quant.precision import BINARY
from hbnn.quant.selection import BudgetUnreachableError, SelectionContext, fits, parse_budget, select
from hbnn.quant.selection import mixbin
from hbnn.quant.selection.baselines import (front_binarized, iterative_greedy, pseudo_random, random_selection,
                                            rear_binarized)

# MACs per image at 8x8: 147,456 for every candidate but these two (73,728). Half the FLOPs takes 9 large layers,
# or 8 large and both small ones.
SMALL = ("stage2.0.conv1", "stage3.0.conv1")




def tiny_context(keep=None) -> SelectionContext:
    torch.manual_seed(0)
    model = build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8)
    return SelectionContext(model, torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,)), batch_size=4, keep=keep)


@pytest.fixture(scope="module")
def context():
    return tiny_context()


@pytest.fixture(scope="module")
def budget(context):
    return parse_budget("flops:0.5").for_model(context.model, context.input_shape)


def assert_within(selection, context, budget):
    """Fits, with no layer more than needed, only candidates binarized, the kept layers at full precision."""
    assert fits(budget, selection.layers)
    assert not fits(budget, context.plan_with(selection.order[:-1]))
    assert set(selection.binarized()) == set(selection.order) <= set(context.candidates)
    assert all(selection.layers[name] == BINARY for name in selection.order)
    for kept in context.keep:
        assert selection.layers[kept] == context.full_precision[kept]


# -- stubs: the order matters, not the network ------------------------------------------------------------------

def greedy_losses(context):
    """A loss table on sets of layers: each layer adds its weight (rear layers the least); binarizing both
    stage3.2 convs costs 1 more, so after stage3.2.conv2 a greedy search leaves stage3.2.conv1 for last."""
    weights = {name: index / 16 for index, name in enumerate(reversed(context.candidates))}

    def loss_with(binarized, precision=BINARY):
        binarized = set(binarized)
        return 1.0 + sum(weights[name] for name in binarized) + ({"stage3.2.conv1", "stage3.2.conv2"} <= binarized)
    return loss_with


@pytest.fixture
def stubbed(monkeypatch, context):
    """Losses from greedy_losses, MixBin-grad scores in forward order: every method is instant."""
    monkeypatch.setattr(context, "loss_with", greedy_losses(context))
    monkeypatch.setattr(mixbin, "kappa_grad", lambda context: {name: float(i) for i, name in
                                                                  enumerate(context.candidates)})
    return context


@pytest.mark.parametrize("method", ["front", "rear", "random", "iterative", "pseudo-random"])
def test_every_method_fits_the_budget(stubbed, budget, method):
    selection = select(method, stubbed, budget, seed=3)
    assert selection.method == method and selection.seconds >= 0
    if method == "pseudo-random":  # binarizes the whole swapped plan, which may be more than needed
        assert fits(budget, selection.layers)
        assert stubbed.full_precision["stem.conv"] == selection.layers["stem.conv"]
        assert stubbed.full_precision["fc"] == selection.layers["fc"]
    else:
        assert_within(selection, stubbed, budget)


def test_front_takes_from_the_front_and_rear_from_the_back(context, budget):
    # Both ways the tenth layer reaches half the FLOPs: one small layer and nine large ones.
    assert front_binarized(context, budget).order == context.candidates[:10]
    assert rear_binarized(context, budget).order == context.candidates[::-1][:10]


def test_random_is_deterministic_per_seed_and_differs_across_seeds(context, budget):
    selections = [random_selection(context, budget, seed=seed) for seed in range(4)]
    assert [s.order for s in selections] == [random_selection(context, budget, seed=seed).order for seed in range(4)]
    assert len({tuple(s.order) for s in selections}) > 1
    for selection in selections:
        assert_within(selection, context, budget)


def test_iterative_reevaluates_with_the_layers_taken(stubbed, budget):
    selection = iterative_greedy(stubbed, budget)
    rear = stubbed.candidates[::-1]
    greedy = [name for name in rear if name != "stage3.2.conv1"] + ["stage3.2.conv1"]
    assert selection.order == greedy[:10]  # single-layer losses alone would take stage3.2.conv1 second
    assert selection.details["loss_evaluations"] == sum(range(18, 8, -1))  # 18 candidates, then 17, ..., 9
    assert selection.scores[greedy[0]] == 1.0  # the loss of the plan it completed


def test_pseudo_random_swaps_the_stated_count(stubbed, budget):
    selection = pseudo_random(stubbed, budget, seed=1, swap=0.3)
    chosen = selection.details["mixbin"]
    assert chosen == stubbed.candidates[:10]
    dropped, added, extra = (selection.details[key] for key in ("dropped", "added", "extra"))
    assert len(dropped) == len(added) == 3  # round(0.3 x 10)
    assert set(dropped) <= set(chosen) and not set(added) & set(chosen)
    assert set(selection.binarized()) == (set(chosen) - set(dropped)) | set(added) | set(extra)
    assert fits(budget, selection.layers)
    assert pseudo_random(stubbed, budget, seed=1, swap=0.3).order == selection.order
    assert len({tuple(pseudo_random(stubbed, budget, seed=seed).order) for seed in range(4)}) > 1
    assert pseudo_random(stubbed, budget, swap=0).binarized() == mixbin.mixbin_grad(stubbed, budget).binarized()


def test_pseudo_random_adds_layers_until_the_swapped_plan_fits(monkeypatch, stubbed, budget):
    # MixBin takes the nine large layers it ranks first; swapping all nine for the seven large and two small
    # layers it left out falls short of the budget, so one swapped-out layer comes back.
    order = [name for name in stubbed.candidates if name not in SMALL] + list(SMALL)
    monkeypatch.setattr(mixbin, "kappa_grad", lambda context: {name: float(order.index(name)) for name in order})
    selection = pseudo_random(stubbed, budget, seed=0, swap=1.0)
    assert selection.details["mixbin"] == order[:9]
    assert set(selection.details["added"]) == set(order[9:])
    assert len(selection.details["extra"]) == 1 and selection.details["extra"][0] in selection.details["dropped"]
    assert fits(budget, selection.layers)


def test_pseudo_random_rejects_a_swap_outside_zero_to_one(context, budget):
    with pytest.raises(ValueError, match="swap"):
        pseudo_random(context, budget, swap=1.5)


# -- a real tiny network ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_candidates():
    """Two small candidates and a large one (every network evaluated costs a build): 95% of the FLOPs needs the
    large one or both small ones."""
    candidates = ("stage2.0.conv1", "stage3.0.conv1", "stage3.1.conv1")
    context = tiny_context(keep=tuple(name for name in LAYER_NAMES if name not in candidates))
    return context, parse_budget("flops:0.95").for_model(context.model, context.input_shape)


def test_iterative_first_takes_the_layer_with_the_lowest_single_loss(three_candidates):
    context, budget = three_candidates
    selection = iterative_greedy(context, budget)
    singles = {name: context.loss_with([name]) for name in context.candidates}
    assert selection.order[0] == min(singles, key=singles.get)
    assert selection.scores[selection.order[0]] == singles[selection.order[0]]
    assert selection.details["loss_evaluations"] == sum(range(3, 3 - len(selection.order), -1))
    assert_within(selection, context, budget)


def test_pseudo_random_on_a_real_network(three_candidates):
    context, budget = three_candidates
    selection = pseudo_random(context, budget, seed=0, swap=1.0)
    chosen = selection.details["mixbin"]
    left_out = len(context.candidates) - len(chosen)
    assert len(selection.details["dropped"]) == len(selection.details["added"]) == min(len(chosen), left_out) > 0
    assert fits(budget, selection.layers)


@pytest.mark.parametrize("method", ["front", "rear", "random", "iterative", "pseudo-random"])
def test_unreachable_budget_raises_before_any_loss(monkeypatch, context, method):
    budget = parse_budget("flops:0.01").for_model(context.model, context.input_shape)  # all-binary: about 2%

    def no_network(*args, **kwargs):
        raise AssertionError("evaluated a network for a budget no plan meets")

    for name in ("loss", "loss_with", "model_with"):
        monkeypatch.setattr(context, name, no_network)
    with pytest.raises(BudgetUnreachableError, match="over the budget"):
        select(method, context, budget)
