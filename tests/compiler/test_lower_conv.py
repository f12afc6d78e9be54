"""Convolutions, pools and flattening in the IR: lowered and compiled graphs execute exactly as PyTorch does, the
passes keep that, and what has no mapping is refused by name."""
import numpy as np
import pytest
import torch
from torch import nn

from hbnn.compiler.check import GraphError, check_graph
from hbnn.compiler.execute import execute, im2col
from hbnn.compiler.ir import Flatten, Folding, Graph, Int, MultiThreshold, Pool, Quantize, SlidingWindow, Tensor
from hbnn.compiler.lower import UnsupportedLayerError, input_layer_of, lower_model, network_input_codes
from hbnn.compiler.passes.set_folding import set_folding
from hbnn.compiler.pipeline import compile_graph
from hbnn.quant.layers import ExactBatchNorm2d
from hbnn.quant.pooling import ExactAvgPool2d
from hbnn.quant.precision import Precision, conv2d, linear
from hbnn.sim.conv_fuzz import draw_conv_case, random_conv_stack, with_simd
from hbnn.compiler.wire_order import wire_order
from hbnn.sim.verify import mismatching


def torch_mismatches(model, graph, x) -> int:
    """Outputs of the graph (executed on the input layer's codes) that differ from PyTorch's float32 outputs."""
    codes = network_input_codes(model, input_layer_of(graph), x)
    out = execute(graph, codes)[graph.outputs[0]]
    with torch.no_grad():
        expected = wire_order(model(x).numpy()).reshape(len(x), -1)
    exponent = check_graph(graph)[graph.outputs[0]].dtype.exponent
    return mismatching(wire_order(out).reshape(len(x), -1), exponent, expected, graph.divisor_of(graph.outputs[0]))


@pytest.mark.parametrize("seed", range(40))
def test_random_cnns_lower_and_compile_bit_exact(seed):
    case = draw_conv_case(np.random.default_rng(seed))
    model = random_conv_stack(case)
    graph = with_simd(lower_model(model, (case.in_channels, case.size, case.size)), Pool, case.pool_simd)
    x = torch.rand(40, case.in_channels, case.size, case.size)
    assert torch_mismatches(model, graph, x) == 0, case.describe()
    compiled = compile_graph(graph, target_cycles=64)
    assert torch_mismatches(model, compiled, x) == 0, case.describe()


class Small(nn.Module):
    """weight-binary conv (zero padding) -> BN -> max pool -> binary conv (+1 padding) -> BN -> flatten -> int8."""
    in_channels, image_size = 2, 6

    def __init__(self):
        super().__init__()
        self.conv1 = conv2d(Precision.parse("weight-binary"), 2, 4, 3, padding=1)
        self.bn1 = ExactBatchNorm2d(4)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = conv2d(Precision.parse("binary"), 4, 3, 3, padding=1)
        self.bn2 = ExactBatchNorm2d(3)
        self.relu2 = nn.ReLU()
        self.fc = linear(Precision.parse("int8"), 3 * 3 * 3, 5, bias=True)

    def forward(self, x):
        x = self.pool1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


def small():
    torch.manual_seed(0)
    model = Small()
    model.train()
    model(torch.rand(8, 2, 6, 6))
    return model.eval()


def test_a_convolution_lowers_to_a_window_with_its_pad_code_and_a_dense_in_window_order():
    model = small()
    graph = lower_model(model)
    windows = [node for node in graph.nodes if isinstance(node, SlidingWindow)]
    assert [(w.name, w.kernel, w.stride, w.padding, w.pad_code) for w in windows] == [
        ("conv1.window", 3, 1, 1, 0), ("conv2.window", 3, 1, 1, 1)]  # int8 inputs pad 0, signs pad +1
    codes, _ = model.conv2.quantized_weight_codes()
    dense = graph.node("conv2")
    # column (ky*K + kx)*C + c holds torch's weight [o, c, ky, kx]
    np.testing.assert_array_equal(dense.weights[:, (1 * 3 + 2) * 4 + 3], codes[:, 3, 1, 2].numpy())
    types = check_graph(graph)
    assert types["conv2.window"].shape == (36, 3, 3) and types["conv2"].shape == (3, 3, 3)


def test_flatten_keeps_the_wire_order_and_the_next_layer_reads_it_permuted():
    model = small()
    graph = lower_model(model)
    (flatten,) = [node for node in graph.nodes if isinstance(node, Flatten)]
    codes, _ = model.fc.quantized_weight_codes()
    # wire element (y*W + x)*C + c is torch's flattened element c*H*W + y*W + x
    np.testing.assert_array_equal(graph.node("fc").weights[:, (2 * 3 + 1) * 3 + 2], codes[:, 2 * 9 + 2 * 3 + 1])
    values = np.arange(2 * 3 * 3 * 3).reshape(2, 3, 3, 3)
    only = Graph((("x", Tensor(Int(8, True), (3, 3, 3))),), (Flatten("f", ("x",)),), ("f",))
    np.testing.assert_array_equal(execute(only, values)["f"].reshape(2, -1),
                                  values.transpose(0, 2, 3, 1).reshape(2, -1))
    assert check_graph(graph)[flatten.name].shape == (27, 1, 1)


def test_quantizers_move_in_front_of_max_pools_and_flattens_and_fold():
    compiled = compile_graph(lower_model(small()), target_cycles=16)
    kinds = [type(node).__name__ for node in compiled.nodes]
    assert kinds == ["SlidingWindow", "Dense", "MultiThreshold", "Pool", "SlidingWindow", "Dense", "MultiThreshold",
                     "Flatten", "Dense"]
    pool = next(node for node in compiled.nodes if isinstance(node, Pool))
    assert check_graph(compiled)[pool.name].dtype.__class__.__name__ == "Bipolar"  # a max of signs: an OR of bits
    assert not any(isinstance(node, Quantize) for node in compiled.nodes)


def test_conv_folding_counts_pixels_and_simd_divides_the_window_channels():
    graph = compile_graph(lower_model(small()), target_cycles=3 * 3 * 9)
    conv2 = graph.node("conv2")
    # 9 pixels x (3/PE) x (36/SIMD) <= 81 with SIMD dividing 4 channels: PE 3, SIMD 4 (9 x 1 x 9 = 81)
    assert conv2.folding == Folding(3, 4)
    with pytest.raises(GraphError, match=r"simd=3 does not divide its 4 input channels \(the sliding window's C\)"):
        set_folding(lower_model(small()), overrides={"conv2": Folding(1, 3)})


def test_sliding_window_reference_is_im2col():
    x = np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    cols = im2col(x, 3, 2, 1, -7)
    assert cols.shape == (2, 27, 2, 2)
    # output (1, 0), ky=0, kx=0 reads input (1*2-1, 0*2-1) = (1, -1): padding
    assert (cols[:, 0:3, 1, 0] == -7).all()
    np.testing.assert_array_equal(cols[:, (1 * 3 + 1) * 3 + 2, 1, 1], x[:, 2, 2, 2])


class AverageOfFloats(nn.Module):
    in_channels, image_size = 1, 4

    def __init__(self):
        super().__init__()
        self.conv = conv2d(Precision.parse("int8"), 1, 2, 3, padding=1)
        self.bn = ExactBatchNorm2d(2)
        self.pool = ExactAvgPool2d(4)

    def forward(self, x):
        return torch.flatten(self.pool(self.bn(self.conv(x))), 1)


def test_an_average_of_float_values_is_refused_by_name():
    model = AverageOfFloats().eval()
    with pytest.raises(UnsupportedLayerError, match=r"'pool'.*quantize them first"):
        lower_model(model)


def test_dilated_convolutions_are_refused_by_name():
    class Dilated(nn.Module):
        in_channels, image_size = 2, 6

        def __init__(self):
            super().__init__()
            self.conv = conv2d(Precision.parse("int8"), 2, 2, 3)
            self.conv.dilation = (2, 2)

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(UnsupportedLayerError, match="'conv'.*grouped and dilated convolutions have no mapping"):
        lower_model(Dilated().eval())


def test_the_average_pool_division_goes_to_the_host():
    """NIN's head: the last conv's accumulators are summed; the host divides by the area (output_divisors)."""
    case = next(case for seed in range(200)
                if (case := draw_conv_case(np.random.default_rng(seed))).head == "average-accumulators")
    model = random_conv_stack(case)
    graph = compile_graph(lower_model(model, (case.in_channels, case.size, case.size)), target_cycles=64)
    last = graph.node(graph.outputs[0])
    assert isinstance(last, Pool) and last.kind == "sum"
    assert graph.divisor_of(graph.outputs[0]) == last.area
    assert not isinstance(graph.nodes[-1], MultiThreshold)


def test_a_ternary_lenet5_lowers_and_compiles_bit_exact():
    from hbnn.quant.models import build_model

    torch.manual_seed(0)
    model = build_model("lenet5", precision="ternary", in_channels=1, num_classes=10, image_size=28,
                        full_precision="int8")
    model.train()
    model(torch.rand(16, 1, 28, 28))  # the quantizers' scales
    model.eval()
    graph = lower_model(model)
    assert {node.weight_kind for node in graph.dense_layers()} >= {"ternary"}
    x = torch.rand(12, 1, 28, 28)
    assert torch_mismatches(model, graph, x) == 0
    assert torch_mismatches(model, compile_graph(graph, target_cycles=256), x) == 0


@pytest.mark.parametrize("model_name, bases", [("lenet5", (1, 1)), ("lenet5", (3, 1)), ("lenet5", (3, 3)),
                                               ("lenet5", (5, 3)), ("alexnet_small", (3, 3))])
def test_abc_zoo_cnns_lower_and_compile_bit_exact(model_name, bases):
    """ABC-Net layers: the activation bases as levels from N thresholds, the weight bases as planes combined by the
    integer coefficient codes; exact before and after the passes (folded, time-multiplexed bases included)."""
    from hbnn.quant.models import build_model

    torch.manual_seed(sum(bases))
    model = build_model(model_name, precision="abc", in_channels=1, num_classes=10, image_size=28,
                        weight_bases=bases[0], act_bases=bases[1])
    model.train()
    with torch.no_grad():
        for _ in range(3):  # batch-norm statistics and input scales from random images
            model(torch.rand(16, 1, 28, 28))
    model.eval()
    graph = lower_model(model, (1, 28, 28))
    x = torch.rand(20, 1, 28, 28)
    assert torch_mismatches(model, graph, x) == 0
    compiled = compile_graph(graph, target_cycles=20_000)
    abc = [node for node in compiled.dense_layers() if node.weight_kind == "abc"]
    assert abc and all(node.folding.bases in (None, *range(1, bases[0] + 1)) for node in abc)
    assert torch_mismatches(model, compiled, x) == 0
