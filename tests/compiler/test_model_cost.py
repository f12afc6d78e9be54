"""A model priced without a build equals what `hbnn compile` builds from it: cycles, DSPs and block RAM as the
manifest states them; LUTs from the cost model, layer by layer as the board check groups the stages."""
import pytest
import torch

from hbnn.boards import get_board
from hbnn.compiler.build import compile_checkpoint
from hbnn.compiler.lower import UnsupportedLayerError
from hbnn.compiler.model_cost import model_cost
from hbnn.quant.checkpoint import save_checkpoint
from hbnn.quant.models import build_model
from hbnn.quant.precision import BINARY, FLOAT, INT8
from hbnn.quant.selection.context import model_at


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = build_model("resnet14", precision="fp", in_channels=1, num_classes=10, image_size=8, shortcuts="all")
    model.train()
    model(3 * torch.rand(32, 1, 8, 8))  # the int8 quantizers' scales
    return model.eval()


def hybrid(model):
    names = list(model.binarizable_layers())
    return {name: BINARY if 0 < index < len(names) - 1 and index % 2 else INT8 for index, name in enumerate(names)}


def test_a_residual_network_is_priced_as_hbnn_compile_builds_it(resnet, tmp_path):
    model = model_at(resnet, hybrid(resnet))
    board = get_board("pynq-z2")
    cost = model_cost(model, board)
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, model, {"dataset": "random"})
    _, manifest = compile_checkpoint(checkpoint, tmp_path / "build", board, fit_check=False)
    assert (cost.cycles, cost.interval) == (manifest["cycles"]["latency"], manifest["cycles"]["initiation_interval"])
    assert cost.dsps == manifest["dsp_multipliers"] > 0
    assert cost.bram36 == manifest["estimates"]["bram36"]
    layers = {layer.name: layer for layer in cost.layers}
    assert {entry["node"] for entry in manifest["estimates"]["per_node"]} == set(layers)
    assert layers["block1.conv1"].lane == "xnor_popcount" and layers["block1.conv1"].dsps == 0
    add = layers["block1.add.sum"]
    assert add.lane == "AddJoin" and add.dsps == 0 and add.cycles == 8 * 8 * 16 // add.simd  # a transfer a cycle
    assert abs(cost.luts - sum(layer.luts for layer in cost.layers)) <= len(cost.layers)  # rounded per layer


def test_binarizing_frees_dsp_slices(resnet):
    board = get_board("pynq-z2")
    names = list(resnet.binarizable_layers())
    all_int8 = model_cost(model_at(resnet, dict.fromkeys(names, INT8)), board)
    assert model_cost(model_at(resnet, hybrid(resnet)), board).dsps < all_int8.dsps


def test_a_layer_the_compiler_cannot_map_is_named(resnet):
    plan = hybrid(resnet) | {"block2.conv1": FLOAT}
    with pytest.raises(UnsupportedLayerError, match=r"block2\.conv1"):
        model_cost(model_at(resnet, plan), get_board("pynq-z2"))
