"""MixBin's kappa scores and ranking: exact numbers from a stubbed loss table, a known answer on a tiny cresnet20,
kappa_grad against a gradient computed independently, and the budget cut."""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from hbnn.quant.models import build_model
from hbnn.quant.models.cresnet20 import LAYER_NAMES
from hbnn.quant.precision import BINARY
from hbnn.quant.selection import BudgetUnreachableError, SelectionContext, fits, parse_budget
from hbnn.quant.selection.mixbin import kappa_loss, mixbin_grad, mixbin_loss

# bn2 of these blocks is zeroed: their residual branch adds exactly 0, so binarizing either of its convs changes
# nothing. (Binarizing conv1 also drops the ReLU ending the block before, but this block's own ReLU restores it.)
SILENT_BLOCKS = ("stage2.1", "stage3.2")
# The real-network tests score six layers (every network costs a build), three of them silenced; the others
# stay at full precision with the first and last layer. Binarizing them all reaches 68% of the FLOPs.
CANDIDATES = ("stage2.0.conv1", "stage2.1.conv1", "stage2.1.conv2", "stage3.1.conv1", "stage3.1.conv2",
              "stage3.2.conv2")
SILENT_LAYERS = ("stage2.1.conv1", "stage2.1.conv2", "stage3.2.conv2")




def tiny_context(keep=None) -> SelectionContext:
    torch.manual_seed(0)
    model = build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8)
    with torch.no_grad():
        for block in SILENT_BLOCKS:
            model.get_submodule(f"{block}.bn2").weight.zero_()
            model.get_submodule(f"{block}.bn2").bias.zero_()
    return SelectionContext(model, torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,)), batch_size=4, keep=keep)


@pytest.fixture(scope="module")
def context():
    return tiny_context(keep=tuple(name for name in LAYER_NAMES if name not in CANDIDATES))


@pytest.fixture(scope="module")
def budget(context):
    return parse_budget("flops:0.8").for_model(context.model, context.input_shape)


@pytest.fixture(scope="module")
def by_loss(context, budget):
    return mixbin_loss(context, budget)


@pytest.fixture(scope="module")
def by_grad(context, budget):
    return mixbin_grad(context, budget)


# -- a stubbed loss table: exact numbers ------------------------------------------------------------------------

def stub_losses(monkeypatch, context, reference, losses):
    """context.loss() -> reference, context.loss_with([j]) -> losses[j]; a network is never built."""
    monkeypatch.setattr(context, "loss", lambda model=None: reference)
    monkeypatch.setattr(context, "loss_with", lambda binarized, precision=BINARY: losses[tuple(binarized)[0]])


def test_kappa_loss_ranking_and_cut_from_a_loss_table(monkeypatch):
    context = tiny_context()
    budget = parse_budget("flops:0.5").for_model(context.model, context.input_shape)
    # Dyadic numbers, so every difference is exact. Ties (0.25, 0.5) must keep forward order.
    kappas = {
        "stage1.0.conv1": 0.5, "stage1.0.conv2": 3.0, "stage1.1.conv1": -0.25, "stage1.1.conv2": 0.25,
        "stage1.2.conv1": 2.0, "stage1.2.conv2": 0.25, "stage2.0.conv1": 0.125, "stage2.0.conv2": 1.5,
        "stage2.1.conv1": 4.0, "stage2.1.conv2": 0.5, "stage2.2.conv1": 1.0, "stage2.2.conv2": 0.75,
        "stage3.0.conv1": 0.0, "stage3.0.conv2": 2.5, "stage3.1.conv1": 0.875, "stage3.1.conv2": 5.0,
        "stage3.2.conv1": 1.25, "stage3.2.conv2": 0.625,
    }
    stub_losses(monkeypatch, context, 2.0, {name: 2.0 + kappa for name, kappa in kappas.items()})

    assert kappa_loss(context) == kappas
    selection = mixbin_loss(context, budget)
    ranking = ["stage1.1.conv1", "stage3.0.conv1", "stage2.0.conv1", "stage1.1.conv2", "stage1.2.conv2",
               "stage1.0.conv1", "stage2.1.conv2", "stage3.2.conv2", "stage2.2.conv2", "stage3.1.conv1",
               "stage2.2.conv1", "stage3.2.conv1", "stage2.0.conv2", "stage1.2.conv1", "stage3.0.conv2",
               "stage1.0.conv2", "stage2.1.conv1", "stage3.1.conv2"]
    assert selection.details["ranking"] == ranking
    # Half the FLOPs takes 8 of the 147,456-MAC layers plus both 73,728-MAC ones (stage2.0.conv1, stage3.0.conv1).
    assert selection.order == ranking[:10]
    assert selection.binarized() == sorted(ranking[:10], key=context.layers.index)
    assert selection.method == "mixbin-loss" and selection.scores == kappas


# -- a real tiny network ----------------------------------------------------------------------------------------

def test_binarizing_a_silenced_layer_costs_nothing(context, by_loss, by_grad):
    assert context.candidates == list(CANDIDATES)
    for name in context.candidates:
        if name in SILENT_LAYERS:
            assert by_loss.scores[name] == 0.0 and by_grad.scores[name] == 0.0
        else:
            assert by_loss.scores[name] != 0.0
    layer = "stage2.0.conv1"
    assert by_loss.scores[layer] == context.loss_with([layer]) - context.loss()


def independent_gradient_norm(context, layer):
    """||g . sign(W)||_2 by plain backward(): BN on batch statistics, the mean loss over all images."""
    model = context.model_with(context.plan_with([layer]))
    model.eval()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.train()
    for images, labels in context.batches():
        (F.cross_entropy(model(images), labels, reduction="sum") / len(context.images)).backward()
    weight = model.get_submodule(layer).weight
    signs = torch.where(weight >= 0, torch.ones_like(weight), -torch.ones_like(weight))
    return float(((weight.grad * signs) ** 2).sum().sqrt())


@pytest.mark.parametrize("layer", ["stage2.0.conv1", "stage3.1.conv2"])
def test_kappa_grad_is_kappa_loss_times_the_gradient_norm(context, by_loss, by_grad, layer):
    assert len(list(context.batches())) == 2  # the gradient must be summed over batches
    norm = independent_gradient_norm(context, layer)
    assert norm > 0
    assert by_grad.scores[layer] == pytest.approx(by_loss.scores[layer] * norm, rel=1e-5)


@pytest.mark.parametrize("selection", ["by_loss", "by_grad"])
def test_mixbin_takes_the_lowest_kappa_until_within_budget(request, context, budget, selection):
    selection = request.getfixturevalue(selection)
    ranking = sorted(context.candidates, key=selection.scores.__getitem__)
    assert selection.order == ranking[:len(selection.order)]
    assert fits(budget, selection.layers)
    assert not fits(budget, context.plan_with(selection.order[:-1]))
    for kept in context.keep:
        assert selection.layers[kept] == context.full_precision[kept]
    assert set(selection.binarized()) == set(selection.order)
    assert all(selection.layers[name] == BINARY for name in selection.order)


@pytest.mark.parametrize("method", [mixbin_loss, mixbin_grad])
def test_unreachable_budget_fails_before_scoring(monkeypatch, method):
    context = tiny_context()
    budget = parse_budget("flops:0.01").for_model(context.model, context.input_shape)  # all-binary: about 2%

    def no_network(*args, **kwargs):
        raise AssertionError("scored layers for a budget no plan meets")

    for name in ("loss", "loss_with", "model_with"):
        monkeypatch.setattr(context, name, no_network)
    with pytest.raises(BudgetUnreachableError, match="over the budget"):
        method(context, budget)
