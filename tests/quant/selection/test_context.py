"""The selection context: rebuilding a network at other precisions with its trained weights, and its loss."""
import pytest
import torch

from hbnn.quant.models import build_model
from hbnn.quant.precision import BINARY, INT8
from hbnn.quant.selection import SelectionContext, batch_statistics


@pytest.fixture(scope="module")
def context():
    torch.manual_seed(0)
    model = build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8)
    return SelectionContext(model, torch.rand(12, 1, 8, 8), torch.randint(0, 10, (12,)), batch_size=5)


def test_first_and_last_layers_are_kept(context):
    assert context.keep == ("stem.conv", "fc")
    assert context.candidates == context.layers[1:-1] and len(context.candidates) == 18


def test_model_with_copies_the_trained_weights(context):
    plan = context.plan_with(["stage2.0.conv1"])
    assert plan["stage2.0.conv1"] == BINARY and plan["stage2.0.conv2"] == INT8
    rebuilt = context.model_with(plan)
    assert rebuilt.precision_of("stage2.0.conv1") == BINARY
    for key, value in context.model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value)
    same = context.model_with(context.full_precision)
    with torch.no_grad():
        assert torch.equal(same.eval()(context.images), context.model.eval()(context.images))


def test_model_with_copies_the_collected_activation_scales():
    # An int8 activation quantizer's scale enters the state_dict at its first training step; a rebuilt network has
    # none yet and must take the trained one, or it quantizes with another scale.
    torch.manual_seed(0)
    model = build_model("resnet14", precision="fp", in_channels=1, num_classes=10, image_size=8, shortcuts="all")
    model.train()
    model(3 * torch.rand(16, 1, 8, 8))
    model.eval()
    context = SelectionContext(model, torch.rand(4, 1, 8, 8), torch.randint(0, 10, (4,)))
    rebuilt = context.model_with(context.full_precision)
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    with torch.no_grad():
        assert torch.equal(rebuilt(context.images), model(context.images))


def test_loss_uses_batch_statistics_and_leaves_the_model_as_it_was(context):
    before = {key: value.clone() for key, value in context.model.state_dict().items()}
    loss = context.loss()
    assert loss == context.loss() and loss > 0
    for key, value in context.model.state_dict().items():
        assert torch.equal(value, before[key])  # running statistics restored
    assert not context.model.training
    assert context.loss_with(["stage1.0.conv1"]) != loss  # binarizing changes the loss


def test_batch_statistics_mode():
    model = build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8).train()
    with batch_statistics(model):
        assert model.stem.bn.training and not model.stem.conv.training
    assert model.training and model.stem.conv.training


def test_bad_context():
    model = build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8)
    with pytest.raises(ValueError, match="at least 2 labelled"):
        SelectionContext(model, torch.rand(1, 1, 8, 8), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="keep names unknown layer 'head'"):
        SelectionContext(model, torch.rand(2, 1, 8, 8), torch.zeros(2, dtype=torch.long), keep=("head",))
