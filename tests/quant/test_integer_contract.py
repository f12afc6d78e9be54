"""The integer contract: every quantized layer's eval output is reproduced bit for bit from integer codes."""

import numpy as np
import pytest
import torch

from hbnn.quant.abc_layers import coefficient_codes
from hbnn.quant.activation_quant import Int8Activation
from hbnn.quant.exact_ops import integer_weighted_sum
from hbnn.quant.layers import ExactBatchNorm2d
from hbnn.quant.pooling import ExactAvgPool2d, integer_avg_pool2d
from hbnn.quant.precision import INT8, Precision, conv2d, linear
from hbnn.quant.weight_stats import deterministic_sum, least_squares_coefficients

PRECISIONS = ["int8", "weight-binary", "weight-binary+alpha", "binary", "binary+alpha", "ternary", "ternary+alpha",
              "abc1x1", "abc3x3", "abc2x5"]
CODE_SETS = {"int8": set(range(-127, 128)), "binary": {-1, 1}, "ternary": {-1, 0, 1}, "abc": {-1, 1}}


def is_power_of_two(t: torch.Tensor) -> bool:
    mantissa, _ = np.frexp(t.detach().numpy())
    return bool(np.all(mantissa == 0.5))


def calibrated(layer: torch.nn.Module) -> torch.nn.Module:
    """A few training passes on normal inputs (Brevitas input scales come from these statistics), then eval."""
    layer.train()
    shape = (4, layer.in_channels, 7, 7) if isinstance(layer, torch.nn.Conv2d) else (4, layer.in_features)
    with torch.no_grad():
        for _ in range(3):
            layer(torch.randn(shape))
    return layer.eval()


def tricky_input(layer: torch.nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """Normal values plus the edge cases of the layer's input quantizer, scattered over random positions."""
    specials = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e-8, -1e-8, 300.0, -300.0]
    if layer.precision.inputs == "int8":  # ties (round half to even) and both clamp ends
        scale = float(layer.input_quant(torch.zeros(1)).scale)
        specials += [(k + 0.5) * scale for k in (-129, -128, -3, -2, 0, 1, 2, 126, 127)]
    if layer.precision.inputs == "abc":  # exactly on each activation threshold (x + v_n == 0.5) and beside it
        thresholds = (0.5 - layer.activation_shifts.detach()).tolist()
        specials += thresholds + [float(np.nextafter(np.float32(t), np.float32(1))) for t in thresholds]
    x = torch.randn(shape) * 1.5
    flat = x.view(-1)
    positions = torch.randperm(flat.numel())[:len(specials) * 3]
    flat[positions] = torch.tensor(specials * 3)[:len(positions)]
    return x


def assert_integer_inference_is_exact(layer, x):
    with torch.no_grad():
        out = layer(x)
    assert out.dtype == torch.float32
    assert torch.equal(layer.integer_inference(x), out)


@pytest.mark.parametrize("name", PRECISIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_conv2d_eval_is_reproduced_from_integers(name, bias):
    torch.manual_seed(0)
    layer = calibrated(conv2d(Precision.parse(name), 6, 5, 3, stride=2, padding=1, bias=bias))
    assert_integer_inference_is_exact(layer, tricky_input(layer, (3, 6, 9, 8)))


@pytest.mark.parametrize("name", PRECISIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_linear_eval_is_reproduced_from_integers(name, bias):
    torch.manual_seed(1)
    layer = calibrated(linear(Precision.parse(name), 40, 7, bias=bias))
    assert_integer_inference_is_exact(layer, tricky_input(layer, (6, 40)))
    assert_integer_inference_is_exact(layer, tricky_input(layer, (2, 3, 40)))  # extra leading axes


PAD_CODES = {"int8": 0, "weight-binary": 0, "weight-binary+alpha": 0, "binary": 1, "binary+alpha": 1,
             "ternary": 0, "ternary+alpha": 0, "abc1x1": 1, "abc3x3": 1, "abc2x5": 1}


@pytest.mark.parametrize("name", PRECISIONS)
def test_padded_conv_eval_is_reproduced_from_integers(name):
    """Padding 2 around a 3x3 kernel: the corner outputs read a single input element and eight padded ones."""
    torch.manual_seed(13)
    layer = calibrated(conv2d(Precision.parse(name), 4, 3, 3, padding=2, bias=True))
    assert layer.input_pad_code == PAD_CODES[name] and isinstance(layer.input_pad_code, int)
    assert_integer_inference_is_exact(layer, tricky_input(layer, (2, 4, 5, 6)))


# A 4x4 map of -1 under a 3x3 all-(+1) kernel with padding 1: an output reads `REAL` input elements (-1 each)
# and 9 - REAL padded ones (the pad code each).
REAL = torch.tensor([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]])


@pytest.mark.parametrize("name, weight_value", [
    ("binary", 1.0), ("binary+alpha", 1.0), ("abc1x1", 1.0),  # +1 padding: corner -4 + 5 = +1, edge -6 + 3 = -3
    ("int8", 127 / 128), ("weight-binary", 1.0), ("ternary", 1.0),  # zero padding: corner -4, edge -6
])
def test_border_outputs_count_padded_elements_as_the_pad_code(name, weight_value):
    layer = conv2d(Precision.parse(name), 1, 1, 3, padding=1)
    with torch.no_grad():
        layer.weight.fill_(1.0)  # int8: code 127 at scale 1/128 (narrow range); the others +1, alpha 1
    x = -torch.ones(1, 1, 4, 4)  # int8 inputs: code -128 at the untrained scale 1/128, the value -1
    pad_code = PAD_CODES[name]
    expected = (weight_value * (-REAL + pad_code * (9 - REAL))).float().view(1, 1, 4, 4)
    if pad_code:
        assert expected[0, 0, 0, 0] == 1 and expected[0, 0, 0, 1] == -3 and expected[0, 0, 1, 1] == -9
    layer.eval()
    with torch.no_grad():
        assert torch.equal(layer(x), expected)
    assert torch.equal(layer.integer_inference(x), expected)
    if pad_code:  # no learned input scale here: the training forward pads the same way
        assert torch.equal(layer.train()(x), expected)


def test_plus_one_padding_reaches_the_weight_gradient():
    """Padded +1 elements are constants: they feed the weights' gradient and none flows to them."""
    layer = conv2d("binary", 1, 1, 3, padding=1).train()
    with torch.no_grad():
        layer.weight.fill_(0.5)  # sign +1, inside the straight-through window
    x = torch.full((1, 1, 4, 4), -1.0, requires_grad=True)
    layer(x).sum().backward()
    # dL/dW[ky, kx] = sum of the (padded) inputs under tap (ky, kx) over the 16 outputs: the centre tap reads the
    # 16 inputs (-16); a corner tap reads 9 inputs and 7 padded +1 (-9 + 7 = -2; zero padding would give -9).
    weight_grad = layer.weight.grad[0, 0]
    assert weight_grad[1, 1] == -16 and weight_grad[0, 0] == weight_grad[2, 2] == -2
    assert weight_grad[0, 1] == -12 + 4  # an edge tap: 12 inputs, 4 padded
    # dL/dx: each input gets one +1 (its weight sign) per output reading it, REAL outputs.
    assert torch.equal(x.grad[0, 0], REAL.float())


def test_int8_activation_codes_times_scale_are_its_output():
    torch.manual_seed(14)
    quant = Int8Activation().train()
    with torch.no_grad():
        for _ in range(3):
            quant(torch.relu(torch.randn(4, 8, 5, 5)) * 3)  # the learned scale starts from these statistics
    quant.eval()
    x = torch.relu(torch.randn(2, 8, 5, 5)) * 3
    scale = float(quant.act_quant(x).scale)
    x.view(-1)[:8] = torch.tensor([0.0, 1e-9, -1.0, 500.0, 0.5 * scale, 1.5 * scale, 126.5 * scale, 127.5 * scale])
    codes, s = quant.codes(x)
    assert codes.dtype == torch.int64 and s.dtype == torch.float32 and s.shape == () and is_power_of_two(s)
    assert codes.min() >= -128 and codes.max() <= 127
    assert codes.view(-1)[:8].tolist() == [0, 0, -round(1 / scale), 127, 0, 2, 126, 127]  # half to even, clamp
    with torch.no_grad():
        out = quant(x)
    assert type(out) is torch.Tensor and out.dtype == torch.float32
    assert torch.equal(codes.float() * s, out)
    with pytest.raises(RuntimeError, match=r"Int8Activation\.codes .*\.eval\(\)"):
        quant.train().codes(x)


def near_extreme_int8_layer(layer):
    """Weights of magnitude 0.9..1 (codes near +-127); output channel 0 all positive, so sums do not cancel."""
    with torch.no_grad():
        weight = torch.sign(torch.randn_like(layer.weight)) * (0.9 + 0.1 * torch.rand_like(layer.weight))
        weight[0] = weight[0].abs()
        layer.weight.copy_(weight)
    return layer.eval()  # never trained: input scale 1/128, so inputs in [-1, 1) use the whole int8 range


def near_extreme_int8_input(shape):
    x = torch.randint(96, 129, shape) / 128.0  # codes 96..128, 128 clamps to 127
    x[1::2] = -x[1::2]
    return x


@pytest.mark.parametrize("bias", [False, True])
def test_int8_conv_beyond_float32_exact_accumulation(bias):
    torch.manual_seed(2)
    layer = near_extreme_int8_layer(conv2d(INT8, 256, 4, 3, padding=1, bias=bias))
    x = near_extreme_int8_input((2, 256, 5, 5))
    x_codes = torch.round(x * 128).clamp(-128, 127)
    accumulator = integer_weighted_sum(layer, x_codes, layer.quantized_weight_codes()[0])
    assert accumulator.abs().max() > 2 ** 24  # a float32 accumulation would round here
    assert_integer_inference_is_exact(layer, x)


def test_int8_linear_beyond_float32_exact_accumulation_matches_numpy():
    torch.manual_seed(3)
    layer = near_extreme_int8_layer(linear(INT8, 4096, 3, bias=True))
    x = near_extreme_int8_input((4, 4096))
    with torch.no_grad():
        out = layer(x)
    # An independent reading of the contract in numpy: int64 accumulator + int32 bias codes, times s_x * s_w.
    w_codes, w_scale = layer.quantized_weight_codes()
    x_scale = layer.input_quant(x).scale
    x_codes = np.clip(np.round(x.numpy() / np.float32(x_scale)), -128, 127).astype(np.int64)
    bias_codes = np.round(layer.bias.detach().numpy() / np.float32(x_scale * w_scale)).astype(np.int64)
    accumulator = x_codes @ w_codes.numpy().astype(np.int64).T + bias_codes
    assert np.abs(accumulator).max() > 2 ** 24
    expected = (accumulator.astype(np.float64) * float(x_scale * w_scale)).astype(np.float32)
    assert np.array_equal(out.numpy(), expected)
    assert torch.equal(layer.integer_inference(x), out)


@pytest.mark.parametrize("name", PRECISIONS)
def test_weight_codes_are_in_their_sets(name):
    torch.manual_seed(4)
    precision = Precision.parse(name)
    layer = conv2d(precision, 4, 6, 3)
    codes, scale = layer.quantized_weight_codes()
    assert not codes.is_floating_point()
    assert set(codes.unique().tolist()) <= CODE_SETS[precision.weights]
    if precision.weights == "abc":
        assert codes.shape == (precision.weight_bases, *layer.weight.shape) and scale.shape == (precision.weight_bases,)
    else:
        assert codes.shape == layer.weight.shape
        assert scale.shape == ((6,) if precision.weight_scale else ())
    if precision.weights == "int8":
        assert is_power_of_two(scale)


def test_binary_weights_are_signs_and_alpha_is_mean_absolute_weight():
    layer = linear("binary+alpha", 4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, -0.5, 0.25, 3.0], [-0.0, 0.5, -1e-9, -2.0]]))
    codes, alpha = layer.quantized_weight_codes()
    assert torch.equal(codes, torch.tensor([[1, -1, 1, 1], [1, 1, -1, -1]], dtype=torch.int8))
    # mean |W_c| over the latent weights clipped to [-1, 1] (a float statistic, no exactness claimed)
    torch.testing.assert_close(alpha, torch.tensor([1.75, 1.5]) / 4)


def test_ternary_codes_follow_the_twn_threshold():
    layer = linear("ternary+alpha", 5, 2)
    with torch.no_grad():  # mean|W| = 0.5, delta = 0.35
        layer.weight.copy_(torch.tensor([[0.36, -0.34, 1.0, -0.9, 0.0], [0.3, 0.2, -0.4, 0.34, 1.16]]))
    codes, alpha = layer.quantized_weight_codes()
    assert torch.equal(codes, torch.tensor([[1, 0, 1, -1, 0], [0, 0, -1, 0, 1]], dtype=torch.int8))
    # TWN's alpha: the mean magnitude of the weights kept (a float statistic, no exactness claimed).
    torch.testing.assert_close(alpha, torch.tensor([(0.36 + 1.0 + 0.9) / 3, (0.4 + 1.16) / 2]))


def test_int8_input_codes_round_half_to_even_and_saturate():
    layer = linear(INT8, 12, 1).eval()  # untrained input scale: 1/128
    x = torch.tensor([[0.5, 1.5, 2.5, -0.5, -1.5, 127.0, 127.5, 128.0, 500.0, -128.0, -128.5, -500.0]]) / 128
    codes = layer.input_quant(x).int()
    assert torch.equal(codes, torch.tensor([[0, 2, 2, 0, -2, 127, 127, 127, 127, -128, -128, -128]], dtype=codes.dtype))
    assert float(layer.input_quant(x).scale) == 1 / 128


def test_abc_bases_coefficients_and_activation_codes():
    torch.manual_seed(5)
    layer = linear("abc3x2", 30, 4)
    weight = layer.weight.detach()
    codes, alpha = layer.quantized_weight_codes()
    centred, std = weight - weight.mean(), weight.std(correction=0)
    for code, shift in zip(codes, (-1.0, 0.0, 1.0)):
        assert torch.equal(code, torch.where(centred + shift * std >= 0, 1, -1).to(torch.int8))
    basis_matrix = codes.reshape(3, -1).T.double().numpy()
    expected, *_ = np.linalg.lstsq(basis_matrix, weight.reshape(-1).double().numpy(), rcond=None)
    torch.testing.assert_close(alpha, torch.from_numpy(expected).float())  # a float fit: no exactness claimed
    assert torch.equal(layer.activation_shifts.detach(), torch.tensor([1.5, -0.5]))  # thresholds -1 and +1
    x = torch.tensor([[-1.0, -0.999, 0.0, 1.0, 1.001]])
    # >= 0.5: an input exactly on a threshold is +1, as sign(0) = +1
    assert torch.equal(layer.activation_codes(x), torch.tensor([[[1, 1, 1, 1, 1]], [[-1, -1, -1, 1, 1]]]))


def test_abc_eval_is_the_documented_fixed_point_combination_of_integer_sums():
    torch.manual_seed(6)
    layer = calibrated(conv2d("abc2x3", 3, 4, 3, padding=1, bias=True))
    with torch.no_grad():
        layer.activation_coefficients.copy_(torch.tensor([0.7, -0.013, 0.31]))  # signs and scales differ
    x = tricky_input(layer, (2, 3, 6, 6))
    w_codes, alpha = layer.quantized_weight_codes()
    coefficients = alpha[:, None] * layer.activation_coefficients.detach()[None, :]
    codes, exponent = layer.coefficient_codes()
    largest = float(coefficients.abs().max())
    assert largest <= 127 * 2.0 ** exponent and largest > 127 * 2.0 ** (exponent - 1)  # the smallest such e
    assert torch.equal(codes, torch.round(coefficients.double() / 2.0 ** exponent).long())
    act_codes = layer.activation_codes(x)
    acc = 0
    assert layer.input_pad_code == 1
    for i in range(2):
        for n in range(3):
            padded = torch.nn.functional.pad(act_codes[n].double(), (1, 1, 1, 1), value=1.0)  # +-1 bases pad +1
            acc = acc + int(codes[i, n]) * torch.nn.functional.conv2d(padded, w_codes[i].double()).long()
    out = (acc.double() * 2.0 ** exponent).float() + layer.bias.detach().view(-1, 1, 1)
    with torch.no_grad():
        assert torch.equal(layer(x), out)
        assert torch.equal(layer.integer_inference(x), out)


@pytest.mark.parametrize(("coefficients", "codes", "exponent"), [
    ([[1.0]], [[64]], -6),  # 1 = 64 * 2^-6: 128 * 2^-7 would need the code 128
    ([[127.0, -0.4]], [[127, 0]], 0),  # exactly 127: e = 0; -0.4 rounds to 0
    ([[127.5, 1.0]], [[64, 0]], 1),  # 127.5 / 2 = 63.75 -> 64; 1 / 2 = 0.5 -> 0 (half to even)
    ([[0.0, 0.0]], [[0, 0]], 0),
    ([[-3.0, 1.5]], [[-96, 48]], -5),
])
def test_coefficient_codes_are_int8_with_the_smallest_power_of_two_scale(coefficients, codes, exponent):
    got_codes, got_exponent = coefficient_codes(torch.tensor(coefficients))
    assert got_exponent == exponent and got_codes.tolist() == codes


def test_abc_training_rounds_the_coefficients_and_passes_their_gradient_to_beta():
    torch.manual_seed(9)
    layer = linear("abc2x2", 12, 3)
    x = torch.randn(5, 12)
    layer.train()
    out = layer(x)
    bases, alpha = layer.weight_bases()
    codes, exponent = layer.coefficient_codes(alpha)
    activations = torch.where(layer.activation_soft(x) >= 0.5, 1.0, -1.0)
    expected = sum(float(codes[i, n]) * 2.0 ** exponent * (activations[n] @ bases[i].detach().T)
                   for i in range(2) for n in range(2))
    torch.testing.assert_close(out, expected)  # the rounded coefficients, in float32 training arithmetic
    out.sum().backward()
    assert layer.activation_coefficients.grad.abs().sum() > 0


@pytest.mark.parametrize("name", PRECISIONS)
def test_training_step_reaches_every_learnable_parameter(name):
    torch.manual_seed(7)
    precision = Precision.parse(name)
    for layer, x in ((conv2d(precision, 3, 4, 3, padding=1, bias=True), torch.randn(4, 3, 6, 6)),
                     (linear(precision, 12, 5, bias=True), torch.randn(8, 12))):
        layer.train()
        x.requires_grad_(True)
        layer(x).square().mean().backward()
        expected = {"weight", "bias"}
        if precision.weights == "abc":
            expected |= {"activation_shifts", "activation_coefficients"}
        reached = {name for name, p in layer.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert expected <= reached
        assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["binary+alpha", "weight-binary+alpha", "ternary+alpha"])
def test_gradient_reaches_weights_through_alpha(name):
    """With alpha detached the weight gradient loses exactly dL/dalpha_c * d alpha_c / dW."""
    torch.manual_seed(8)
    layer = linear(name, 6, 3).eval()  # eval: fixed input scale, the same forward twice
    with torch.no_grad():
        layer.weight.uniform_(-0.9, 0.9)
    x = torch.randn(5, 6)
    layer.weight.grad = None
    layer(x).sum().backward()
    full = layer.weight.grad.clone()
    alpha = (layer.weight_alpha() if hasattr(layer, "weight_alpha") else layer.ternary_weight()[1]).detach()
    if hasattr(layer, "weight_alpha"):
        layer.weight_alpha = lambda: alpha
        d_alpha_d_weight = torch.sign(layer.weight.detach()) / 6
    else:
        kept = layer.quantized_weight_codes()[0] != 0
        layer.ternary_weight = (lambda original: lambda: (original()[0], alpha))(layer.ternary_weight)
        d_alpha_d_weight = torch.sign(layer.weight.detach()) * kept / kept.sum(1, keepdim=True)
    layer.weight.grad = None
    out = layer(x)
    out.sum().backward()
    d_loss_d_alpha = (out / alpha).sum(0)
    torch.testing.assert_close(full - layer.weight.grad, d_loss_d_alpha[:, None] * d_alpha_d_weight)


def test_binary_inputs_have_clipped_straight_through_gradient_and_weights_are_clipped():
    layer = linear("binary", 6, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, -3.0, 0.5, -0.5, 1.0, 0.0]]))
    x = torch.tensor([[-3.0, -1.0, -0.5, 0.0, 1.0, 1.5]], requires_grad=True)
    out = layer(x)
    assert torch.equal(out, torch.tensor([[-1.0 + 1.0 - 1.0 - 1.0 + 1.0 + 1.0]]))
    out.backward()
    # dL/dx = weight sign where |x| <= 1, else 0.
    assert torch.equal(x.grad, torch.tensor([[0.0, -1.0, 1.0, -1.0, 1.0, 0.0]]))
    assert torch.equal(layer.weight.detach(), torch.tensor([[1.0, -1.0, 0.5, -0.5, 1.0, 0.0]]))


def test_integer_inference_requires_eval_mode():
    layer = conv2d("ternary", 2, 2, 3).train()
    with pytest.raises(RuntimeError, match=r"TernaryConv2d.*\.eval\(\)"):
        layer.integer_inference(torch.randn(1, 2, 5, 5))


def test_exact_batchnorm2d_eval_is_bit_exact_against_numpy():
    torch.manual_seed(9)
    bn = ExactBatchNorm2d(5)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(5))
        bn.bias.copy_(torch.randn(5))
        bn.running_mean.copy_(torch.randn(5) * 10)
        bn.running_var.copy_(torch.rand(5) * 5 + 1e-3)
    bn.eval()
    x = torch.randint(-300, 301, (8, 5, 6, 7)).float()
    per_channel = {name: t.detach().numpy()[:, None, None] for name, t in
                   (("mean", bn.running_mean), ("var", bn.running_var), ("gamma", bn.weight), ("beta", bn.bias))}
    expected = ((x.numpy() - per_channel["mean"]) / np.sqrt(per_channel["var"] + np.float32(bn.eps))
                * per_channel["gamma"] + per_channel["beta"])
    assert expected.dtype == np.float32
    assert np.array_equal(bn(x).detach().numpy(), expected)


def test_exact_batchnorm2d_training_is_batchnorm2d_and_needs_affine():
    torch.manual_seed(10)
    exact, reference = ExactBatchNorm2d(3), torch.nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5) * 2 + 1
    for _ in range(2):
        assert torch.equal(exact(x), reference(x))
    assert torch.equal(exact.running_var, reference.running_var)
    with pytest.raises(ValueError, match="ExactBatchNorm2d requires affine=True"):
        ExactBatchNorm2d(3, affine=False)


@pytest.mark.parametrize("kernel_size, stride", [(2, 2), (3, 2), (3, 1)])
def test_avg_pool_eval_is_exact_window_sum_then_one_division(kernel_size, stride):
    torch.manual_seed(11)
    pool = integer_avg_pool2d(kernel_size, stride)
    assert isinstance(pool, ExactAvgPool2d)
    codes = torch.randint(-128, 128, (2, 3, 7, 8))
    scale = 2.0 ** -5
    x = codes.float() * scale
    assert torch.equal(pool.train()(x), torch.nn.functional.avg_pool2d(x, kernel_size, stride))
    out = pool.eval()(x)
    windows = np.lib.stride_tricks.sliding_window_view(x.numpy().astype(np.float64), (kernel_size, kernel_size),
                                                       axis=(2, 3))[:, :, ::stride, ::stride]
    expected = (windows.sum(axis=(-1, -2)) / kernel_size ** 2).astype(np.float32)
    assert np.array_equal(out.numpy(), expected)
    assert torch.equal(pool.integer_inference(codes, scale), out)


@pytest.mark.parametrize("name", ["binary+alpha", "ternary+alpha", "abc3x3"])
def test_weight_codes_and_scales_do_not_depend_on_thread_count(name):
    """A compiler in another process must get the scales the eval forward used; torch's own whole-tensor mean
    and lstsq change in the last bit with the thread count or from call to call."""
    torch.manual_seed(12)
    layer = conv2d(name, 128, 64, 3)  # 73,728 weights: large enough for torch to split reductions across threads
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 3, 4):
            torch.set_num_threads(count)
            results.append(layer.quantized_weight_codes())
    finally:
        torch.set_num_threads(threads)
    for codes, scale in results[1:]:
        assert torch.equal(codes, results[0][0]) and torch.equal(scale, results[0][1])


def test_deterministic_sum_is_exact_on_a_coarse_grid_and_order_free():
    values = torch.randint(-2 ** 20, 2 ** 20, (10000,)).float() * 2.0 ** -7  # exact in float32 and int64 alike
    expected = float(values.double().sum())  # integer multiples of 2^-7: exact in any order
    assert float(deterministic_sum(values)) == expected
    assert float(deterministic_sum(values.flip(0))) == expected
    rows = values.view(100, 100)
    assert torch.equal(deterministic_sum(rows, dim=1), rows.double().sum(1))


def test_least_squares_gives_dependent_bases_zero_coefficients():
    base = torch.tensor([1.0, -1.0, 1.0, 1.0])
    other = torch.tensor([1.0, 1.0, -1.0, 1.0])
    target = 0.75 * base + 0.25 * other
    alpha = least_squares_coefficients(torch.stack([base, other, base]), target)
    assert torch.equal(alpha, torch.tensor([0.75, 0.25, 0.0]))
