"""The zoo's MLP: per-variant plans, layer overrides, input handling, configs, exact eval, and training."""

import json
import math

import pytest
import torch
from torch import nn

from hbnn.quant import MLP, load_checkpoint, load_dataset, save_checkpoint, train
from hbnn.quant.layers import ExactBatchNorm1d
from hbnn.quant.models import MODELS, build_model, model_from_config
from hbnn.quant.precision import BINARY, FLOAT, INT8, WEIGHT_BINARY


def mlp(variant="binary", channels=1, size=4, classes=4, **options):
    torch.manual_seed(0)
    return build_model("mlp", precision=variant, in_channels=channels, num_classes=classes, image_size=size,
                       **options)


def plan_of(model):
    return {name: model.precision_of(name) for name in model.binarizable_layers()}


def calibrated(model, features):
    """A few training passes: batch-norm statistics and int8 input scales move off their initial values."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(32, features))
    return model.eval()


def test_registered_in_the_zoo_with_its_variants():
    assert MODELS["mlp"] is MLP
    assert MLP.VARIANTS == ("fp", "hybrid", "binary") and MLP.input_layout == "flat"


def test_modules_in_forward_order_and_the_binarizable_layers():
    model = mlp("fp", channels=1, size=8, classes=10)
    assert [name for name, _ in model.named_children()] == ["fc1", "bn1", "act1", "fc2", "bn2", "act2", "fc3"]
    assert model.binarizable_layers() == ["fc1", "fc2", "fc3"]
    assert all(model.get_submodule(name).precision == precision for name, precision in plan_of(model).items())
    linears = [model.get_submodule(name) for name in model.binarizable_layers()]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [(64, 128), (128, 128), (128, 10)]
    assert all(layer.bias is None for layer in linears)
    assert [model.get_submodule(f"bn{index}").num_features for index in (1, 2)] == [128, 128]
    assert all(isinstance(model.get_submodule(f"bn{index}"), ExactBatchNorm1d) for index in (1, 2))
    assert model.hidden == (128, 128) and model.features == 64


def test_plans_of_each_variant():
    hidden = {"hidden": [12, 10, 8]}
    assert set(plan_of(mlp("fp", **hidden)).values()) == {INT8}
    assert set(plan_of(mlp("fp", full_precision="float", **hidden)).values()) == {FLOAT}
    hybrid = plan_of(mlp("hybrid", **hidden))
    assert hybrid == {"fc1": INT8, "fc2": BINARY, "fc3": BINARY, "fc4": INT8}
    assert set(plan_of(mlp("binary", **hidden)).values()) == {BINARY}
    assert plan_of(mlp("hybrid", hidden=[12])) == {"fc1": INT8, "fc2": INT8}  # no hidden-to-hidden layer to binarize


@pytest.mark.parametrize("variant, activations", [
    ("fp", [nn.ReLU, nn.ReLU]),
    ("hybrid", [nn.Identity, nn.ReLU]),  # act1 feeds binary fc2, act2 feeds int8 fc3
    ("binary", [nn.Identity, nn.Identity]),
])
def test_activation_in_front_of_each_layer_follows_its_reader(variant, activations):
    model = mlp(variant, hidden=[12, 8])
    assert [type(model.act1), type(model.act2)] == activations


def test_layer_precisions_override_the_variant_including_weight_binary():
    model = mlp("fp", hidden=[12, 8], layer_precisions={"fc2": "weight-binary", "fc3": "Binary"})
    assert plan_of(model) == {"fc1": INT8, "fc2": WEIGHT_BINARY, "fc3": BINARY}
    assert isinstance(model.act1, nn.ReLU)  # weight-binary fc2 reads int8 inputs
    assert isinstance(model.act2, nn.Identity)  # binary fc3 takes signs
    assert model.config()["options"]["layer_precisions"] == {"fc2": "weight-binary", "fc3": "binary"}
    assert plan_of(mlp("binary", layer_precisions={"fc1": "fp"}))["fc1"] == INT8
    with pytest.raises(ValueError, match=r"unknown layer 'fc4'; layers of mlp: fc1, fc2, fc3"):
        mlp("fp", layer_precisions={"fc4": "binary"})


def test_logit_scale_only_where_the_last_layer_sums_plus_minus_one_weights():
    assert mlp("binary", hidden=[12, 9]).logit_scale.item() == pytest.approx(1 / math.sqrt(9))
    assert mlp("fp", hidden=[16], layer_precisions={"fc2": "weight-binary"}).logit_scale.item() == \
        pytest.approx(1 / 4)
    for model in (mlp("fp"), mlp("hybrid"), mlp("binary", layer_precisions={"fc3": "fp"}),
                  mlp("binary", layer_precisions={"fc3": "binary+alpha"})):
        assert not hasattr(model, "logit_scale")


@pytest.mark.parametrize("variant", MLP.VARIANTS)
def test_flat_and_image_inputs_give_the_same_logits(variant):
    model = calibrated(mlp(variant, channels=3, size=4, classes=5, hidden=[8]), 48)
    images = torch.rand(6, 3, 4, 4)
    with torch.no_grad():
        flat, image = model(images.flatten(1)), model(images)
    assert flat.shape == (6, 5) and torch.equal(flat, image)


def test_binary_mlp_thresholds_pixels_at_one_half_and_outputs_integers():
    model = mlp("binary", hidden=[8]).eval()
    pixels = torch.tensor([[0.0, 0.25, 0.4999999, 0.5, 0.5000001, 0.75, 1.0, 0.1] * 2])
    signs = model.fc1.integer_inference(pixels - 0.5)  # what fc1 computes from the centered pixels
    codes = torch.where(pixels >= 0.5, 1, -1).to(torch.float32)
    weights = torch.where(model.fc1.weight >= 0, 1.0, -1.0)
    assert torch.equal(signs, codes @ weights.T)
    logits = model(torch.rand(5, 16))
    assert torch.equal(logits, logits.round())  # +-1 inputs times +-1 weights: integer logits


def test_bad_hidden_widths_name_the_option():
    for bad in ([], "128", [128, 0], [12, True], None):
        with pytest.raises(ValueError, match="hidden"):
            mlp("fp", hidden=bad)
    with pytest.raises(ValueError, match=r"hidden\[1\] must be a positive integer, not -3"):
        mlp("fp", hidden=[4, -3])
    with pytest.raises(ValueError, match="precision of mlp must be one of fp, hybrid, binary, not 'abc'"):
        mlp("abc")


@pytest.mark.parametrize("variant", MLP.VARIANTS)
def test_config_round_trips_through_json(variant):
    model = mlp(variant, hidden=(12, 8), layer_precisions={"fc2": "weight-binary"})
    config = json.loads(json.dumps(model.config()))
    assert config == model.config()
    assert config["options"] == {"hidden": [12, 8], "layer_precisions": {"fc2": "weight-binary"}}
    rebuilt = model_from_config(config)
    assert rebuilt.config() == config and plan_of(rebuilt) == plan_of(model)
    assert [(name, p.shape) for name, p in rebuilt.named_parameters()] == \
        [(name, p.shape) for name, p in model.named_parameters()]
    model.options["hidden"].append(5)  # options is a copy
    assert model.hidden == (12, 8)


@pytest.mark.parametrize("variant", MLP.VARIANTS)
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, variant):
    model = calibrated(mlp(variant, hidden=[12, 8]), 16)
    save_checkpoint(tmp_path / "mlp.pt", model, {"dataset": "synthetic"})
    loaded, meta = load_checkpoint(tmp_path / "mlp.pt")
    assert isinstance(loaded, MLP) and meta == {"dataset": "synthetic"} and loaded.config() == model.config()
    x = torch.rand(10, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


PLANS = [
    ("fp", {}), ("hybrid", {}), ("binary", {}),
    ("fp", {"fc1": "weight-binary", "fc2": "weight-binary+alpha", "fc3": "weight-binary"}),
    ("hybrid", {"fc2": "ternary", "fc3": "binary+alpha"}),
]


@pytest.mark.parametrize("variant, overrides", PLANS, ids=[f"{v}-{'-'.join(o.values()) or 'plain'}" for v, o in PLANS])
def test_every_layer_eval_output_equals_its_integer_inference(variant, overrides):
    model = calibrated(mlp(variant, hidden=[12, 8], layer_precisions=overrides), 16)
    inputs = {}
    hooks = [model.get_submodule(name).register_forward_pre_hook(
        lambda module, args, name=name: inputs.__setitem__(name, args[0])) for name in model.binarizable_layers()]
    pixels = torch.rand(20, 16)
    pixels[0, :4] = torch.tensor([0.0, 0.5, 1.0, 0.25])  # exactly on the binary threshold and the int8 range ends
    with torch.no_grad():
        model(pixels)
    for hook in hooks:
        hook.remove()
    assert list(inputs) == model.binarizable_layers()
    for name, x in inputs.items():
        layer = model.get_submodule(name)
        with torch.no_grad():
            assert torch.equal(layer.integer_inference(x), layer(x)), name


@pytest.mark.parametrize("variant", MLP.VARIANTS)
def test_short_training_on_synthetic_beats_chance(variant):
    dataset = load_dataset("synthetic")
    model = mlp(variant, hidden=[32, 32])
    history = train(model, dataset, epochs=3, seed=0, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["test_acc"] > 0.8  # separable prototypes; chance is 0.25

