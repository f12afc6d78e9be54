"""Hardware budgets price a plan with the compiler's cost model, and refuse, naming the layer, what it cannot map."""
import pytest
import torch

from hbnn.compiler.cost_model import network_cost
from hbnn.compiler.cycles import estimate_cycles
from hbnn.compiler.lower import UnsupportedLayerError
from hbnn.compiler.map_to_hardware import map_stages
from hbnn.compiler.pipeline import compile_model
from hbnn.quant.models import build_model
from hbnn.quant.precision import BINARY, FLOAT, INT8, WEIGHT_BINARY, Precision, abc
from hbnn.quant.selection import fits, parse_budget
from hbnn.quant.selection.hardware_budget import HardwareBudget, LayerShape

LAYERS = (LayerShape("fc1", "linear", 64, 128), LayerShape("fc2", "linear", 128, 128),
          LayerShape("fc3", "linear", 128, 10))
ALL_BINARY = {layer.name: BINARY for layer in LAYERS}
HYBRID = {"fc1": INT8, "fc2": WEIGHT_BINARY, "fc3": INT8}


def cresnet20():
    return build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8)


def test_a_conv_network_is_priced_as_itself_for_a_board():
    model = cresnet20()
    budget = HardwareBudget.for_model(model, (1, 8, 8), "bram", 40)
    assert budget.model is model and budget.board == "pynq-z2" and budget.unit == "BRAM36"
    assert "compiled for pynq-z2" in budget.describe()
    plan = {name: INT8 for name in model.binarizable_layers()}
    cost = budget.hardware_cost(plan)
    assert budget.hardware_cost(dict(plan)) is cost  # each plan priced once
    assert budget.cost(plan) == cost.bram36 > 0
    with pytest.raises(UnsupportedLayerError, match=r"'stage1\.0\.conv1'"):
        budget.cost(plan | {"stage1.0.conv1": FLOAT})
    assert budget.cost(plan | {"stage1.0.conv1": abc(3, 1)}) > 0  # ABC-Net layers are mapped and priced


@pytest.mark.parametrize("text", ["luts:5000", "dsps:0", "cycles:300", "bram:10"])
def test_parse_budget_reaches_the_board_and_target(text):
    budget = parse_budget(text).for_model(cresnet20(), (1, 8, 8), board="kv260", target_cycles=64)
    assert (budget.board, budget.target_cycles) == ("kv260", 64)
    with pytest.raises(ValueError, match="applies to hardware budgets"):
        parse_budget("flops:0.5").for_model(cresnet20(), (1, 8, 8), board="kv260")


def test_a_linear_network_has_no_board():
    model = build_model("mlp", precision="fp", in_channels=1, num_classes=10, image_size=8)
    with pytest.raises(ValueError, match="priced without a board"):
        HardwareBudget.for_model(model, (1, 8, 8), "luts", 5000, board="pynq-z2")


@pytest.mark.parametrize("plan", [ALL_BINARY, HYBRID], ids=["binary", "hybrid"])
@pytest.mark.parametrize("metric, unit", [("luts", "LUTs"), ("dsps", "DSPs"), ("cycles", "cycles")])
def test_a_linear_network_costs_what_network_cost_says(metric, unit, plan):
    budget = HardwareBudget(kind=metric, limit=5000, unit=unit, layers=LAYERS, target_cycles=16)
    expected = network_cost([(layer.name, layer.kind, plan[layer.name], layer.in_features, layer.out_features)
                             for layer in LAYERS], 16)
    assert budget.cost(plan) == float(getattr(expected, metric))
    assert budget.hardware_cost(plan) == expected
    assert budget.describe().startswith(f"{metric}:5000 (at most 5,000 ")
    assert "folded for 16 cycles per layer" in budget.describe()


def test_int8_layers_cost_dsps_and_luts():
    dsps = HardwareBudget("dsps", 0, "DSPs", LAYERS, target_cycles=16)
    cost = dsps.hardware_cost(HYBRID)
    fc1, fc2, fc3 = cost.layers
    assert dsps.cost(HYBRID) == fc1.pe * fc1.simd + fc3.pe * fc3.simd > 0
    assert fc2.dsps == 0 and fc2.lane == "add_subtract"
    assert not fits(dsps, HYBRID)
    assert fits(HardwareBudget("dsps", cost.dsps, "DSPs", LAYERS, target_cycles=16), HYBRID)
    luts = HardwareBudget("luts", 0, "LUTs", LAYERS, target_cycles=16)
    assert luts.cost(HYBRID) > luts.cost(ALL_BINARY) > 0  # add/subtract lanes cost more than XNOR-popcount ones


def test_fits_compares_cost_with_limit():
    cost = HardwareBudget("luts", 0, "LUTs", LAYERS).cost(ALL_BINARY)
    assert cost > 0
    assert fits(HardwareBudget("luts", cost, "LUTs", LAYERS), ALL_BINARY)
    assert not fits(HardwareBudget("luts", cost - 1, "LUTs", LAYERS), ALL_BINARY)
    assert fits(HardwareBudget("dsps", 0, "DSPs", LAYERS), ALL_BINARY)
    assert "measured within" in HardwareBudget("luts", 0, "LUTs", LAYERS).describe()


def mlp_latency(model):
    stages = map_stages(compile_model(model))
    for stage in stages:
        stage.component._MustUse__silence = True  # analysed, not elaborated
    return estimate_cycles(stages).latency


def test_a_binary_mlp_costs_the_cycles_the_compiler_builds():
    torch.manual_seed(0)
    model = build_model("mlp", precision="binary", in_channels=6, num_classes=5, image_size=2, hidden=[32, 16]).eval()
    budget = parse_budget("cycles:100").for_model(model, (24,))
    assert isinstance(budget, HardwareBudget)
    assert [(layer.name, layer.in_features, layer.out_features) for layer in budget.layers] == \
        [("fc1", 24, 32), ("fc2", 32, 16), ("fc3", 16, 5)]
    plan = {layer.name: BINARY for layer in budget.layers}
    assert budget.cost(plan) == mlp_latency(model)


def test_a_hybrid_mlp_costs_at_least_the_cycles_the_compiler_builds():
    torch.manual_seed(0)
    model = build_model("mlp", precision="fp", in_channels=6, num_classes=5, image_size=2, hidden=[32, 16],
                        layer_precisions={"fc2": "weight-binary"}).eval()
    budget = parse_budget("cycles:100").for_model(model, (24,))
    plan = {name: model.get_submodule(name).precision for name in ("fc1", "fc2", "fc3")}
    assert plan == {"fc1": INT8, "fc2": WEIGHT_BINARY, "fc3": INT8}
    real = mlp_latency(model)
    # Two threshold units feed int8 layers; after a ReLU each needs 7 compare stages, the cost model assumes 8.
    assert real < budget.cost(plan) <= real + 2


def test_a_plan_the_compiler_cannot_map_is_an_error_naming_the_layer():
    budget = HardwareBudget("luts", 5000, "LUTs", LAYERS)
    with pytest.raises(UnsupportedLayerError, match=r"layer 'fc1': an ABC-Net layer reading the network input"):
        budget.cost({**ALL_BINARY, "fc1": abc(3, 1)})
    assert budget.cost({**ALL_BINARY, "fc2": abc(3, 1)}) > budget.cost(ALL_BINARY)  # 3 x 1 lanes per product
    with pytest.raises(UnsupportedLayerError, match=r"layer 'fc3': it is the network's last layer"):
        budget.cost({**ALL_BINARY, "fc3": Precision("binary", "binary", weight_scale=True)})
    with pytest.raises(ValueError, match="no precision for layer 'fc3'"):
        budget.cost({"fc1": BINARY, "fc2": BINARY})


def test_bad_budgets_are_value_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        HardwareBudget.for_model(build_model("mlp", precision="binary", in_channels=2, num_classes=4, image_size=2,
                                             hidden=[4]), (4,), "watts", 3)
    with pytest.raises(ValueError, match="counted in LUTs"):
        HardwareBudget("luts", 5000, "cycles", LAYERS)
    with pytest.raises(ValueError, match="finite number >= 0"):
        HardwareBudget("luts", -1, "LUTs", LAYERS)
    with pytest.raises(ValueError, match="at least one"):
        HardwareBudget("luts", 5000, "LUTs", ())
