"""The cost model agrees with the compiler: its folding and cycles are set_folding's and cycles.py's, exactly; its
LUT estimate is positive, grows with parallelism and stays near the README's measured folding sweep; layers the
compiler cannot map are errors that name them."""
import re

import numpy as np
import pytest

from hbnn.compiler.cost_model import (HardwareCost, estimate_luts, layer_cost, lut_terms, network_cost,
                                      LUT_COEFFICIENTS, LUT_TERMS, MAX_WEIGHT_DEPTH)
from hbnn.compiler.cycles import LAYER_PIPELINE_DEPTH, estimate_cycles
from hbnn.compiler.ir import Folding, Graph, XnorPopcount
from hbnn.compiler.lower import UnsupportedLayerError
from hbnn.compiler.set_folding import DEFAULT_TARGET_CYCLES, set_folding
from hbnn.quant.precision import BINARY, FLOAT, INT8, TERNARY, WEIGHT_BINARY, Precision, abc

SHAPES = [(64, 128, 128, 10), (784, 256, 10), (24, 32, 16, 5), (12, 7)]


def folded_graph(sizes, target_cycles, seed=0):
    """The graph the compiler folds for a binary MLP of these sizes (random weights; thresholds on all but the last
    layer, as convert_to_xnor_popcount leaves them)."""
    rng = np.random.default_rng(seed)
    nodes = []
    for index, (width_in, width_out) in enumerate(zip(sizes, sizes[1:])):
        thresholds = rng.integers(0, width_in + 2, width_out) if index < len(sizes) - 2 else None
        nodes.append(XnorPopcount(name=f"layers.{index}", weight_bits=rng.random((width_out, width_in)) < 0.5,
                                  thresholds=thresholds))
    return set_folding(Graph(input_width=sizes[0], nodes=nodes), target_cycles=target_cycles)


def description(sizes, precision=BINARY):
    return [(f"layers.{index}", "linear", precision, width_in, width_out)
            for index, (width_in, width_out) in enumerate(zip(sizes, sizes[1:]))]


@pytest.mark.parametrize("sizes", SHAPES)
@pytest.mark.parametrize("target_cycles", [1, 5, 32, 128, 256])
def test_folding_and_cycles_are_the_compilers(sizes, target_cycles):
    graph = folded_graph(sizes, target_cycles)
    cycles = estimate_cycles(graph)
    for node, layer_cycles, (name, kind, precision, width_in, width_out) in zip(graph.nodes, cycles.layers,
                                                                             description(sizes)):
        cost = layer_cost(name, kind, precision, width_in, width_out, target_cycles=target_cycles)
        assert (cost.pe, cost.simd) == (node.folding.pe, node.folding.simd)
        assert cost.cycles == layer_cycles.cycles + LAYER_PIPELINE_DEPTH
        assert cost.dsps == 0
    total = network_cost(description(sizes), target_cycles=target_cycles)
    assert total.cycles == cycles.latency
    assert total.dsps == 0
    assert (total.pe, total.simd) == (None, None)


def test_default_target_is_the_compilers():
    graph = folded_graph((64, 128, 128, 10), DEFAULT_TARGET_CYCLES)
    assert network_cost(description((64, 128, 128, 10))).cycles == estimate_cycles(graph).latency == 102


def test_network_luts_are_the_sum_of_layer_luts_with_an_integer_output_layer():
    layers = description((64, 128, 128, 10))
    total = network_cost(layers, target_cycles=16)
    parts = [layer_cost(*layer, target_cycles=16, thresholded=index < 2) for index, layer in enumerate(layers)]
    assert total == HardwareCost(luts=sum(p.luts for p in parts), dsps=0, cycles=sum(p.cycles for p in parts))
    # The integer output layer drives accumulator-wide lanes, so it costs more than the same layer thresholded.
    assert parts[2].luts > layer_cost(*layers[2], target_cycles=16).luts


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def test_lut_estimate_grows_with_lanes():
    for width_out, width_in in [(128, 64), (256, 784), (10, 128)]:
        foldings = [Folding(pe, simd) for pe in divisors(width_out) for simd in divisors(width_in)
                    if (width_out // pe) * (width_in // simd) <= MAX_WEIGHT_DEPTH]
        assert len({f.pe * f.simd for f in foldings}) >= 5
        luts = {folding: estimate_luts(width_in, width_out, folding) for folding in foldings}
        assert all(value > 0 for value in luts.values())
        for a in foldings:
            for b in foldings:
                if a.pe * a.simd < b.pe * b.simd:
                    assert luts[a] < luts[b], (a, b)
        # What the compiler picks follows: fewer cycles, more lanes, more LUTs.
        by_target = [layer_cost("fc", "linear", BINARY, width_in, width_out, target_cycles=target)
                     for target in (256, 64, 8, 1)]
        assert [c.pe * c.simd for c in by_target] == sorted(c.pe * c.simd for c in by_target)
        assert [c.luts for c in by_target] == sorted(c.luts for c in by_target)


def test_lut_terms_match_the_coefficients():
    assert len(lut_terms(64, 128, Folding(4, 64))) == len(LUT_TERMS) == len(LUT_COEFFICIENTS)
    assert all(c > 0 for c in LUT_COEFFICIENTS)


# README "Parallelism vs resources": a trained 64-128-128-10 digits model, Yosys logic LUTs per cycle target.
README_SWEEP = {128: 3272, 64: 3637, 32: 4118, 16: 6457, 8: 8694, 4: 14008}


@pytest.mark.parametrize("target_cycles, measured", README_SWEEP.items())
def test_lut_estimate_is_near_the_measured_folding_sweep(target_cycles, measured):
    estimate = network_cost(description((64, 128, 128, 10)), target_cycles=target_cycles).luts
    assert abs(estimate - measured) <= 0.10 * measured, (estimate, measured)


@pytest.mark.parametrize("precision, reason", [
    (INT8, "int8 layers (DSP MAC units) are not mapped yet"),
    (WEIGHT_BINARY, "weight-binary layers"),
    (FLOAT, "float layers"),
    (TERNARY, "ternary layers"),
    (abc(3, 1), "ABC-Net layers"),
    (Precision("binary", "binary", weight_scale=True), "binary+alpha"),
])
def test_unmapped_precisions_are_errors_naming_the_layer(precision, reason):
    with pytest.raises(UnsupportedLayerError, match=r"layer 'stage2\.1\.fc': .*" + re.escape(reason)) as info:
        layer_cost("stage2.1.fc", "linear", precision, 64, 64)
    assert info.value.path == "stage2.1.fc"
    with pytest.raises(UnsupportedLayerError, match="'head'"):
        network_cost(description((16, 8)) + [("head", "linear", precision, 8, 4)])


@pytest.mark.parametrize("precision", [BINARY, INT8])
def test_conv_layers_are_errors_naming_the_layer(precision):
    with pytest.raises(UnsupportedLayerError,
                       match=r"layer 'stage1\.0\.conv1': .*binary linear layers only; conv layers are not mapped"):
        layer_cost("stage1.0.conv1", "conv", precision, 144, 16)


def test_weight_memories_deeper_than_measured_are_refused():
    assert layer_cost("fc", "linear", BINARY, 256, 64, target_cycles=MAX_WEIGHT_DEPTH).cycles == \
        MAX_WEIGHT_DEPTH + LAYER_PIPELINE_DEPTH
    with pytest.raises(ValueError, match=r"layer 'fc': its weight memory would be 512 words deep.*block RAM"):
        layer_cost("fc", "linear", BINARY, 256, 64, target_cycles=2 * MAX_WEIGHT_DEPTH)


def test_bad_descriptions_are_value_errors():
    with pytest.raises(ValueError, match="kind must be one of") as info:
        layer_cost("pool", "maxpool", BINARY, 8, 8)
    assert not isinstance(info.value, UnsupportedLayerError)
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        layer_cost("fc", "linear", BINARY, 0, 8)
    with pytest.raises(ValueError, match="target_cycles must be a positive integer"):
        layer_cost("fc", "linear", BINARY, 8, 8, target_cycles=0)
    with pytest.raises(TypeError, match="must be a Precision"):
        layer_cost("fc", "linear", "binary", 8, 8)
    with pytest.raises(ValueError, match="at least one layer"):
        network_cost([])
