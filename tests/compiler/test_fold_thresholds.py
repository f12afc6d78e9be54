"""Channel ops and quantizers folded into integer thresholds equal PyTorch on every reachable accumulator value."""
import numpy as np
import pytest
import torch

from hbnn.compiler.check import check_graph
from hbnn.compiler.execute import execute
from hbnn.compiler.ir import Bipolar, Int, MultiThreshold
from hbnn.compiler.lower import lower_model
from hbnn.compiler.passes.fold_thresholds import accumulator_lattice, fold_thresholds

from hbnn.sim.fuzz import random_stack


def thresholds_of(model):
    graph = lower_model(model)
    return graph, fold_thresholds(graph)


@pytest.mark.parametrize("plan", [("binary", "binary"), ("binary", "int8"), ("int8", "binary"), ("int8", "int8"),
                                  ("weight-binary", "binary"), ("weight-binary+alpha", "int8")], ids="-".join)
def test_every_reachable_accumulator_value_maps_to_the_pytorch_code(plan):
    """Exhaustive over the accumulator lattice of the first layer (chunked): the folded unit against the next
    layer's own input quantizer applied to the first layer's batch-normed output, computed by PyTorch."""
    model = random_stack(plan, (12, 24, 6), seed=7)
    graph, folded = thresholds_of(model)
    types = check_graph(graph)
    dense = graph.nodes[0]
    low, high, stride = accumulator_lattice(dense, types[dense.inputs[0]].dtype)
    unit = folded.nodes[1]
    assert isinstance(unit, MultiThreshold)
    fc, bn, act, nxt = model.fcs[0], model.bns[0], model.acts[0], model.fcs[1]
    exponent = types[dense.name].dtype.exponent
    step = max(1, (high - low) // stride // 20000) * stride  # at most ~20,000 points per channel
    accumulators = np.arange(low, high + 1, step, dtype=np.int64)
    layer_out = torch.from_numpy((accumulators.astype(np.float64) * 2.0 ** exponent).astype(np.float32))
    layer_out = layer_out[:, None].expand(-1, 24).contiguous()
    with torch.no_grad():
        if fc.precision.weight_scale:
            layer_out = layer_out * fc.quantized_weight_codes()[1]
        from hbnn.quant.input_codes import input_codes
        expected, _ = input_codes(nxt.precision.inputs, nxt.input_quant, act(bn(layer_out)))
    keys = np.where(unit.descending, -accumulators[:, None], accumulators[:, None])
    codes = (keys[..., None] >= unit.thresholds).sum(axis=-1) + unit.base
    if isinstance(unit.dtype, Bipolar):
        codes = np.where(codes == 1, 1, -1)
    np.testing.assert_array_equal(codes, expected.numpy())


def test_a_relu_before_int8_leaves_half_the_levels_and_negative_scales_descend():
    model = random_stack(("binary", "int8"), (64, 32, 4), seed=3)
    _, folded = thresholds_of(model)
    unit = folded.nodes[1]
    assert isinstance(unit.dtype, Int) and unit.dtype.width == 8
    assert unit.base >= 0 and unit.base + unit.thresholds.shape[1] <= 127  # ReLU: codes 0..127 at most
    gamma = model.bns[0].weight.detach().numpy()
    changes = (unit.thresholds[:, 0] > -64) & (unit.thresholds[:, -1] <= 64)  # not constant over -64..64
    assert unit.descending[(gamma < 0) & changes].all() and not unit.descending[gamma > 0].any()


def test_folding_preserves_outputs_on_random_inputs_and_drops_bias_into_thresholds():
    model = random_stack(("int8", "binary", "int8"), (20, 16, 8, 3), seed=11)
    graph, folded = thresholds_of(model)
    codes = np.random.default_rng(0).integers(-128, 128, size=(500, 20))
    np.testing.assert_array_equal(execute(folded, codes)["fcs.2"], execute(graph, codes)["fcs.2"])
