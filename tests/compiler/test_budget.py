import dataclasses
import warnings

import pytest

from hbnn.boards import get_board
from hbnn.compiler.budget import BoardBudgetError, check_board, layer_groups, node_resources
from hbnn.compiler.map_to_hardware import map_stages
from hbnn.compiler.pipeline import compile_model
from hbnn.hw.mvau import Mvau
from hbnn.hw.pool import WindowReduce
from hbnn.hw.sliding_window import SlidingWindow
from hbnn.hw.threshold import MultiThreshold as ThresholdUnit
from hbnn.quant.models import build_model

BOARD = get_board("pynq-z2")


@pytest.fixture(scope="module")
def lenet_stages():
    warnings.simplefilter("ignore")
    model = build_model("lenet5", precision="binary", in_channels=1, num_classes=10, image_size=28,
                        full_precision="int8").eval()
    stages = map_stages(compile_model(model, dsp_budget=BOARD.dsps, lut_budget=BOARD.luts // 2))
    yield stages
    for stage in stages:
        stage.component._MustUse__silence = True


def test_layer_groups_cover_the_chain_in_order(lenet_stages):
    groups = layer_groups(lenet_stages)
    assert [stage for _, group in groups for stage in group] == list(lenet_stages)
    for name, group in groups:
        anchors = [stage for stage in group if isinstance(stage.component, (Mvau, WindowReduce))]
        assert len(anchors) == 1 and anchors[0].node == name
        before = group[:group.index(anchors[0])]
        after = group[group.index(anchors[0]) + 1:]
        assert all(not isinstance(stage.component, ThresholdUnit) for stage in before)
        assert all(isinstance(stage.component, ThresholdUnit) for stage in after)
    assert any(isinstance(group[0].component, SlidingWindow) for _, group in groups)


def test_node_resources_count_every_multiplier_once(lenet_stages):
    nodes = node_resources(lenet_stages)
    assert [node.node for node in nodes] == [name for name, _ in layer_groups(lenet_stages)]
    multipliers = sum(stage.component.pe * stage.component.simd for stage in lenet_stages
                      if isinstance(stage.component, Mvau) and stage.component.lane == "multiply")
    assert multipliers > 0 and sum(node.dsps for node in nodes) == multipliers
    assert all(node.dsps == 0 and node.lane_luts == 0 for node in nodes if node.node.startswith("features.pool"))


@pytest.mark.parametrize("field, resource", [("dsps", "DSP slices"), ("bram36", "BRAM36"), ("luts", "LUTs")])
def test_a_design_over_the_board_names_its_costliest_node(lenet_stages, field, resource):
    nodes = node_resources(lenet_stages)
    key = "lane_luts" if field == "luts" else field
    used = sum(getattr(node, key) for node in nodes)
    costliest = max(nodes, key=lambda node: getattr(node, key))
    assert used > 0
    small = dataclasses.replace(BOARD, **{field: int(used) - 1 if used >= 1 else 0})
    with pytest.raises(BoardBudgetError, match=rf"{resource}.*'{costliest.node}'"):
        check_board(lenet_stages, small)
    roomy = dataclasses.replace(BOARD, **{field: int(used) + 1})
    assert check_board(lenet_stages, roomy) == nodes


def test_too_many_multipliers_names_the_costliest_int8_layer():
    from hbnn.compiler.ir import Dense, Folding

    model = build_model("lenet5", precision="fp", in_channels=1, num_classes=10, image_size=28,
                        full_precision="int8").eval()
    names = [node.name for node in compile_model(model).nodes if isinstance(node, Dense)]
    last = names[-1]
    with pytest.raises(Exception, match=rf"more than the board's 40; the costliest is '{last}' with 10 x 12"):
        compile_model(model, folding={last: Folding(10, 12)}, dsp_budget=40)


def test_the_weight_memories_raise_the_target_until_they_fit_the_block_ram_budget():
    from hbnn.compiler.passes.set_folding import BRAM_TARGET_LIMIT, layer_cycles, layer_shapes, weight_bram36

    model = build_model("alexnet_small", precision="binary", in_channels=1, num_classes=10, image_size=28,
                        full_precision="int8").eval()

    def folded(bram_budget):
        graph = compile_model(model, dsp_budget=BOARD.dsps, lut_budget=BOARD.luts // 2, bram_budget=bram_budget)
        layers = graph.dense_layers()
        foldings = {layer.name: layer.folding for layer in layers}
        shapes = layer_shapes(graph)
        return weight_bram36(layers, foldings), max(layer_cycles(shapes[name], f) for name, f in foldings.items())

    free_bram, free_cycles = folded(None)
    bram, cycles = folded(160)
    assert free_bram > 160 >= bram and cycles > free_cycles  # deeper, narrower weight memories: slower
    # Weights that fit only nearly serially are left to the board check: the raise stops at the limit.
    bram, cycles = folded(20)
    assert bram > 20 and cycles <= 2 * BRAM_TARGET_LIMIT
