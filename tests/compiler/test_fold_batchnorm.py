"""Batch norm + sign folded into integer thresholds equals PyTorch on every reachable accumulator value."""
import numpy as np
import pytest
import torch

from hbnn.compiler.execute import execute
from hbnn.compiler.fold_batchnorm import fold_batchnorm_sign
from hbnn.compiler.ir import BatchNorm, BinaryDense, Graph, Sign, Threshold
from hbnn.quant.layers import ExactBatchNorm1d


def random_batchnorm(rng, channels, in_features):
    bn = ExactBatchNorm1d(channels)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor(rng.uniform(-in_features, in_features, channels), dtype=torch.float32))
        bn.running_var.copy_(torch.tensor(rng.uniform(0.01, in_features, channels), dtype=torch.float32))
        gamma = rng.normal(0, 1, channels)
        gamma[: channels // 4] = -np.abs(gamma[: channels // 4])  # some negative scales, whatever the draw
        gamma[-1] = 0.0  # a dead channel: constant output
        bn.weight.copy_(torch.tensor(gamma, dtype=torch.float32))
        bn.bias.copy_(torch.tensor(rng.normal(0, 1, channels), dtype=torch.float32))
    return bn.eval()


def as_node(name, bn):
    return BatchNorm(name=name, mean=bn.running_mean.numpy(), var=bn.running_var.numpy(),
                     gamma=bn.weight.detach().numpy(), beta=bn.bias.detach().numpy(), eps=bn.eps)


@pytest.mark.parametrize("in_features", [1, 7, 64, 255])
def test_thresholds_equal_pytorch_on_every_accumulator_value(in_features):
    rng = np.random.default_rng(in_features)
    channels = 32
    bn = random_batchnorm(rng, channels, in_features)
    weights = np.where(rng.random((channels, in_features)) < 0.5, 1, -1)
    graph = Graph(in_features, (BinaryDense("fc", weights), as_node("bn", bn), Sign("sign")))
    folded = fold_batchnorm_sign(graph)
    threshold = folded.nodes[1]
    assert isinstance(threshold, Threshold)

    reachable = torch.arange(-in_features, in_features + 1, 2, dtype=torch.float32)
    grid = reachable[:, None].expand(-1, channels).contiguous()
    with torch.no_grad():
        expected = torch.where(bn(grid) >= 0, 1, -1).numpy()
    accumulators = grid.numpy().astype(np.int64)
    signed = np.where(threshold.flip, -accumulators, accumulators)
    folded_out = np.where(signed >= threshold.thresholds, 1, -1)
    np.testing.assert_array_equal(folded_out, expected)
    # Negative scales whose sign changes within the reachable range became flipped comparisons.
    changes = (expected != expected[:1]).any(axis=0)
    negative = bn.weight.detach().numpy() < 0
    np.testing.assert_array_equal(threshold.flip[changes], negative[changes])
    assert (negative & changes).any()


def test_folded_graph_equals_unfolded_on_random_inputs():
    rng = np.random.default_rng(5)
    bn = random_batchnorm(rng, 16, 40)
    weights = np.where(rng.random((16, 40)) < 0.5, 1, -1)
    graph = Graph(40, (BinaryDense("fc", weights), as_node("bn", bn), Sign("sign")))
    x = np.where(rng.random((500, 40)) < 0.5, 1, -1)
    np.testing.assert_array_equal(execute(fold_batchnorm_sign(graph), x), execute(graph, x))


def test_boundary_exactly_at_zero_gives_plus_one():
    # (acc - 2) / 1 * 1 + 0 is exactly 0.0 at acc = 2: sign(0) = +1, so the threshold is 2, not 4.
    bn = BatchNorm("bn", mean=[2.0], var=[1.0 - 1e-5], gamma=[1.0], beta=[0.0], eps=1e-5)
    graph = Graph(4, (BinaryDense("fc", np.ones((1, 4))), bn, Sign("sign")))
    threshold = fold_batchnorm_sign(graph).nodes[1]
    assert threshold.thresholds.tolist() == [2] and threshold.flip.tolist() == [False]


def test_nan_parameters_are_an_error_naming_the_layer():
    bn = BatchNorm("layers.1", mean=[np.nan], var=[1.0], gamma=[1.0], beta=[0.0], eps=1e-5)
    graph = Graph(4, (BinaryDense("layers.0", np.ones((1, 4))), bn, Sign("layers.2")))
    with pytest.raises(ValueError, match="layers.1.*NaN"):
        fold_batchnorm_sign(graph)
