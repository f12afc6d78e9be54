"""Binary weight/activation quantizers and ExactBatchNorm1d."""

import math

import numpy as np
import pytest
import torch
from brevitas.nn import QuantIdentity

from hbnn.quant.layers import BinaryAct, ExactBatchNorm1d, correctly_rounded_sqrt
from hbnn.quant.precision import BINARY, linear


def reference_sqrt(t: torch.Tensor) -> torch.Tensor:
    """float32 sqrt via Python's correctly rounded double sqrt; rounding that to float32 is again correct."""
    return torch.tensor([math.sqrt(v) for v in t.flatten().tolist()], dtype=torch.float32).reshape(t.shape)


def test_binary_weights_are_exactly_plus_minus_one_with_sign_of_zero_positive():
    layer = linear(BINARY, 5, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0.3, -0.2, 1e-8, -1e-8],
                                         [-0.0, 0.9, -0.9, 0.5, -0.5],
                                         [0.0, 0.0, 0.0, -0.7, 0.7]]))
    quantized = layer.quant_weight().value
    expected = torch.tensor([[1.0, 1.0, -1.0, 1.0, -1.0],
                             [1.0, 1.0, -1.0, 1.0, -1.0],
                             [1.0, 1.0, 1.0, -1.0, 1.0]])
    assert torch.equal(quantized, expected)
    assert layer.bias is None


def test_binary_linear_computes_integer_dot_products_with_signed_weights():
    torch.manual_seed(0)
    layer = linear(BINARY, 33, 7)
    x = torch.where(torch.rand(4, 33) < 0.5, 1.0, -1.0)
    signs = torch.where(layer.weight >= 0, 1.0, -1.0)
    assert torch.equal(layer(x), x @ signs.T)


def test_binary_activation_outputs_signs_and_clipped_straight_through_gradient():
    activation = QuantIdentity(act_quant=BinaryAct)
    x = torch.tensor([-3.0, -1.0, -0.5, -1e-6, 0.0, 0.25, 1.0, 1.5], requires_grad=True)
    y = activation(x)
    assert torch.equal(y, torch.tensor([-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]))
    y.backward(torch.arange(1.0, 9.0))  # distinct upstream gradients show each one passes through unchanged or not
    assert torch.equal(x.grad, torch.tensor([0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0]))


def _batchnorm_pair(features=6, seed=0):
    torch.manual_seed(seed)
    exact, reference = ExactBatchNorm1d(features), torch.nn.BatchNorm1d(features)
    with torch.no_grad():
        exact.weight.copy_(torch.randn(features))
        exact.bias.copy_(torch.randn(features))
        exact.running_mean.copy_(torch.randn(features) * 10)
        exact.running_var.copy_(torch.rand(features) * 5 + 1e-3)
    reference.load_state_dict(exact.state_dict())
    return exact, reference


def test_exact_batchnorm_eval_is_the_explicit_elementwise_formula():
    exact, reference = _batchnorm_pair()
    exact.eval()
    reference.eval()
    x = torch.randint(-40, 41, (64, 6)).float()  # integer sums, as the binary layers produce
    std = reference_sqrt(exact.running_var + exact.eps)
    expected = (x - exact.running_mean) / std * exact.weight + exact.bias
    out = exact(x)
    assert out.dtype == torch.float32
    assert torch.equal(out, expected)
    # torch's fused kernel rounds differently, so only agreement within float rounding is expected.
    torch.testing.assert_close(out, reference(x), rtol=1e-5, atol=1e-5)


def test_exact_batchnorm_eval_on_three_dimensional_input():
    exact, _ = _batchnorm_pair(features=3)
    exact.eval()
    x = torch.randn(2, 3, 5)
    mean, var, weight, bias = (t[:, None] for t in (exact.running_mean, exact.running_var, exact.weight, exact.bias))
    expected = (x - mean) / reference_sqrt(var + exact.eps) * weight + bias
    assert torch.equal(exact(x), expected)


def test_exact_batchnorm_training_mode_is_batchnorm1d():
    exact, reference = _batchnorm_pair()
    x = torch.randn(32, 6) * 3 + 1
    for _ in range(3):  # several steps: the running statistics must evolve identically too
        assert torch.equal(exact(x), reference(x))
    assert torch.equal(exact.running_mean, reference.running_mean)
    assert torch.equal(exact.running_var, reference.running_var)
    assert int(exact.num_batches_tracked) == int(reference.num_batches_tracked) == 3


@pytest.mark.parametrize("option", ["affine", "track_running_stats"])
def test_exact_batchnorm_requires_affine_and_running_stats(option):
    with pytest.raises(ValueError, match=option):
        ExactBatchNorm1d(4, **{option: False})


def test_exact_batchnorm_eval_is_reproduced_bit_exactly_by_numpy_float32():
    exact, _ = _batchnorm_pair(features=40, seed=3)
    exact.eval()
    x = torch.randint(-100, 101, (500, 40)).float()
    params = {name: t.detach().numpy() for name, t in exact.named_parameters()}
    mean, var = exact.running_mean.numpy(), exact.running_var.numpy()
    xs = x.numpy()
    expected = (xs - mean) / np.sqrt(var + np.float32(exact.eps)) * params["weight"] + params["bias"]
    assert expected.dtype == np.float32
    assert np.array_equal(exact(x).detach().numpy(), expected)


def test_correctly_rounded_sqrt_matches_the_ieee_result():
    # Values spread over many binades, where torch's vectorized float32 sqrt is 1 ulp off for a fraction of inputs.
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(20000, generator=generator) * 10.0 ** torch.randint(-6, 7, (20000,), generator=generator)
    assert torch.equal(correctly_rounded_sqrt(values), reference_sqrt(values))
    assert correctly_rounded_sqrt(values).dtype == torch.float32
