"""Lowering by graph capture: the IR executes exactly as PyTorch does, and unmapped layers are refused by name."""
import numpy as np
import pytest
import torch
from torch import nn

from hbnn.compiler.check import GraphError, check_graph
from hbnn.compiler.execute import execute
from hbnn.compiler.ir import Bipolar, ChannelOps, Dense, Int, Quantize
from hbnn.compiler.lower import (UnsupportedLayerError, UnsupportedModelError, input_layer_of, lower_model,
                                 network_input_codes)
from hbnn.compiler.pipeline import compile_graph
from hbnn.quant.precision import linear

from hbnn.sim.fuzz import random_stack

PLANS = [("binary", "binary", "binary"), ("int8", "binary", "int8"), ("int8", "int8", "int8"),
         ("int8", "weight-binary", "binary"), ("weight-binary", "int8", "weight-binary"),
         ("binary+alpha", "weight-binary+alpha", "int8")]


def outputs_as_torch(graph, codes):
    """The graph's integer outputs as the float32 values PyTorch computes: code * 2**exponent, rounded once."""
    out = execute(graph, codes)[graph.outputs[0]]
    exponent = check_graph(graph)[graph.outputs[0]].dtype.exponent
    return (out.reshape(len(out), -1).astype(np.float64) * 2.0 ** exponent).astype(np.float32)


@pytest.mark.parametrize("plan", PLANS, ids="-".join)
def test_lowered_and_compiled_graphs_equal_pytorch_bit_for_bit(plan):
    model = random_stack(plan, (48, 32, 16, 10), seed=len("".join(plan)))
    x = torch.rand(300, 48)
    graph = lower_model(model)
    codes = network_input_codes(model, input_layer_of(graph), x)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_array_equal(outputs_as_torch(graph, codes), expected)  # exact: float32 == (-0.0 == +0.0)
    compiled = compile_graph(graph, target_cycles=8)
    np.testing.assert_array_equal(execute(compiled, codes)[compiled.outputs[0]],
                                  execute(graph, codes)[graph.outputs[0]])


def test_lowering_names_values_after_modules_and_types_them():
    graph = lower_model(random_stack(("int8", "binary", "binary"), (16, 8, 8, 4)))
    types = check_graph(graph)
    assert graph.inputs[0][0] == "fcs.0.input_quant" and isinstance(graph.inputs[0][1].dtype, Int)
    assert [type(node).__name__ for node in graph.nodes] == ["Dense", "ChannelOps", "Quantize"] * 2 + ["Dense"]
    first_ops = graph.nodes[1]
    assert isinstance(first_ops, ChannelOps) and [type(op).__name__ for op in first_ops.ops] == ["Scale", "BatchNorm"]
    assert isinstance(types["fcs.1.input_quant"].dtype, Bipolar)
    assert graph.outputs == ("fcs.2",) and types["fcs.2"].dtype == Int(5, True, 0)  # 8 products of +-1
    assert types["fcs.2"].shape == (4, 1, 1)


def test_an_int8_output_carries_its_power_of_two_scale():
    model = random_stack(("binary", "int8"), (16, 8, 4))
    graph = lower_model(model)
    dense = graph.node("fcs.1")
    assert isinstance(dense, Dense) and dense.weight_kind == "int8"
    _, scale = model.fcs[1].quantized_weight_codes()
    quantizer = graph.node("fcs.1.input_quant")
    assert isinstance(quantizer, Quantize) and quantizer.kind == "int8"
    exponent = check_graph(graph)["fcs.1"].dtype.exponent
    assert 2.0 ** exponent == float(scale) * 2.0 ** quantizer.exponent


class Wrapped(nn.Module):
    def __init__(self, *modules):
        super().__init__()
        self.body = nn.Sequential(*modules)

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize("modules, match", [
    (lambda: [linear("binary", 8, 8), nn.Tanh(), linear("binary", 8, 2)], r"'body.1'.*Tanh.*no integer lowering"),
    (lambda: [linear("binary", 8, 8), nn.BatchNorm1d(8), linear("binary", 8, 2)], r"'body.1'.*ExactBatchNorm1d"),
    (lambda: [linear("abc2x1", 8, 8), linear("binary", 8, 2)], r"'body.0'.*ABC-Net layer reading the network input"),
    (lambda: [linear("float", 8, 8), linear("binary", 8, 2)], r"'body.0'.*float layers"),
])
def test_unmapped_layers_are_named_with_the_reason(modules, match):
    with pytest.raises(UnsupportedLayerError, match=match):
        lower_model(Wrapped(*modules()))


def test_a_float_op_after_the_last_layer_is_refused_by_name():
    with pytest.raises(GraphError, match=r"output 'body.1.out'.*Multiply.*'body.1'"):
        lower_model(Wrapped(linear("binary", 8, 8), linear("binary+alpha", 8, 2)))


def test_the_first_unmapped_layer_of_a_zoo_cnn_is_named():
    from hbnn.quant.models import build_model
    model = build_model("lenet5", precision="fp", in_channels=1, num_classes=10, image_size=28,
                        full_precision="float")
    with pytest.raises(UnsupportedLayerError, match=r"'features.conv1'.*float layers"):
        lower_model(model)


def test_a_model_without_quantized_layers_is_refused():
    with pytest.raises(UnsupportedModelError, match="not computed by a quantized layer"):
        lower_model(Wrapped(nn.Flatten()), input_shape=(8,))


def test_a_model_that_does_not_state_its_input_shape_is_asked_for_it():
    with pytest.raises(UnsupportedModelError, match="does not say its input shape; pass input_shape"):
        lower_model(Wrapped(nn.Flatten()))
