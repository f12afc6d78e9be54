"""BinaryMLP structure, integer outputs and configuration."""

import json
import math

import pytest
import torch
from brevitas.nn import QuantIdentity, QuantLinear

from hbnn.quant.layers import ExactBatchNorm1d
from hbnn.quant.mlp import BinaryMLP


def test_layer_order_and_shapes():
    model = BinaryMLP((64, 128, 96, 10))
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [QuantLinear, ExactBatchNorm1d, QuantIdentity,
                     QuantLinear, ExactBatchNorm1d, QuantIdentity,
                     QuantLinear]
    linears = [layer for layer in model.layers if isinstance(layer, QuantLinear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(64, 128), (128, 96), (96, 10)]
    assert all(l.bias is None for l in linears)
    assert [bn.num_features for bn in model.layers if isinstance(bn, ExactBatchNorm1d)] == [128, 96]
    assert model.sizes == (64, 128, 96, 10)
    assert model.input_threshold == 0.5


def test_parameter_count():
    model = BinaryMLP((64, 128, 128, 10))
    weights = 64 * 128 + 128 * 128 + 128 * 10
    batchnorm = 2 * (128 + 128)  # weight and bias per channel
    assert sum(p.numel() for p in model.parameters()) == weights + batchnorm + 1  # + logit_scale
    assert model.logit_scale.item() == pytest.approx(1 / math.sqrt(128))


def test_no_hidden_layer_is_a_single_binary_linear():
    model = BinaryMLP((16, 4))
    assert [type(layer) for layer in model.layers] == [QuantLinear]
    assert model(torch.rand(3, 16)).shape == (3, 4)


@pytest.mark.parametrize("sizes", [(20, 32, 7, 5), (20, 9, 6, 3), (16, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_outputs_are_integers_with_the_parity_of_the_last_input_width(sizes, training):
    torch.manual_seed(0)
    model = BinaryMLP(sizes)
    model.train(training)
    out = model(torch.rand(50, sizes[0]))
    assert out.shape == (50, sizes[-1])
    assert out.dtype == torch.float32
    assert torch.equal(out, out.round())
    # A sum of n terms of +-1 has the parity of n, and |sum| <= n.
    width = sizes[-2]
    assert torch.all((out.long() - width) % 2 == 0)
    assert torch.all(out.abs() <= width)


def test_binarize_input_thresholds_at_input_threshold():
    model = BinaryMLP((4, 2), input_threshold=0.25)
    x = torch.tensor([[0.0, 0.2499, 0.25, 1.0]])
    assert torch.equal(model.binarize_input(x), torch.tensor([[-1.0, -1.0, 1.0, 1.0]]))


def test_forward_rejects_wrong_input_width():
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        BinaryMLP((8, 2))(torch.rand(3, 9))


@pytest.mark.parametrize("sizes, message", [
    ((64,), r"at least 2 entries .*\[64\]"),
    ((64, 0, 10), r"sizes\[1\] must be a positive integer, not 0"),
    ((64, -3, 10), r"sizes\[1\] must be a positive integer, not -3"),
    ((64, 2.5, 10), r"sizes\[1\] must be a positive integer, not 2\.5"),
    ((64, 10, True), r"sizes\[2\] must be a positive integer, not True"),
    ("64,10", r"sequence of layer widths.*'64,10'"),
])
def test_invalid_sizes_are_rejected_naming_the_value(sizes, message):
    with pytest.raises(ValueError, match=message):
        BinaryMLP(sizes)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), "half"])
def test_invalid_threshold_is_rejected(threshold):
    with pytest.raises(ValueError, match="input_threshold"):
        BinaryMLP((4, 2), input_threshold=threshold)


def test_config_round_trip_through_json():
    model = BinaryMLP((16, 12, 4), input_threshold=0.375)
    config = json.loads(json.dumps(model.config()))
    assert config == {"kind": "binary_mlp", "sizes": [16, 12, 4], "input_threshold": 0.375}
    rebuilt = BinaryMLP.from_config(config)
    assert rebuilt.sizes == model.sizes and rebuilt.input_threshold == model.input_threshold
    rebuilt.load_state_dict(model.state_dict())


@pytest.mark.parametrize("config, message", [
    ({"kind": "cnn", "sizes": [4, 2]}, "unknown model kind 'cnn'"),
    ({"kind": "binary_mlp"}, "sizes"),
    ({"kind": "binary_mlp", "sizes": [4, 2], "depth": 3}, "depth"),
    ([4, 2], "dict"),
])
def test_from_config_rejects_bad_configs(config, message):
    with pytest.raises(ValueError, match=message):
        BinaryMLP.from_config(config)
