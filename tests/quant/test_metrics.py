"""Network metrics: every expected number is counted by hand in the test."""

import json
import types

import pytest
import torch
from torch import nn

from hbnn.quant.metrics import LayerMetrics, NetworkMetrics, measure


def with_precision(layer: nn.Module, weights: str, inputs: str, weight_scale: bool = False, weight_bases: int = 1,
                   act_bases: int = 1) -> nn.Module:
    """A plain torch layer dressed as an hbnn precision layer (metrics only reads .precision)."""
    layer.precision = types.SimpleNamespace(weights=weights, inputs=inputs, weight_scale=weight_scale,
                                            weight_bases=weight_bases, act_bases=act_bases)
    return layer


def tiny_hybrid_net() -> nn.Sequential:
    """1x6x6 -> float conv 1->4 3x3 -> BN -> binary conv 4->8 3x3 (alpha per channel) -> binary linear 32->10."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.Hardtanh(),
        with_precision(nn.Conv2d(4, 8, 3, bias=False), "binary", "binary", weight_scale=True),
        nn.Flatten(),
        with_precision(nn.Linear(32, 10), "binary", "binary"),
    )


def test_tiny_hybrid_network_counted_by_hand():
    metrics = measure(tiny_hybrid_net(), (1, 6, 6))

    # 0: float conv 1->4 3x3, bias. Output 4x4x4 = 64 elements, each 1*3*3 = 9 MACs.
    #    params 36 weights + 4 biases = 40, all 32-bit: 1280 bits = 40 effective params. Float MACs are FLOPs.
    # 1: BN over 4 channels: weight + bias = 8 parameters, 256 bits. No MACs.
    # 3: binary conv 4->8 3x3, no bias, alpha per output channel. Output 8x2x2 = 32 elements, each 4*3*3 = 36 MACs.
    #    params 288 weights + 8 alphas = 296; memory 288*1 + 8*32 = 544 bits = 17 effective params.
    #    binary x binary: 1152 BOPs, FLOPs 1152/64 = 18.
    # 5: binary linear 32->10 with bias: 320 MACs, params 320 + 10 = 330; memory 320*1 + 10*32 = 640 bits = 20.
    #    320 BOPs, FLOPs 320/64 = 5.
    assert metrics.layers == (
        LayerMetrics(name="0", kind="conv", precision="float/float", params=40, weight_bits_per_param=32,
                     memory_bits=1280, effective_params_32=40.0, macs=576, flops=576.0, bops=0),
        LayerMetrics(name="1", kind="batchnorm", precision="float", params=8, weight_bits_per_param=32,
                     memory_bits=256, effective_params_32=8.0, macs=0, flops=0.0, bops=0),
        LayerMetrics(name="3", kind="conv", precision="binary+scale/binary", params=296, weight_bits_per_param=1,
                     memory_bits=544, effective_params_32=17.0, macs=1152, flops=18.0, bops=1152),
        LayerMetrics(name="5", kind="linear", precision="binary/binary", params=330, weight_bits_per_param=1,
                     memory_bits=640, effective_params_32=20.0, macs=320, flops=5.0, bops=320),
    )
    assert metrics.params == 40 + 8 + 296 + 330 == 674
    assert metrics.memory_bits == 1280 + 256 + 544 + 640 == 2720
    assert metrics.memory_bytes == 2720 / 8 == 340.0
    assert metrics.effective_params_32 == 2720 / 32 == 85.0
    assert metrics.macs == 576 + 1152 + 320 == 2048
    assert metrics.bops == 1152 + 320 == 1472
    assert metrics.flops == 576 + 1472 / 64 == 599.0
    assert metrics.input_shape == (1, 6, 6)


def test_abc_layer_counts_m_bits_per_weight_and_m_times_n_bops():
    # ABC conv, M=3 weight bases, N=2 activation bases, 2->4 3x3 no bias, on 2x5x5: output 4x3x3 = 36 elements,
    # each 2*3*3 = 18 MACs -> 648 MACs, 3*2*648 = 3888 BOPs, FLOPs 3888/64 = 60.75.
    # params: 72 weights + 3 alphas + 2 betas + 2 shifts = 79; memory 72*3 + (3 + 4)*32 = 216 + 224 = 440 bits.
    layer = with_precision(nn.Conv2d(2, 4, 3, bias=False), "abc", "abc", weight_bases=3, act_bases=2)
    (metrics,) = measure(nn.Sequential(layer), (2, 5, 5)).layers
    assert metrics == LayerMetrics(name="0", kind="conv", precision="abc3/abc2", params=79, weight_bits_per_param=3,
                                   memory_bits=440, effective_params_32=13.75, macs=648, flops=60.75, bops=3888)


def test_abc_weights_on_binary_inputs_count_m_bops_per_mac():
    # 8->2 linear, M=4: 16 MACs, 4*1*16 = 64 BOPs = 1 FLOP; memory 16*4 + 4 alphas*32 = 192 bits.
    layer = with_precision(nn.Linear(8, 2, bias=False), "abc", "binary", weight_bases=4)
    (metrics,) = measure(layer, (8,)).layers
    assert (metrics.params, metrics.memory_bits, metrics.macs, metrics.bops, metrics.flops) == (20, 192, 16, 64, 1.0)


def test_ternary_weights_are_two_bits_and_their_macs_are_flops():
    # 16->4 linear, ternary with alpha per output, int8 inputs, no bias: 64 weights * 2 bits + 4 alphas * 32 = 256.
    # 64 MACs, not XNOR-popcount: 64 FLOPs, 0 BOPs.
    layer = with_precision(nn.Linear(16, 4, bias=False), "ternary", "int8", weight_scale=True)
    (metrics,) = measure(nn.Sequential(layer), (16,)).layers
    assert metrics == LayerMetrics(name="0", kind="linear", precision="ternary+scale/int8", params=68,
                                   weight_bits_per_param=2, memory_bits=256, effective_params_32=8.0, macs=64,
                                   flops=64.0, bops=0)
    on_binary_inputs = with_precision(nn.Linear(16, 4, bias=False), "ternary", "binary")
    (metrics,) = measure(on_binary_inputs, (16,)).layers
    assert (metrics.memory_bits, metrics.flops, metrics.bops) == (128, 64.0, 0)


def test_int8_and_weight_only_binary_macs_are_flops():
    # int8 conv 3->6 1x1 on 3x4x4 with bias: 96 output elements * 3 = 288 MACs; memory 18*8 + 6*32 = 336 bits.
    int8 = with_precision(nn.Conv2d(3, 6, 1), "int8", "int8")
    # binary weights on int8 inputs, 10->5 no bias: 50 MACs as FLOPs; memory 50 bits.
    weight_binary = with_precision(nn.Linear(10, 5, bias=False), "binary", "int8")
    (conv,) = measure(int8, (3, 4, 4)).layers
    (linear,) = measure(weight_binary, (10,)).layers
    assert (conv.precision, conv.params, conv.memory_bits, conv.macs, conv.flops, conv.bops) == (
        "int8/int8", 24, 336, 288, 288.0, 0)
    assert (linear.precision, linear.params, linear.memory_bits, linear.macs, linear.flops, linear.bops) == (
        "binary/int8", 50, 50, 50, 50.0, 0)


def test_grouped_convolution_and_linear_on_a_sequence():
    # Conv 4->8 3x3, groups=2, padding 1, on 4x5x5: 8*5*5 = 200 outputs, each (4/2)*9 = 18 MACs -> 3600.
    grouped = nn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False)
    assert measure(grouped, (4, 5, 5)).layers[0].macs == 3600
    # Linear 6->3 applied to 7 positions: 21 outputs, each 6 MACs -> 126.
    assert measure(nn.Linear(6, 3), (7, 6)).layers[0].macs == 126


def test_layer_used_twice_counts_both_calls():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4, bias=False)

        def forward(self, x):
            return self.fc(self.fc(x))

    (metrics,) = measure(Twice(), (4,)).layers
    assert (metrics.name, metrics.params, metrics.macs) == ("fc", 16, 32)


def test_other_modules_with_parameters_count_as_float():
    model = nn.Sequential(nn.Linear(3, 2, bias=False), nn.PReLU(2))
    prelu = measure(model, (3,)).layers[1]
    assert (prelu.name, prelu.kind, prelu.params, prelu.memory_bits, prelu.macs) == ("1", "prelu", 2, 64, 0)


def test_quantizer_internals_of_a_brevitas_layer_are_not_counted_twice():
    from brevitas.nn import QuantLinear
    from brevitas.quant import Int8ActPerTensorFloat

    # The input quantizer owns a learned scale parameter, and the layer returns a QuantTensor.
    layer = QuantLinear(4, 3, bias=False, input_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
    metrics = measure(with_precision(layer, "binary", "int8"), (4,))
    assert [(m.name, m.params, m.memory_bits, m.macs) for m in metrics.layers] == [("QuantLinear", 12, 12, 12)]


def test_stand_alone_int8_quantizer_stores_no_scale():
    from hbnn.quant.activation_quant import Int8Activation

    model = nn.Sequential(nn.Linear(4, 3, bias=False), Int8Activation())  # its Brevitas scale is a parameter
    assert [(m.name, m.params) for m in measure(model, (4,)).layers] == [("0", 12)]


def test_measure_restores_training_modes_and_leaves_state_unchanged():
    torch.manual_seed(0)
    model = tiny_hybrid_net()
    model.train()
    model[1].eval()  # mixed modes must survive, not be flattened by one model.train()
    before = {key: tensor.clone() for key, tensor in model.state_dict().items()}
    measure(model, (1, 6, 6))
    assert [module.training for module in model] == [True, False, True, True, True, True]
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)

    model.eval()
    measure(model, (1, 6, 6))
    assert not any(module.training for module in model.modules())


def test_table_has_a_row_per_layer_and_an_aligned_total_row():
    text = measure(tiny_hybrid_net(), (1, 6, 6)).table()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["layer", "kind", "precision"]
    assert len(lines) == 1 + 1 + 4 + 1 + 1  # header, rule, 4 layers, rule, total
    assert lines[-1].split() == ["total", "674", "2,720", "85", "2,048", "599", "1,472"]
    assert lines[4].split() == ["3", "conv", "binary+scale/binary", "296", "1", "544", "17", "1,152", "18", "1,152"]
    assert len({len(line) for line in lines}) == 1


def test_as_dict_round_trips_through_json(tmp_path):
    metrics = measure(tiny_hybrid_net(), (1, 6, 6))
    data = metrics.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["totals"] == {"params": 674, "memory_bits": 2720, "memory_bytes": 340.0, "effective_params_32": 85.0,
                              "macs": 2048, "flops": 599.0, "bops": 1472}
    assert NetworkMetrics.from_dict(json.loads(json.dumps(data))) == metrics

    path = tmp_path / "metrics.json"
    metrics.to_json(path)
    assert json.loads(path.read_text()) == data


def test_model_without_precision_is_float_everywhere():
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    metrics = measure(model, (5,))
    assert metrics.params == sum(p.numel() for p in model.parameters()) == 24 + 8 + 10
    assert metrics.memory_bits == 42 * 32
    assert (metrics.macs, metrics.flops, metrics.bops) == (20 + 8, 28.0, 0)


@pytest.mark.parametrize("fields, message", [
    ({"weights": "int4"}, "precision.weights"),
    ({"inputs": "ternary"}, "precision.inputs"),
    ({"weights": "abc", "weight_bases": 0}, "precision.weight_bases"),
    ({"inputs": "abc", "act_bases": 1.5}, "precision.act_bases"),
])
def test_invalid_precision_is_rejected(fields, message):
    precision = {"weights": "binary", "inputs": "binary", "weight_scale": False, "weight_bases": 1, "act_bases": 1}
    layer = with_precision(nn.Linear(2, 2), **{**precision, **fields})
    with pytest.raises(ValueError, match=message):
        measure(layer, (2,))


def test_precision_on_a_module_that_is_not_conv_or_linear_is_rejected():
    activation = nn.Hardtanh()
    activation.precision = types.SimpleNamespace(weights="float", inputs="binary")
    with pytest.raises(ValueError, match="neither a convolution nor a linear"):
        measure(nn.Sequential(nn.Linear(2, 2), activation), (2,))
