"""Lowering and every pass preserve the model's outputs exactly; bad models give errors that name the layer."""
import numpy as np
import pytest
import torch
from brevitas.nn import QuantLinear

from hbnn.compiler.check import GraphError
from hbnn.compiler.convert_to_xnor_popcount import convert_to_xnor_popcount
from hbnn.compiler.cycles import LAYER_PIPELINE_DEPTH, estimate_cycles
from hbnn.compiler.execute import execute
from hbnn.compiler.fold_batchnorm import fold_batchnorm_sign
from hbnn.compiler.ir import Folding, XnorPopcount
from hbnn.compiler.lower import UnsupportedLayerError, lower_model
from hbnn.compiler.pipeline import compile_model
from hbnn.compiler.set_folding import default_folding, set_folding
from hbnn.quant import BinaryMLP
from hbnn.quant.layers import ExactBatchNorm1d


def randomized_mlp(sizes, seed):
    torch.manual_seed(seed)
    model = BinaryMLP(sizes)
    with torch.no_grad():
        for module in model.layers:
            if isinstance(module, ExactBatchNorm1d):
                n = module.num_features
                module.running_mean.uniform_(-8, 8)
                module.running_var.uniform_(0.5, 30)
                module.weight.normal_()
                module.bias.normal_()
    return model.eval()


def torch_integers(model, x):
    with torch.no_grad():
        return model(x).to(torch.int64).numpy()


def test_every_pass_preserves_the_pytorch_outputs():
    model = randomized_mlp((24, 32, 16, 5), seed=1)
    x = torch.rand(400, 24)
    expected = torch_integers(model, x)
    bipolar = model.binarize_input(x).numpy().astype(np.int64)
    graph = lower_model(model)
    for compiler_pass in (fold_batchnorm_sign, convert_to_xnor_popcount, set_folding):
        np.testing.assert_array_equal(execute(graph, bipolar), expected)
        graph = compiler_pass(graph)
    np.testing.assert_array_equal(execute(graph, bipolar), expected)
    assert all(isinstance(node, XnorPopcount) and node.folding for node in graph.nodes)


def test_default_folding_meets_the_target_with_fewest_lanes():
    assert default_folding(128, 64, 32) == Folding(pe=4, simd=64)
    assert default_folding(10, 128, 32) == Folding(pe=5, simd=8)  # 40 lanes, 2 x 16 = 32 cycles
    assert default_folding(4, 8, 1) == Folding(pe=4, simd=8)
    assert default_folding(4, 8, 10_000) == Folding(pe=1, simd=1)


def test_folding_override_and_errors_name_the_layer():
    model = randomized_mlp((16, 12, 4), seed=2)
    graph = compile_model(model, {"layers.0": Folding(pe=3, simd=8)})
    assert graph.node("layers.0").folding == Folding(pe=3, simd=8)
    with pytest.raises(GraphError, match=r"layer 'layers.0'.*pe=5 does not divide its 12 output rows.*\[1, 2, 3, 4, 6, 12\]"):
        compile_model(model, {"layers.0": Folding(pe=5, simd=1)})
    with pytest.raises(GraphError, match=r"layer 'layers.3'.*simd=5 does not divide its 12 input columns"):
        compile_model(model, {"layers.3": Folding(pe=1, simd=5)})
    with pytest.raises(GraphError, match=r"unknown layer\(s\) \['fc9'\]"):
        compile_model(model, {"fc9": Folding(pe=1, simd=1)})
    with pytest.raises(ValueError, match="pe must be a positive integer, not 0"):
        Folding(pe=0, simd=1)


def test_cycle_model_by_hand():
    model = randomized_mlp((16, 12, 4), seed=3)
    graph = compile_model(model, {"layers.0": Folding(pe=3, simd=8), "layers.3": Folding(pe=1, simd=4)})
    estimate = estimate_cycles(graph)
    assert [layer.cycles for layer in estimate.layers] == [4 * 2, 4 * 3]
    assert estimate.latency == 8 + 12 + 2 * LAYER_PIPELINE_DEPTH
    assert estimate.initiation_interval == 12


def test_unsupported_layer_is_named():
    model = randomized_mlp((8, 8, 2), seed=4)
    model.layers.insert(2, torch.nn.ReLU())
    with pytest.raises(UnsupportedLayerError, match=r"layer 'layers.2' \(torch.nn.modules.activation.ReLU\) is not supported"):
        lower_model(model)


def test_fused_batchnorm_and_bias_are_refused():
    model = randomized_mlp((8, 8, 2), seed=5)
    model.layers[1] = torch.nn.BatchNorm1d(8)
    with pytest.raises(UnsupportedLayerError, match="layers.1.*ExactBatchNorm1d"):
        lower_model(model)
    model = randomized_mlp((8, 8, 2), seed=5)
    model.layers[3] = QuantLinear(8, 2, bias=True)
    with pytest.raises(UnsupportedLayerError, match="layers.3.*bias"):
        lower_model(model)
