"""Multi-level thresholds by bisection equal the exact float function they replace: a sign, and an int8
requantization after batch norm over accumulator ranges far too large to enumerate."""
import numpy as np
import pytest
import torch

from hbnn.compiler.float_ops import apply_channel_ops
from hbnn.compiler.ir import BatchNorm
from hbnn.compiler.multithreshold import fold_steps
from hbnn.quant.layers import ExactBatchNorm1d


def random_batchnorm(rng, channels, spread):
    bn = ExactBatchNorm1d(channels)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor(rng.uniform(-spread, spread, channels), dtype=torch.float32))
        bn.running_var.copy_(torch.tensor(rng.uniform(0.01, spread, channels) ** 2, dtype=torch.float32))
        gamma = rng.normal(0, 1, channels)
        gamma[: channels // 3] = -np.abs(gamma[: channels // 3])  # falling steps
        gamma[-2:] = 0.0  # constant channels
        bn.weight.copy_(torch.tensor(gamma, dtype=torch.float32))
        bn.bias.copy_(torch.tensor(rng.normal(0, 4, channels), dtype=torch.float32))
    return bn.eval()


def as_node(bn):
    return BatchNorm(mean=bn.running_mean.numpy(), var=bn.running_var.numpy(),
                     gamma=bn.weight.detach().numpy(), beta=bn.bias.detach().numpy(), eps=bn.eps)


def torch_int8_codes(bn, accumulators, acc_scale, out_scale):
    """The contract's op sequence: f32(acc * s) (computed in float64), batch norm, int8 input quantizer."""
    with torch.no_grad():
        y = (torch.tensor(accumulators, dtype=torch.float64) * acc_scale).to(torch.float32)
        return torch.clamp(torch.round(bn(y) / out_scale), -128, 127).to(torch.int64).numpy()


def numpy_int8_levels(node, acc_scale, out_scale):
    def levels_of(accumulators):
        y = (accumulators.astype(np.float64) * acc_scale).astype(np.float32)
        z = apply_channel_ops((node,), y[..., None, None], None)[..., 0, 0]
        return np.clip(np.rint(z / np.float32(out_scale)), -128, 127).astype(np.int64) + 128
    return levels_of


@pytest.mark.parametrize("bound, acc_scale, out_scale", [
    (300, 2.0 ** -6, 2.0 ** -4), (1 << 20, 2.0 ** -12, 2.0 ** -3), (1 << 26, 2.0 ** -18, 2.0 ** -2)])
def test_int8_requantization_thresholds_equal_pytorch(bound, acc_scale, out_scale):
    rng = np.random.default_rng(bound)
    channels = 24
    spread = bound * acc_scale
    bn = random_batchnorm(rng, channels, spread)
    steps = fold_steps(numpy_int8_levels(as_node(bn), acc_scale, out_scale), channels, -bound, bound, levels=256)
    assert steps.thresholds.shape == (channels, 255)
    assert (np.diff(steps.thresholds, axis=1) >= 0).all()

    # Every threshold and its neighbours (where the output changes), plus random accumulators, in every channel.
    keys = np.concatenate([steps.thresholds.ravel() + d for d in (-1, 0, 1)])
    probes = np.concatenate([keys, -keys, rng.integers(-bound, bound + 1, 3000), [-bound, bound]])
    probes = np.clip(probes, -bound, bound)
    grid = np.broadcast_to(probes[:, None], (probes.size, channels)).copy()
    expected = torch_int8_codes(bn, grid, acc_scale, out_scale)
    np.testing.assert_array_equal(steps.levels(grid) - 128, expected)
    # The draw exercised what it should: several levels per channel, falling and constant channels.
    varying = (expected != expected[:1]).any(axis=0)
    assert varying.sum() >= channels - 3 and steps.descending[varying].any()
    np.testing.assert_array_equal(steps.descending[varying], bn.weight.detach().numpy()[varying] < 0)


def test_small_range_exhaustively():
    rng = np.random.default_rng(3)
    bound, channels = 200, 16
    bn = random_batchnorm(rng, channels, 1.0)
    steps = fold_steps(numpy_int8_levels(as_node(bn), 2.0 ** -7, 2.0 ** -5), channels, -bound, bound, levels=256)
    grid = np.broadcast_to(np.arange(-bound, bound + 1)[:, None], (2 * bound + 1, channels)).copy()
    np.testing.assert_array_equal(steps.levels(grid) - 128, torch_int8_codes(bn, grid, 2.0 ** -7, 2.0 ** -5))


@pytest.mark.parametrize("seed", range(20))
def test_bisection_recovers_any_monotone_step_on_a_strided_lattice(seed):
    rng = np.random.default_rng(seed)
    channels, levels, low, stride = 5, int(rng.integers(2, 9)), -int(rng.integers(0, 40)), int(rng.integers(1, 4))
    high = low + stride * int(rng.integers(0, 60))
    cuts = np.sort(rng.integers(low - 10, high + 10, (channels, levels - 1)), axis=1)
    falling = rng.random(channels) < 0.5

    def levels_of(accumulators):
        keys = np.where(falling, -accumulators, accumulators)
        return (keys[..., None] >= np.where(falling[:, None], -cuts[:, ::-1], cuts)).sum(axis=-1)

    steps = fold_steps(levels_of, channels, low, high, levels, stride=stride)
    lattice = np.arange(low, high + 1, stride)
    grid = np.broadcast_to(lattice[:, None], (lattice.size, channels))
    np.testing.assert_array_equal(steps.levels(grid), levels_of(grid))


def test_constant_channels_use_always_and_never():
    steps = fold_steps(lambda acc: np.full(acc.shape, 2), channels=1, low=-4, high=4, levels=4)
    assert steps.thresholds.tolist() == [[-4, -4, steps.never]] and steps.never == 5
    assert steps.levels(np.array([[-4], [0], [4]])).ravel().tolist() == [2, 2, 2]


def test_a_bad_lattice_is_refused():
    with pytest.raises(ValueError, match="lattice"):
        fold_steps(lambda acc: acc, channels=1, low=0, high=5, levels=2, stride=2)
