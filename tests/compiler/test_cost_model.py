"""The cost model prices what the compiler builds: its foldings, cycles and DSPs are those of the compiled network
(cycles exactly where every threshold is a sign, an upper bound by the missing compare stages where a layer feeds
an int8 layer); its LUT estimate grows with lanes and its coefficients reproduce the calibration table; layers the
compiler cannot map are errors that name them. No synthesis here: bench/calibrate_cost_model.py measures."""
import re

import numpy as np
import pytest
from torch import nn

from hbnn.compiler.check import GraphError, check_graph
from hbnn.compiler.cost_model import (INT8_THRESHOLDS, LAST_LAYER_REASON, LUT_CALIBRATION, LUT_COEFFICIENTS,
                                      LUT_MAX_ERROR, LUT_TERMS, HardwareCost, block_ram36, dummy_graph,
                                      lut_terms, network_cost)
from hbnn.compiler.cycles import estimate_cycles
from hbnn.compiler.ir import Dense, Int, MultiThreshold
from hbnn.compiler.lower import UnsupportedLayerError, lower_model
from hbnn.compiler.map_to_hardware import map_stages
from hbnn.compiler.passes.set_folding import DEFAULT_TARGET_CYCLES
from hbnn.compiler.pipeline import compile_graph
from hbnn.quant.precision import BINARY, FLOAT, INT8, TERNARY, WEIGHT_BINARY, Precision, abc, linear
from hbnn.sim.fuzz import random_stack

PLANS = {
    "binary": (("binary", "binary", "binary"), (24, 32, 16, 5)),
    "hybrid": (("int8", "weight-binary", "binary", "int8"), (24, 32, 16, 16, 5)),
    "int8": (("int8", "int8", "int8"), (24, 32, 16, 5)),
    "weight-binary": (("weight-binary", "weight-binary", "weight-binary"), (24, 32, 16, 5)),
    "alpha": (("binary+alpha", "weight-binary+alpha", "binary"), (24, 32, 16, 5)),
}
TARGETS = [1, 4, 32, 128]


def plan_of(precisions, sizes):
    return [(f"fcs.{index}", "linear", Precision.parse(precision), width_in, width_out)
            for index, (precision, width_in, width_out) in enumerate(zip(precisions, sizes, sizes[1:]))]


def compiled(precisions, sizes, target_cycles, dsp_budget=None):
    """The compiler's graph and mapped stages for a trained-like network of this plan."""
    graph = compile_graph(lower_model(random_stack(precisions, sizes, seed=0)), None, target_cycles,
                          dsp_budget=dsp_budget)
    stages = map_stages(graph)
    for stage in stages:
        stage.component._MustUse__silence = True
    return graph, stages


def dsp_multipliers(stages):
    """The build manifest's count: PE x SIMD per multiply-lane unit."""
    return sum(stage.component.pe * stage.component.simd for stage in stages
               if getattr(stage.component, "lane", None) == "multiply")


def missing_compare_stages(graph, stages):
    """Compare stages the dummy T = 255 threshold units have and the compiled int8 ones do not."""
    units = {stage.node: stage.component for stage in stages}
    return sum(INT8_THRESHOLDS.bit_length() - units[node.name].stages for node in graph.nodes
               if isinstance(node, MultiThreshold) and isinstance(node.dtype, Int))


@pytest.mark.parametrize("name", PLANS)
@pytest.mark.parametrize("target_cycles", TARGETS)
def test_foldings_cycles_and_dsps_are_the_compiled_networks(name, target_cycles):
    precisions, sizes = PLANS[name]
    graph, stages = compiled(precisions, sizes, target_cycles)
    real = estimate_cycles(stages)
    cost = network_cost(plan_of(precisions, sizes), target_cycles)
    assert [(layer.name, layer.pe, layer.simd) for layer in cost.layers] == \
        [(node.name, node.folding.pe, node.folding.simd) for node in graph.dense_layers()]
    assert cost.dsps == dsp_multipliers(stages)
    assert cost.interval == real.initiation_interval
    missing = missing_compare_stages(graph, stages)
    assert cost.cycles == real.latency + missing
    if all(Precision.parse(p).inputs == "binary" for p in precisions[1:]):
        assert missing == 0  # signs only: exact
    else:
        assert missing > 0  # ReLU in front of int8 layers: 127 thresholds, 7 stages, not 8


def test_all_binary_cycles_are_exact_at_the_default_target():
    precisions, sizes = ("binary",) * 3, (64, 128, 128, 10)
    _, stages = compiled(precisions, sizes, DEFAULT_TARGET_CYCLES)
    real = estimate_cycles(stages)
    cost = network_cost(plan_of(precisions, sizes))
    assert (cost.cycles, cost.interval, cost.dsps) == (real.latency, real.initiation_interval, 0)


def test_dsps_are_pe_times_simd_per_int8_layer():
    cost = network_cost(plan_of(*PLANS["hybrid"]), 4)
    assert [layer.lane for layer in cost.layers] == ["multiply", "add_subtract", "xnor_popcount", "multiply"]
    assert [layer.dsps for layer in cost.layers] == [cost.layers[0].pe * cost.layers[0].simd, 0, 0,
                                                     cost.layers[3].pe * cost.layers[3].simd]
    assert cost.dsps == sum(layer.dsps for layer in cost.layers) > 0


@pytest.mark.parametrize("dsp_budget", [24, 100])
def test_a_dsp_budget_folds_as_the_compiler_does(dsp_budget):
    precisions, sizes = PLANS["int8"]
    graph, stages = compiled(precisions, sizes, 1, dsp_budget=dsp_budget)
    cost = network_cost(plan_of(precisions, sizes), 1, dsp_budget=dsp_budget)
    assert cost.dsps == dsp_multipliers(stages) <= dsp_budget
    assert [(layer.pe, layer.simd) for layer in cost.layers] == \
        [(node.folding.pe, node.folding.simd) for node in graph.dense_layers()]
    assert cost.cycles == estimate_cycles(stages).latency + missing_compare_stages(graph, stages)
    with pytest.raises(GraphError, match="multipliers"):
        network_cost([("fc", "linear", INT8, 4, 4)], 1, dsp_budget=0)


@pytest.mark.parametrize("name", PLANS)
def test_the_dummy_graph_has_the_compiled_graphs_nodes_and_types(name):
    precisions, sizes = PLANS[name]
    graph, _ = compiled(precisions, sizes, 4)
    dummy = dummy_graph(plan_of(precisions, sizes))
    real_types, dummy_types = check_graph(graph), check_graph(dummy)

    def layout(g, types):
        values = [name for name, _ in g.inputs] + [node.name for node in g.nodes]
        kinds = [(type(node).__name__, getattr(node, "weight_kind", None)) for node in g.nodes]
        # exponents differ (the dummy has no scales); kinds, widths and shapes do not
        return kinds, [(value, type(types[value].dtype).__name__, getattr(types[value].dtype, "width", 1),
                        types[value].shape) for value in values], g.outputs

    assert layout(dummy, dummy_types) == layout(graph, real_types)


def test_per_layer_figures_add_up():
    cost = network_cost(plan_of(*PLANS["hybrid"]), 4)
    assert isinstance(cost, HardwareCost)
    assert abs(cost.luts - sum(layer.luts for layer in cost.layers)) <= len(cost.layers) / 2  # rounded per layer
    assert cost.bram36 == sum(layer.bram36 for layer in cost.layers)
    assert [layer.cycles for layer in cost.layers] == [4, 4, 4, 4]


def test_block_ram_geometry():
    assert block_ram36(128, 36) == 0.5
    assert block_ram36(512, 37) == 1.0
    assert block_ram36(1024, 16) == 0.5
    assert block_ram36(2048, 16) == 1.0
    assert block_ram36(128, 256) == 4.0
    assert block_ram36(32768, 3) == 3.0
    # A binary network of shallow memories has none; T = 255 threshold stages go deep.
    assert network_cost(plan_of(*PLANS["binary"]), 32).bram36 == 0
    assert network_cost(plan_of(("binary", "int8"), (64, 64, 10)), 16).bram36 > 0


def single_layer_luts(precision, target):
    cost = network_cost([("fc", "linear", precision, 64, 64)], target)
    return cost.layers[0].pe * cost.layers[0].simd, cost.luts


@pytest.mark.parametrize("precision, targets", [
    (BINARY, (4096, 256, 64, 16, 4, 1)),
    (WEIGHT_BINARY, (4096, 256, 64, 16, 4, 1)),
    # Multiply lanes cost DSPs, not LUTs: an int8 layer's LUTs are its input register and its weight ROM, which
    # shrinks as the lanes grow (the ROM is as deep as the layer's cycles). With the ROM in block RAM (more than 64
    # cycles), wider input chunks cost more.
    (INT8, (4096, 1024, 256, 128)),
])
def test_lut_estimate_grows_with_lanes(precision, targets):
    lanes, luts = zip(*(single_layer_luts(precision, target) for target in targets))
    assert list(lanes) == sorted(set(lanes))  # each target more lanes
    assert list(luts) == sorted(set(luts))  # and more LUTs
    assert luts[0] > 0
    networks = [network_cost(plan_of(*PLANS["binary"]), target).luts for target in (128, 32, 4, 1)]
    assert networks == sorted(set(networks))


def test_lut_coefficients_are_non_negative_and_match_the_terms():
    assert len(LUT_COEFFICIENTS) == len(LUT_TERMS)
    assert all(coefficient >= 0 for coefficient in LUT_COEFFICIENTS)
    _, stages = compiled(*PLANS["hybrid"], 4)
    assert len(lut_terms(stages)) == len(LUT_TERMS)


def test_coefficients_reproduce_the_calibration_table():
    errors = {"fit": 0.0, "held out": 0.0}
    for precisions, sizes, target_cycles, group, measured, estimate in LUT_CALIBRATION:
        assert network_cost(plan_of(precisions, sizes), target_cycles).luts == estimate, (precisions, sizes)
        key = "fit" if group == "fit" else "held out"
        errors[key] = max(errors[key], abs(estimate - measured) / measured)
    assert {key: round(value, 3) for key, value in errors.items()} == LUT_MAX_ERROR
    assert {group for *_, group, _, _ in LUT_CALIBRATION} == {"fit", "held out", "held out, compiled"}


def lowering_error(precision) -> str:
    with pytest.raises(UnsupportedLayerError) as info:
        lower_model(nn.Sequential(linear(precision, 8, 4)))
    return str(info.value)


@pytest.mark.parametrize("precision, reason", [
    (FLOAT, "float layers have no integer form"),
])
def test_unmapped_precisions_are_errors_naming_the_layer_as_lowering_does(precision, reason):
    layers = plan_of(("binary",), (16, 8)) + [("stage2.1.fc", "linear", precision, 8, 4)]
    with pytest.raises(UnsupportedLayerError, match=r"layer 'stage2\.1\.fc': " + re.escape(reason)) as info:
        network_cost(layers)
    assert info.value.path == "stage2.1.fc"
    why = str(info.value).split(": ", 1)[1]
    assert why in lowering_error(precision)


def test_abc_layers_are_priced_and_an_abc_first_layer_is_refused():
    plan = [("fc1", "linear", INT8, 16, 8), ("fc2", "linear", abc(3, 2), 8, 8), ("fc3", "linear", INT8, 8, 4)]
    parallel, folded = network_cost(plan, target_cycles=8), network_cost(plan, target_cycles=1000)
    assert 0 < parallel.cycles < folded.cycles and parallel.luts > folded.luts > 0
    with pytest.raises(UnsupportedLayerError, match="'fc1': an ABC-Net layer reading the network input"):
        network_cost([("fc1", "linear", abc(3, 2), 16, 8), ("fc2", "linear", INT8, 8, 4)])


@pytest.mark.parametrize("precision", ["binary+alpha", "weight-binary+alpha"])
def test_a_scaled_last_layer_is_refused_as_the_compiler_refuses_it(precision):
    with pytest.raises(GraphError) as compiler:
        lower_model(random_stack(("binary", precision), (16, 8, 4)))
    assert LAST_LAYER_REASON in str(compiler.value)
    with pytest.raises(UnsupportedLayerError, match=r"layer 'head': it is the network's last layer") as info:
        network_cost(plan_of(("binary",), (16, 8)) + [("head", "linear", Precision.parse(precision), 8, 4)])
    assert info.value.path == "head"
    assert LAST_LAYER_REASON in str(info.value)
    # Anywhere else alpha folds into the next layer's thresholds.
    assert network_cost(plan_of((precision, "binary"), (16, 8, 4))).cycles > 0


@pytest.mark.parametrize("precision", [BINARY, INT8])
def test_conv_layers_are_errors_naming_the_layer(precision):
    with pytest.raises(UnsupportedLayerError,
                       match=r"layer 'stage1\.0\.conv1': a chain's description cannot price a convolution"):
        network_cost([("stage1.0.conv1", "conv", precision, 144, 16)])


def test_bad_descriptions_are_value_errors():
    with pytest.raises(ValueError, match="kind must be one of") as info:
        network_cost([("pool", "maxpool", BINARY, 8, 8)])
    assert not isinstance(info.value, UnsupportedLayerError)
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        network_cost([("fc", "linear", BINARY, 0, 8)])
    with pytest.raises(ValueError, match="target_cycles must be a positive integer"):
        network_cost([("fc", "linear", BINARY, 8, 8)], 0)
    with pytest.raises(TypeError, match="must be a Precision"):
        network_cost([("fc", "linear", "binary", 8, 8)])
    with pytest.raises(ValueError, match="at least one layer"):
        network_cost([])
    with pytest.raises(ValueError, match=r"layer 'a' has 8 outputs but the next layer 'b' takes 6 inputs"):
        network_cost([("a", "linear", BINARY, 4, 8), ("b", "linear", BINARY, 6, 2)])
    with pytest.raises(ValueError, match="appears twice"):
        network_cost([("a", "linear", BINARY, 4, 4), ("a", "linear", BINARY, 4, 4)])


def test_network_cost_is_deterministic():
    plan = plan_of(*PLANS["hybrid"])
    assert network_cost(plan, 4) == network_cost(list(plan), 4)
    assert np.array_equal(dummy_graph(plan).nodes[0].weights, dummy_graph(plan).nodes[0].weights)
    assert all(isinstance(node, (Dense, MultiThreshold)) for node in dummy_graph(plan).nodes)


def test_spatial_coefficients_reproduce_the_conv_calibration_table():
    import importlib.util
    import pathlib
    import warnings

    from hbnn.compiler.cost_model import CONV_LUT_CALIBRATION, CONV_LUT_MAX_ERROR

    path = pathlib.Path(__file__).parents[2] / "bench" / "calibrate_conv_cost.py"
    spec = importlib.util.spec_from_file_location("calibrate_conv_cost", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    errors = {"fit": 0.0, "held out": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index, kind, group, measured, estimate in CONV_LUT_CALIBRATION:
            label, graph = bench.design(index)
            assert label.split()[1] == kind and group == ("fit" if index % 2 == 0 else "held out")
            stages = bench.stages_of(graph, elaborated=False).stages
            assert cost_model_estimate(stages) == estimate, label
            errors[group] = max(errors[group], abs(estimate - measured) / measured)
    assert {key: round(value, 3) for key, value in errors.items()} == CONV_LUT_MAX_ERROR


def cost_model_estimate(stages):
    from hbnn.compiler.cost_model import estimate_luts

    return estimate_luts(stages)


def test_ternary_lanes_are_priced_as_add_subtract_lanes_with_two_bit_weights():
    ternary = network_cost(plan_of(("int8", "ternary", "int8"), (16, 32, 32, 4)), 32)  # 32-word ROMs, in LUTs
    weight_binary = network_cost(plan_of(("int8", "weight-binary", "int8"), (16, 32, 32, 4)), 32)
    assert (ternary.dsps, ternary.cycles, ternary.interval) == (weight_binary.dsps, weight_binary.cycles,
                                                              weight_binary.interval)
    middle_ternary, middle_binary = ternary.layers[1], weight_binary.layers[1]
    assert (middle_ternary.lane, middle_binary.lane) == ("add_subtract_skip", "add_subtract")
    assert (middle_ternary.pe, middle_ternary.simd) == (middle_binary.pe, middle_binary.simd)
    assert middle_ternary.luts > middle_binary.luts  # the same lane term, twice the ROM bits
    assert Precision.parse("ternary") == TERNARY
