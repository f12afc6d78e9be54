"""Residual sums in the IR: QuantAdd lowers to an integer ElementwiseAdd that executes exactly as PyTorch adds;
a value read by several quantizers gets one threshold each (equal ones merged); the zero-pad shortcut pads codes
with the quantized zero; a float residual sum, adds of different scales and adds of the network input are
refused by name."""
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from hbnn.compiler.check import GraphError, check_graph
from hbnn.compiler.ir import Bipolar, ChannelPad, ElementwiseAdd, Graph, Int, MultiThreshold, Tensor
from hbnn.compiler.lower import UnsupportedLayerError, lower_model
from hbnn.compiler.map_to_hardware import map_design, map_stages
from hbnn.compiler.pipeline import compile_graph
from hbnn.hw.add_join import AddJoin
from hbnn.hw.fork import Fork
from hbnn.hw.stream_fifo import StreamFifo
from hbnn.quant.precision import Precision, conv2d
from hbnn.quant.layers import ExactBatchNorm2d
from hbnn.quant.residual import QuantAdd, ZeroPadShortcut
from hbnn.sim.residual_fuzz import Block, ResidualCase, draw_residual_case, random_residual_stack
from hbnn.sim.verify import graph_mismatches as torch_mismatches

# The mappings here are inspected, never elaborated.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.mark.parametrize("seed", range(25))
def test_random_residual_cnns_lower_and_compile_bit_exact(seed):
    case = draw_residual_case(np.random.default_rng(seed))
    model = random_residual_stack(case)
    graph = lower_model(model, (case.in_channels, case.size, case.size))
    assert sum(isinstance(node, ElementwiseAdd) for node in graph.nodes) == len(case.blocks)
    x = torch.rand(40, case.in_channels, case.size, case.size)
    assert torch_mismatches(model, graph, x) == 0, case.describe()
    compiled = compile_graph(graph, target_cycles=64)
    assert torch_mismatches(model, compiled, x) == 0, case.describe()


def test_the_sum_is_one_bit_wider_and_its_readers_are_thresholds():
    case = ResidualCase(1, 4, ("int8", 4), (Block(4, 1, "binary", "binary", None),), 3,
                        ((1, 1),) * 4, (1,), images=1, seed=3)
    compiled = compile_graph(lower_model(random_residual_stack(case), (1, 4, 4)), target_cycles=64)
    types = check_graph(compiled)
    add, = [node for node in compiled.nodes if isinstance(node, ElementwiseAdd)]
    assert [types[value].dtype for value in add.inputs] == [Int(8, True, types[add.name].dtype.exponent)] * 2
    assert types[add.name].dtype.width == 9
    assert all(isinstance(reader, MultiThreshold) for reader in compiled.readers(add.name))


def test_equal_quantizers_of_one_value_become_one_threshold_unit_and_a_fork():
    # Block 0's input is read by conv1 and by the 1x1 shortcut, both binary: one sign threshold, forked.
    case = ResidualCase(1, 4, ("int8", 4), (Block(4, 1, "binary", "int8", "binary"),), 3,
                        ((1, 1),) * 5, (1,), images=1, seed=4)
    compiled = compile_graph(lower_model(random_residual_stack(case), (1, 4, 4)), target_cycles=64)
    stem_readers = compiled.readers("stem")
    assert len(stem_readers) == 1 and isinstance(stem_readers[0], MultiThreshold)
    assert len(compiled.readers(stem_readers[0].name)) == 2  # conv1's window and the shortcut conv
    design = map_design(compiled)
    kinds = [type(stage.component) for stage in design.stages]
    assert kinds.count(Fork) == 1 and kinds.count(AddJoin) == 1
    assert not design.is_chain
    with pytest.raises(GraphError, match="map_design"):
        map_stages(compiled)


def test_only_the_short_branch_gets_a_bypass_fifo_deep_enough_for_the_long_one():
    # Identity shortcut beside two slowly folded 3x3 convs: the bypass holds what the long branch has not yet
    # answered. The long branch ends in its threshold unit, straight into the join.
    case = ResidualCase(1, 5, ("int8", 4), (Block(4, 1, "binary", "binary", None),), 3,
                        ((4, 1), (1, 1), (1, 1), (1, 4)), (2,), images=1, seed=5)
    compiled = compile_graph(lower_model(random_residual_stack(case), (1, 5, 5)), target_cycles=64)
    design = map_design(compiled)
    (index, edge), = design.bypass_fifos
    assert edge == "blocks.0.add.b -> blocks.0.add.sum"  # the shortcut's addend
    fifo = design.stages[index].component
    assert isinstance(fifo, StreamFifo) and fifo.depth > 2


def test_a_float_residual_sum_is_refused_by_name():
    class FloatSum(nn.Module):
        in_channels, image_size = 1, 4

        def __init__(self):
            super().__init__()
            self.conv1 = conv2d(Precision.parse("int8"), 1, 2, 3, padding=1)
            self.conv2 = conv2d(Precision.parse("int8"), 2, 2, 3, padding=1)

        def forward(self, x):
            y = self.conv1(x)
            return self.conv2(y) + y

    with pytest.raises(UnsupportedLayerError, match="QuantAdd"):
        lower_model(FloatSum().eval())


def test_a_residual_add_of_the_network_input_is_refused():
    class InputSum(nn.Module):
        in_channels, image_size = 1, 4

        def __init__(self):
            super().__init__()
            self.conv = conv2d(Precision.parse("int8"), 1, 1, 3, padding=1)
            self.add = QuantAdd()

        def forward(self, x):
            return self.add(self.conv(x), x)

    model = InputSum()
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 1, 4, 4))
    with pytest.raises(UnsupportedLayerError, match="'add'.*network input"):
        lower_model(model.eval())


def test_adds_of_different_scales_or_shapes_are_refused():
    inputs = (("a", Tensor(Int(8, True, -3), (4, 2, 2))),)
    graph = Graph(inputs, (ElementwiseAdd("sum", ("a", "a")),), ("sum",))
    assert check_graph(graph)["sum"].dtype == Int(9, True, -3)
    two = (("a", Tensor(Int(8, True, -3), (4, 2, 2))), ("b", Tensor(Int(8, True, -2), (4, 2, 2))))
    with pytest.raises(GraphError, match="one scale.*QuantAdd"):
        check_graph(Graph(two, (ElementwiseAdd("sum", ("a", "b")),), ("sum",)))
    two = (("a", Tensor(Int(8, True, -3), (4, 2, 2))), ("b", Tensor(Int(8, True, -3), (4, 1, 1))))
    with pytest.raises(GraphError, match="one shape"):
        check_graph(Graph(two, (ElementwiseAdd("sum", ("a", "b")),), ("sum",)))
    with pytest.raises(GraphError, match="simd=3 does not divide"):
        check_graph(Graph(inputs, (dataclasses.replace(ElementwiseAdd("sum", ("a", "a")), simd=3),), ("sum",)))


def test_a_zero_pad_shortcut_pads_codes_with_the_quantized_zero():
    """The CIFAR ResNets' option-A shortcut: a 1x1 stride-2 subsample and zero channels, lowered on float32 and
    moved behind the reader's quantizer: in front of a binary layer the pad code is sign(0) = +1."""
    class Padded(nn.Module):
        in_channels, image_size = 1, 4

        def __init__(self):
            super().__init__()
            self.conv1 = conv2d(Precision.parse("int8"), 1, 2, 3, padding=1)
            self.bn = ExactBatchNorm2d(2)
            self.shortcut = ZeroPadShortcut(2, 5, 2)
            self.conv2 = conv2d(Precision.parse("binary"), 5, 3, 1)

        def forward(self, x):
            return self.conv2(self.shortcut(self.bn(self.conv1(x))))

    model = Padded()
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 1, 4, 4))
    model.eval()
    compiled = compile_graph(lower_model(model), target_cycles=64)
    pad, = [node for node in compiled.nodes if isinstance(node, ChannelPad)]
    types = check_graph(compiled)
    assert (pad.before, pad.after, pad.pad_code) == (1, 2, 1) and types[pad.inputs[0]].dtype == Bipolar()
    assert types[pad.name].shape == (5, 2, 2)
    assert torch_mismatches(model, compiled, torch.rand(30, 1, 4, 4)) == 0


def test_the_manifest_lists_each_residual_add_with_its_bypass_fifo(tmp_path):
    from hbnn.boards import get_board
    from hbnn.compiler.build import write_build

    case = ResidualCase(1, 5, ("int8", 4), (Block(4, 1, "binary", "binary", None),), 3,
                        ((4, 1), (1, 1), (1, 1), (1, 4)), (2,), images=1, seed=5)
    compiled = compile_graph(lower_model(random_residual_stack(case), (1, 5, 5)), target_cycles=64)
    manifest = write_build(compiled, tmp_path / "build", get_board("pynq-z2"), {})
    add, = manifest["residual_adds"]
    fifo, = add["bypass_fifos"]
    assert add["name"] == "blocks.0.add.sum" and add["sum"].startswith("int9")
    assert fifo["edge"] == "blocks.0.add.b -> blocks.0.add.sum" and fifo["depth"] > 2
    assert fifo["memory_bits"] == (fifo["depth"] - 1) * fifo["elements"] * fifo["element_bits"]
    assert (tmp_path / "build" / "hbnn_top.v").read_text().count("module ") > 5
