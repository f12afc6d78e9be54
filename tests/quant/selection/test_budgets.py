"""Budgets: FLOPs accounting exact on a hand-counted network, and the budget text users write."""
import pytest
import torch
from torch import nn

from hbnn.quant.models import build_model
from hbnn.quant.metrics import measure
from hbnn.quant.precision import BINARY, INT8, WEIGHT_BINARY, abc, conv2d, linear
from hbnn.quant.selection import (BudgetUnreachableError, FlopsBudget, binarize_until_within, fits, parse_budget,
                                  register_budget)


class Hand(nn.Module):
    """conv 1->2 3x3 pad 1 on 4x4 (2*16 outputs x 9 MACs = 288), conv 2->4 3x3 pad 1 (4*16 x 18 = 1152),
    linear 64->3 (192)."""

    def __init__(self, plan):
        super().__init__()
        self.plan = plan
        self.a = conv2d(plan["a"], 1, 2, 3, padding=1)
        self.b = conv2d(plan["b"], 2, 4, 3, padding=1)
        self.c = linear(plan["c"], 64, 3)

    def binarizable_layers(self):
        return ["a", "b", "c"]

    def forward(self, x):
        return self.c(torch.flatten(self.b(self.a(x)), 1))


def test_flops_budget_hand_counted():
    full = {"a": INT8, "b": INT8, "c": INT8}
    budget = FlopsBudget.for_model(Hand(full), (1, 4, 4), 0.25)
    assert budget.layer_macs == {"a": 288, "b": 1152, "c": 192}
    assert budget.reference_flops == 1632 and budget.limit == 408
    assert budget.cost(full) == 1632
    assert budget.cost({**full, "b": BINARY}) == 288 + 1152 / 64 + 192  # 498
    assert budget.cost({**full, "b": WEIGHT_BINARY}) == 1632  # weight-only binary: no XNOR speed-up
    assert budget.cost({**full, "b": abc(3, 2)}) == 288 + 6 * 1152 / 64 + 192
    assert not fits(budget, {**full, "b": BINARY})
    assert fits(budget, {**full, "b": BINARY, "a": BINARY})  # 4.5 + 18 + 192 = 214.5
    for plan in ({**full, "b": BINARY}, {**full, "a": BINARY, "c": BINARY}):
        assert budget.cost(plan) == measure(Hand(plan), (1, 4, 4)).flops  # the same rule as the metrics


def test_binarize_until_within_takes_the_order_and_stops():
    full = {"a": INT8, "b": INT8, "c": INT8}
    budget = FlopsBudget.for_model(Hand(full), (1, 4, 4), 0.5)  # limit 816
    layers, taken = binarize_until_within(["b", "a"], full, budget)
    assert taken == ["b"] and layers == {**full, "b": BINARY}
    tight = FlopsBudget.for_model(Hand(full), (1, 4, 4), 0.05)  # 81.6 < 4.5 + 18 + 192
    with pytest.raises(BudgetUnreachableError, match="over the budget of 82"):
        binarize_until_within(["b", "a"], full, tight)


def test_cresnet20_budget_matches_measure():
    model = build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8)
    budget = parse_budget("30%").for_model(model, (1, 8, 8))
    layers = {name: model.precision_of(name) for name in model.binarizable_layers()}
    assert budget.cost(layers) == budget.reference_flops == measure(model, (1, 8, 8)).macs
    order = model.binarizable_layers()[1:-1]
    layers, taken = binarize_until_within(order, layers, budget)
    hybrid = build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8,
                         layer_precisions={name: "binary" for name in taken})
    assert budget.cost(layers) == measure(hybrid, (1, 8, 8)).flops <= budget.limit


@pytest.mark.parametrize("text, kind, value", [
    ("flops:0.3", "flops", 0.3), ("0.3", "flops", 0.3), ("30%", "flops", 0.3), ("luts:20000", "luts", 20000),
    ("DSPS:0", "dsps", 0), ("cycles:5000", "cycles", 5000),
])
def test_parse_budget(text, kind, value):
    spec = parse_budget(text)
    assert (spec.kind, spec.value) == (kind, pytest.approx(value))


@pytest.mark.parametrize("text, message", [
    ("watts:3", "unknown budget kind 'watts'"), ("flops:1.5", r"fraction in \(0, 1\]"), ("flops:x", "not a number"),
    ("luts:-1", ">= 0"), ("luts:10%", "percentage applies to flops only"), ("", "KIND:VALUE"),
])
def test_parse_budget_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_budget(text)


def test_a_budget_kind_can_be_added():
    class Layers:
        kind, unit, limit = "layers", "binary layers", 1.0

        def cost(self, layers):
            return sum(p == BINARY for p in layers.values())

    register_budget("test-layers", lambda model, shape, value: Layers())
    assert parse_budget("test-layers:1").for_model(None, ()).cost({"a": BINARY, "b": INT8}) == 1
    with pytest.raises(ValueError, match="exists already"):
        register_budget("flops", FlopsBudget.for_model)
