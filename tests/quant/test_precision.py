"""Precision: validation, names, parse/dict round trips, and the conv2d/linear factories."""

import dataclasses

import pytest
import torch

from hbnn.quant.precision import BINARY, FLOAT, INT8, TERNARY, WEIGHT_BINARY, Precision, abc, conv2d, linear

NAMED = {
    "float": FLOAT,
    "int8": INT8,
    "weight-binary": WEIGHT_BINARY,
    "binary": BINARY,
    "ternary": TERNARY,
    "binary+alpha": Precision("binary", "binary", weight_scale=True),
    "weight-binary+alpha": Precision("binary", "int8", weight_scale=True),
    "ternary+alpha": Precision("ternary", "int8", weight_scale=True),
    "abc1x1": abc(1, 1),
    "abc3x1": Precision("abc", "abc", weight_bases=3, act_bases=1),
    "abc3x3": abc(3, 3),
    "abc2x5": abc(2, 5),
}


@pytest.mark.parametrize("name, precision", NAMED.items())
def test_name_parse_and_dict_round_trip(name, precision):
    assert precision.name == name
    assert Precision.parse(name) == precision
    assert Precision.from_dict(precision.to_dict()) == precision
    assert Precision.parse(f"  {name.upper()} ") == precision


def test_constants_and_abc_helper():
    assert (WEIGHT_BINARY.weights, WEIGHT_BINARY.inputs) == ("binary", "int8")
    assert (BINARY.weights, BINARY.inputs) == ("binary", "binary")
    assert (TERNARY.weights, TERNARY.inputs) == ("ternary", "int8")
    assert abc(3, 2) == Precision("abc", "abc", weight_bases=3, act_bases=2)
    assert INT8.to_dict() == {"weights": "int8", "inputs": "int8", "weight_scale": False, "weight_bases": 1,
                              "act_bases": 1}
    assert len({INT8, Precision("int8", "int8"), FLOAT}) == 2  # frozen: hashable, equal by value
    with pytest.raises(dataclasses.FrozenInstanceError):
        INT8.weights = "float"


@pytest.mark.parametrize("kwargs, message", [
    (dict(weights="int4", inputs="int8"), "weights must be one of .*'int4'"),
    (dict(weights="int8", inputs="uint8"), "inputs must be one of .*'uint8'"),
    (dict(weights=None, inputs="int8"), "weights must be one of"),
    (dict(weights="float", inputs="int8"), "inputs='int8' cannot go with weights='float'"),
    (dict(weights="int8", inputs="float"), "inputs='float' cannot go with weights='int8'"),
    (dict(weights="binary", inputs="abc"), "inputs='abc' cannot go with weights='binary'"),
    (dict(weights="abc", inputs="int8"), "inputs='int8' cannot go with weights='abc'"),
    (dict(weights="ternary", inputs="binary"), "inputs='binary' cannot go with weights='ternary'"),
    (dict(weights="int8", inputs="int8", weight_scale=True), "weight_scale=True needs binary or ternary"),
    (dict(weights="abc", inputs="abc", weight_scale=True), "weight_scale=True needs binary or ternary"),
    (dict(weights="binary", inputs="binary", weight_scale=1), "weight_scale must be True or False"),
    (dict(weights="abc", inputs="abc", weight_bases=0), "weight_bases must be a positive integer"),
    (dict(weights="abc", inputs="abc", act_bases=-2), "act_bases must be a positive integer"),
    (dict(weights="abc", inputs="abc", act_bases=True), "act_bases must be a positive integer"),
    (dict(weights="abc", inputs="abc", weight_bases=2.0), "weight_bases must be a positive integer"),
    (dict(weights="binary", inputs="int8", weight_bases=3), "weight_bases=3 needs abc weights"),
    (dict(weights="int8", inputs="int8", act_bases=2), "act_bases=2 needs abc inputs"),
])
def test_invalid_combinations_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Precision(**kwargs)


@pytest.mark.parametrize("text", ["int4", "abc0x1", "abc3", "abcxx", "float+alpha", "int8+alpha", "abc2x2+alpha",
                                  "binary+beta", ""])
def test_parse_rejects_unknown_names(text):
    with pytest.raises(ValueError, match="precision"):
        Precision.parse(text)


def test_from_dict_rejects_unknown_and_missing_fields():
    with pytest.raises(ValueError, match="unknown precision field.*'bits'"):
        Precision.from_dict({"weights": "int8", "inputs": "int8", "bits": 8})
    with pytest.raises(ValueError, match="lacks 'inputs'"):
        Precision.from_dict({"weights": "int8"})
    with pytest.raises(ValueError, match="mapping"):
        Precision.from_dict(["int8", "int8"])


@pytest.mark.parametrize("name", list(NAMED))
def test_factories_build_layers_with_standard_attributes(name):
    precision = NAMED[name]
    conv = conv2d(precision, 3, 8, 3, stride=2, padding=1, bias=True)
    assert conv.precision == precision
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == \
        (3, 8, (3, 3), (2, 2), (1, 1))
    assert conv.weight.shape == (8, 3, 3, 3) and conv.bias.shape == (8,)
    assert conv(torch.randn(2, 3, 9, 9)).shape == (2, 8, 5, 5)
    fc = linear(name, 10, 4)  # a name works as well as a Precision
    assert fc.precision == precision
    assert (fc.in_features, fc.out_features, fc.bias) == (10, 4, None)
    assert fc.weight.shape == (4, 10)
    assert fc(torch.randn(5, 10)).shape == (5, 4)


def test_float_layers_are_plain_torch_layers_without_integer_form():
    conv, fc = conv2d(FLOAT, 2, 3, 3), linear(FLOAT, 4, 2)
    assert isinstance(conv, torch.nn.Conv2d) and isinstance(fc, torch.nn.Linear)
    for layer in (conv, fc):
        with pytest.raises(NotImplementedError, match="float baseline"):
            layer.integer_inference(torch.zeros(1))
        with pytest.raises(NotImplementedError, match="float baseline"):
            layer.quantized_weight_codes()


def test_factories_reject_other_precision_types():
    with pytest.raises(TypeError, match="precision must be a Precision"):
        conv2d(8, 3, 3, 3)
    with pytest.raises(ValueError, match="unknown precision 'int3'"):
        linear("int3", 3, 3)
