"""The model zoo: shapes, gradients, which layers each variant binarizes, activations in front of binarizing layers,
shortcut counts, parameter counts against the papers and FINN, configs and argument errors."""

import json

import pytest
import torch
from brevitas_examples.bnn_pynq.models.CNV import CNV as FinnCNV
from torch import nn

from hbnn.quant.activation_quant import Int8Activation
from hbnn.quant.layers import ExactBatchNorm1d, ExactBatchNorm2d
from hbnn.quant.models import MODELS, build_model, model_from_config
from hbnn.quant.models.nin import XNOR
from hbnn.quant.precision import BINARY, FLOAT, INT8, TERNARY, WEIGHT_BINARY, Precision, abc


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Batch-2 passes through small nets are too short to split across threads: with other jobs on the machine,
    OpenMP's spinning threads made them some 30 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Small ABC bases keep the VGG/AlexNet abc runs fast; the defaults (3, 3) are exercised by LeNet-5.
ABC_SMALL = {"weight_bases": 2, "act_bases": 1}

# (model, variant, options): every model at every variant, ResNet-14 with all three shortcut layouts.
CASES = [
    *(("blinknet", variant, {}) for variant in ("fp", "hybrid", "binary")),
    *(("resnet14", variant, {"shortcuts": shortcuts})
      for shortcuts in ("all", "hybrid", "none") for variant in ("fp", "hybrid", "binary")),
    *(("cnv", variant, {}) for variant in ("fp", "binary")),
    *(("nin", variant, {}) for variant in ("fp", "binary")),
    *(("cresnet20", variant, {}) for variant in ("fp", "binary")),
    ("cresnet20", "binary", {"layer_precisions": {"stage1.0.conv1": "fp", "stage2.0.conv2": "weight-binary"}}),
    *(("lenet5", variant, {}) for variant in ("fp", "binary", "ternary", "abc")),
    *((name, variant, ABC_SMALL if variant == "abc" else {})
      for name in ("alexnet_small", "vgg_small") for variant in ("fp", "binary", "ternary", "abc")),
    *(("mlp", variant, {}) for variant in ("fp", "hybrid", "binary")),
    ("mlp", "fp", {"hidden": [32], "layer_precisions": {"fc2": "weight-binary"}}),
]
INPUTS = {"cnv": ((3, 32),)}  # CNV's unpadded convs need 32x32; the others take both
DEFAULT_INPUTS = ((1, 28), (3, 32))


def case_id(case):
    name, variant, options = case
    suffix = "-".join(f"{key}={value}" for key, value in options.items() if key != "layer_precisions")
    return "-".join(filter(None, (name, variant, suffix, "plan" if "layer_precisions" in options else "")))


def build(name, variant, options, channels=3, size=32, **kwargs):
    torch.manual_seed(0)
    return build_model(name, precision=variant, in_channels=channels, num_classes=10, image_size=size,
                       **options, **kwargs)


def layer_precisions(model):
    return {name: model.get_submodule(name).precision for name in model.binarizable_layers()}


FORWARD_CASES = [(*case, channels, size) for case in CASES for channels, size in INPUTS.get(case[0], DEFAULT_INPUTS)]


@pytest.mark.parametrize("name, variant, options, channels, size", FORWARD_CASES,
                         ids=[f"{case_id(case[:3])}-{case[3]}x{case[4]}" for case in FORWARD_CASES])
def test_forward_backward_and_the_inputs_each_layer_sees(name, variant, options, channels, size):
    model = build(name, variant, options, channels, size).train()
    layers = model.binarizable_layers()
    called, inputs = [], {}

    def record(layer_name):
        def hook(module, args):
            called.append(layer_name)
            inputs[layer_name] = args[0].detach()
        return hook

    for layer_name in layers:
        model.get_submodule(layer_name).register_forward_pre_hook(record(layer_name))
    # Batch 2 keeps the conv nets fast. A 1-d batch-norm maps a batch of 2 to +-1 per feature whatever the input,
    # so its gradient vanishes (up to rounding noise near 1e-11): the mlp, which has only those, gets a batch of
    # 8; the other models with hidden linear layers (CNV, the study nets) have them too and get 4.
    hidden_norms = any(isinstance(module, ExactBatchNorm1d) for module in model.modules())
    batch = 8 if name == "mlp" else 4 if hidden_norms else 2
    x = torch.randn(batch, channels, size, size)
    out = model(x)
    assert out.shape == (batch, 10)
    nn.functional.cross_entropy(out, torch.tensor([1, 7] * (batch // 2))).backward()

    assert called == layers  # binarizable_layers() is the forward order, each layer run once
    model.eval()  # the exact eval paths (batch-norm, integer convs, average pool) run too
    with torch.no_grad():
        assert torch.isfinite(model(x)).all() and model(x).shape == (batch, 10)
    for layer_name in layers:
        weight = model.get_submodule(layer_name).weight
        assert weight.grad is not None and torch.isfinite(weight.grad).all(), layer_name
    # The gradient reaches the first layer through every binary layer's straight-through estimator.
    assert model.get_submodule(layers[0]).weight.grad.abs().sum() > 0
    # Activation rule: a binarizing layer never sees an all-positive (ReLU'd) input; in an fp model every
    # layer after the first reads ReLU outputs.
    for layer_name, precision in layer_precisions(model).items():
        if precision.inputs in ("binary", "abc"):
            assert inputs[layer_name].min() < 0, f"{layer_name} reads a ReLU'd input"
        elif variant == "fp" and layer_name != layers[0]:
            assert inputs[layer_name].min() >= 0, f"{layer_name} reads no ReLU output"


def test_every_tagged_layer_is_listed_and_every_batch_norm_is_exact():
    for case in CASES:
        model = build(*case)
        tagged = [name for name, module in model.named_modules()
                  if isinstance(getattr(module, "precision", None), Precision)]
        assert tagged == model.binarizable_layers(), case
        norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._NormBase)]
        assert norms and all(isinstance(norm, (ExactBatchNorm1d, ExactBatchNorm2d)) for norm in norms), case


def test_blinknet_hybrid_binarizes_the_pre_residual_convs_only():
    plans = {variant: layer_precisions(build("blinknet", variant, {})) for variant in ("fp", "hybrid", "binary")}
    pre = {f"stage{stage}.pre.conv" for stage in (1, 2, 3)}
    assert len(plans["fp"]) == 11 and set(plans["fp"].values()) == {INT8}
    assert {name for name, precision in plans["hybrid"].items() if precision == BINARY} == pre
    assert all(precision == INT8 for name, precision in plans["hybrid"].items() if name not in pre)
    assert {name for name, precision in plans["binary"].items() if precision != BINARY} == {"stem.conv", "fc"}
    assert plans["binary"]["stem.conv"] == plans["binary"]["fc"] == INT8


def test_blinknet_takes_single_channel_28x28_and_drops_out_before_its_linear_layer():
    model = build("blinknet", "hybrid", {}, channels=1, size=28)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.2
    assert [name for name in model.binarizable_layers() if name.startswith("stage2")][0] == "stage2.pre.conv"
    assert model.stage2.pre.conv.stride == (2, 2) and model.stage2.conv1.stride == (1, 1)


@pytest.mark.parametrize("shortcuts, blocks", [("all", (1, 2, 3)), ("hybrid", (2,)), ("none", ())])
def test_resnet14_shortcut_layouts_and_which_convs_are_binary(shortcuts, blocks):
    for variant in ("fp", "hybrid", "binary"):
        model = build("resnet14", variant, {"shortcuts": shortcuts})
        plan = layer_precisions(model)
        shortcut_layers = [name for name in plan if name.endswith(".shortcut.conv")]
        assert shortcut_layers == [f"block{block}.shortcut.conv" for block in blocks]
        assert [model.get_submodule(f"block{block}").shortcut is not None for block in (1, 2, 3)] == \
            [block in blocks for block in (1, 2, 3)]
        assert len(plan) == 8 + len(blocks)  # stem, 6 block convs, fc, the shortcuts
        block_convs = [f"block{block}.conv{index}" for block in (1, 2, 3) for index in (1, 2)]
        expected_block = {"fp": INT8, "hybrid": BINARY, "binary": BINARY}[variant]
        expected_shortcut = BINARY if variant == "binary" else INT8
        assert all(plan[name] == expected_block for name in block_convs)
        assert all(plan[name] == expected_shortcut for name in shortcut_layers)
        assert plan["stem.conv"] == plan["fc"] == INT8


def test_cnv_mirrors_finn_topology_with_binary_weights_on_8_bit_pixels_first():
    model = build("cnv", "binary", {})
    plan = layer_precisions(model)
    assert list(plan) == [f"features.conv{index}" for index in range(1, 7)] + \
        [f"classifier.fc{index}" for index in range(1, 4)]
    assert plan["features.conv1"] == WEIGHT_BINARY
    assert all(plan[name] == BINARY for name in list(plan)[1:-1])
    assert plan["classifier.fc3"] == INT8
    finn = FinnCNV(num_classes=10, weight_bit_width=1, act_bit_width=1, in_bit_width=8, in_ch=3)
    ours = [(tuple(module.weight.shape), module.stride, module.padding) for module in model.features
            if hasattr(module, "precision")]
    theirs = [(tuple(module.weight.shape), module.stride, module.padding) for module in finn.conv_features
              if isinstance(module, nn.Conv2d)]
    assert ours == theirs
    assert [type(module).__name__ for module in model.features if isinstance(module, nn.MaxPool2d)] == \
        ["MaxPool2d"] * 2
    assert all(norm.eps == 1e-4 for norm in model.modules() if isinstance(norm, nn.modules.batchnorm._NormBase))


def test_nin_binarizes_all_but_first_and_last_with_xnor_scaling_and_no_dropout_before_signs():
    plan = layer_precisions(build("nin", "binary", {}))
    names = list(plan)
    assert len(names) == 9 and plan[names[0]] == plan[names[-1]] == INT8
    assert all(plan[name] == XNOR and plan[name].weight_scale for name in names[1:-1])
    binary, fp = build("nin", "binary", {}), build("nin", "fp", {})
    assert not any(isinstance(module, nn.Dropout) for module in binary.modules())
    assert sum(isinstance(module, nn.Dropout) for module in fp.modules()) == 2


@pytest.mark.parametrize("name", ["lenet5", "alexnet_small", "vgg_small"])
def test_abc_study_nets_keep_first_and_last_layers_full_precision(name):
    expected = {"fp": INT8, "binary": BINARY, "ternary": TERNARY, "abc": abc(3, 3)}
    for variant, middle in expected.items():
        plan = layer_precisions(build(name, variant, {}))
        names = list(plan)
        assert plan[names[0]] == plan[names[-1]] == INT8
        assert all(plan[layer] == middle for layer in names[1:-1]), variant
    plan = layer_precisions(build(name, "abc", {"weight_bases": 5, "act_bases": 2}))
    assert plan[list(plan)[1]] == abc(5, 2)


def test_lenet5_gives_the_classic_400_features_for_28x28_and_32x32():
    for channels, size in ((1, 28), (3, 32)):
        model = build("lenet5", "fp", {}, channels=channels, size=size)
        assert model.get_submodule("classifier.fc1").in_features == 400


def test_cresnet20_binary_and_per_layer_overrides():
    plan = layer_precisions(build("cresnet20", "binary", {}))
    assert len(plan) == 20 and plan["stem.conv"] == plan["fc"] == INT8
    assert all(precision == BINARY for name, precision in plan.items() if name not in ("stem.conv", "fc"))
    model = build("cresnet20", "binary", {"layer_precisions": {"stage3.2.conv2": "fp", "fc": "binary+alpha"}},
                  full_precision=FLOAT)
    plan = layer_precisions(model)
    assert plan["stage3.2.conv2"] == FLOAT and plan["stem.conv"] == FLOAT
    assert plan["fc"] == Precision("binary", "binary", weight_scale=True)
    assert isinstance(model.stage3[2].act1, nn.ReLU)  # conv2 now reads full precision: ReLU in front of it
    assert isinstance(model.stage3[1].act, nn.Identity)  # the next block's conv1 is still binary


@pytest.mark.parametrize("name, variant, layer, reader_activation", [
    ("resnet14", "fp", "block2.conv1", "block1.act2"),
    ("blinknet", "fp", "stage2.pre.conv", "stage1.act"),
])
def test_every_zoo_model_takes_layer_overrides(name, variant, layer, reader_activation):
    model = build(name, variant, {"layer_precisions": {layer: "Binary"}})
    assert layer_precisions(model)[layer] == BINARY
    assert model.config()["options"]["layer_precisions"] == {layer: "binary"}  # canonical spelling
    # The layer in front now feeds a sign: no ReLU there.
    assert isinstance(model.get_submodule(reader_activation), nn.Identity)
    assert isinstance(build(name, variant, {}).get_submodule(reader_activation), nn.ReLU)


def network_parameters(model):
    """Weights and biases of conv/linear/batch-norm layers (quantizers' learned scales not counted)."""
    counted = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._NormBase)
    return sum(parameter.numel() for module in model.modules()
               if isinstance(module, counted) or hasattr(module, "precision") or type(module).__name__ == "TensorNorm"
               for parameter in module.parameters(recurse=False))


def test_parameter_counts_match_resnet20_option_a_and_finn_cnv():
    # He et al.: ResNet-20 with option-A shortcuts has 0.27M parameters; exactly 269,722 for 10 classes.
    assert network_parameters(build("cresnet20", "fp", {})) == 269_722
    assert network_parameters(build("cresnet20", "binary", {})) == 269_722
    finn = FinnCNV(num_classes=10, weight_bit_width=1, act_bit_width=1, in_bit_width=8, in_ch=3)
    # Ours lacks FINN's one-channel TensorNorm after the classifier (weight and bias: 2 parameters).
    assert network_parameters(finn) == 1_546_690
    for variant in ("fp", "binary"):
        assert network_parameters(build("cnv", variant, {})) == network_parameters(finn) - 2


@pytest.mark.parametrize("case", CASES, ids=[case_id(case) for case in CASES])
def test_config_round_trips_through_json_and_checkpoints_load(case):
    model = build(*case)
    config = json.loads(json.dumps(model.config()))
    assert config["name"] == case[0] and config["precision"] == case[1] and config["full_precision"] == "int8"
    for rebuilt in (model_from_config(config), build_model(**config)):
        assert rebuilt.config() == config
        assert [(name, type(module).__name__) for name, module in rebuilt.named_modules()] == \
            [(name, type(module).__name__) for name, module in model.named_modules()]
        assert [(name, p.shape) for name, p in rebuilt.named_parameters()] == \
            [(name, p.shape) for name, p in model.named_parameters()]
        assert layer_precisions(rebuilt) == layer_precisions(model)
    # A checkpoint's weights load strictly into the rebuilt model and give the same eval outputs. One training
    # step first: int8 inputs' learned scales enter the state dict once Brevitas has initialized them from data.
    x = torch.randn(2, 3, 32, 32)
    model.train()(x)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), model.eval()(x))


def test_config_keeps_float_baseline_and_defaults():
    model = build("resnet14", "fp", {}, full_precision=FLOAT)
    config = model.config()
    assert config["full_precision"] == "float" and config["options"] == {"shortcuts": "all", "dropout": 0.2,
                                                                       "layer_precisions": {}}
    assert set(layer_precisions(model_from_config(config)).values()) == {FLOAT}
    assert build("lenet5", "abc", {}).config()["options"] == {"weight_bases": 3, "act_bases": 3,
                                                              "layer_precisions": {}}
    assert build("lenet5", "binary", {}).config()["options"] == {"layer_precisions": {}}


BAD_ARGUMENT_IDS = [
    "unknown-model", "unknown-variant", "unknown-option", "bad-shortcuts", "bad-dropout", "option-for-other-variant",
    "zero-bases", "cnv-too-small", "unknown-plan-layer", "unknown-plan-precision", "unknown-full-precision",
    "binary-full-precision", "zero-channels", "unknown-config-key", "option-twice",
]


@pytest.mark.parametrize("call, message", [
    (lambda: build("resnet18", "fp", {}), r"unknown model 'resnet18'; models: blinknet, resnet14, cnv"),
    (lambda: build("resnet14", "abc", {}), r"precision of resnet14 must be one of fp, hybrid, binary, not 'abc'"),
    (lambda: build("resnet14", "fp", {"shortcut": "all"}), r"unknown option 'shortcut' .* shortcuts, dropout"),
    (lambda: build("resnet14", "fp", {"shortcuts": "some"}), r"shortcuts must be one of all, hybrid, none"),
    (lambda: build("blinknet", "fp", {"dropout": 1.0}), r"dropout must be a dropout probability"),
    (lambda: build("lenet5", "binary", {"weight_bases": 2}), r"'weight_bases' of lenet5 applies only to .*abc"),
    (lambda: build("lenet5", "abc", {"act_bases": 0}), r"act_bases must be a positive integer, not 0"),
    (lambda: build("cnv", "binary", {}, size=28), r"image_size 28 is too small for cnv.* at least 32"),
    (lambda: build("cresnet20", "fp", {"layer_precisions": {"stage4.0.conv1": "fp"}}),
     r"unknown layer 'stage4.0.conv1'; layers of cresnet20: stem.conv, stage1.0.conv1"),
    (lambda: build("cresnet20", "fp", {"layer_precisions": {"fc": "half"}}), r"layer_precisions\['fc'\].*'half'"),
    (lambda: build("nin", "fp", {}, full_precision="int4"), r"full_precision must be one of int8, float"),
    (lambda: build("nin", "fp", {}, full_precision=BINARY), r"full_precision must be one of int8, float"),
    (lambda: build("nin", "fp", {}, channels=0), r"in_channels must be a positive integer, not 0"),
    (lambda: model_from_config({**build("nin", "fp", {}).config(), "seed": 1}), r"unknown config key\(s\) 'seed'"),
    (lambda: build_model("nin", precision="fp", in_channels=3, num_classes=10, image_size=32,
                         options={"dropout": 0.1}, dropout=0.2), r"option 'dropout' given twice"),
], ids=BAD_ARGUMENT_IDS)
def test_bad_arguments_name_the_option(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_registry_lists_every_family():
    assert list(MODELS) == ["blinknet", "resnet14", "cnv", "nin", "lenet5", "alexnet_small", "vgg_small",
                            "cresnet20", "mlp"]


POOLED_MODELS = ["resnet14", "cresnet20", "blinknet"]  # global average pool over batch-norm/ReLU outputs


@pytest.mark.parametrize("name", POOLED_MODELS)
@pytest.mark.parametrize("variant", ["fp", "binary"])
def test_global_average_pool_of_an_int8_reader_averages_int8_codes(name, variant):
    """pool_quant (Int8Activation) then pool (ExactAvgPool2d): the eval pool output is the integer computation
    codes -> int64 sums over the map -> f32(f64(sum) * s / area)."""
    model = build(name, variant, {})
    assert model.full_precision == INT8 and model.precision_of("fc") == INT8
    quantizers = [path for path, module in model.named_modules() if isinstance(module, Int8Activation)]
    # The residual sums' shared quantizers (QuantAdd) are the only other int8 activations.
    assert [path for path in quantizers if not path.endswith(".add.quant")] == ["pool_quant"]
    x = torch.randn(2, 3, 32, 32)
    model.train()(x)  # Brevitas initializes the learned scales from these statistics
    seen = {}
    model.pool_quant.register_forward_pre_hook(lambda module, args: seen.update(pool_quant=args[0]))
    model.pool.register_forward_hook(lambda module, args, out: seen.update(pool=out))
    with torch.no_grad():
        model.eval()(x)
    codes, scale = model.pool_quant.codes(seen["pool_quant"])
    sums = codes.sum(dim=(2, 3), keepdim=True)  # int64: exact
    area = codes.shape[2] * codes.shape[3]
    assert model.pool.area == area and codes.shape[2:] == (8, 8)
    expected = (sums.double() * float(scale) / area).to(torch.float32)
    assert torch.equal(seen["pool"], expected)
    assert torch.equal(model.pool.integer_inference(codes, scale), expected)


@pytest.mark.parametrize("name", POOLED_MODELS)
def test_pool_quant_only_where_an_int8_layer_reads_the_pool(name):
    # The float baseline has no pool quantizer, no state for one; its only int8 activations are the residual sums'
    # (QuantAdd quantizes both addends whatever the layers' precision, so that the sum is an integer add).
    for model in (build(name, "fp", {}, full_precision=FLOAT), build(name, "binary", {}, full_precision=FLOAT)):
        assert model.pool_quant is None
        assert all(path.endswith(".add.quant") for path, module in model.named_modules()
                   if isinstance(module, Int8Activation))
        assert not any(key.startswith("pool_quant") for key in model.state_dict())
    # A classifier that binarizes its input takes signs of the pool output: no int8 quantizer in front either.
    assert build(name, "fp", {"layer_precisions": {"fc": "binary"}}).pool_quant is None
    assert isinstance(build(name, "fp", {"layer_precisions": {"fc": "weight-binary"}}).pool_quant, Int8Activation)


def test_nin_pool_reads_the_classifier_conv_without_a_quantizer():
    for variant in ("fp", "binary"):
        model = build("nin", variant, {})
        assert not any(isinstance(module, Int8Activation) for module in model.modules())
