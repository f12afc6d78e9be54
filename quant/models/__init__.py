"""The model zoo: the networks of the hybrid-BNN papers hbnn reproduces, each at several precision variants.

    model = build_model("resnet14", precision="hybrid", in_channels=3, num_classes=10, image_size=32,
                        shortcuts="hybrid")
    same = model_from_config(model.config())

`precision` names a variant of the model: "fp" (every layer at `full_precision`: INT8, the hardware's 8-bit fixed
point, by default; FLOAT for pure-float paper baselines), "hybrid" where the paper defines one, "binary" (all
but the layers the paper keeps at full precision), and for the ABC-Net study networks also "ternary" and "abc"
(options weight_bases=M, act_bases=N). "mlp" is the multilayer perceptron on flattened pixels (option hidden: its
hidden widths), the network the compiler maps to hardware. Each model's module docstring says which layers each
variant binarizes.

Conventions every model follows:
* Activation rule. A layer whose precision.inputs is "binary" or "abc" quantizes its own input to signs, and
  sign(0) = +1: a ReLU in front of it would make every sign +1. So the activation in front of such a layer is
  nn.Identity -- batch-norm output goes straight to the layer's input quantizer, which is the activation. In
  front of full-precision layers it is ReLU. Where one output feeds several layers (a residual sum and the
  shortcut conv), one binarizing reader is enough for Identity; both addends of a residual sum follow the rule.
  Dropout likewise is left out in front of binarizing layers (a dropped 0 would become +1).
* Every batch-norm is ExactBatchNorm2d/1d (eval arithmetic reproducible; plain nn.BatchNorm is refused by the
  hbnn compiler).
* Pools are max-pools (exact as they are), except global average pooling where a paper has it: an
  ExactAvgPool2d over the whole final map (float64 window sum, one division), so eval output is reproducible.
  Where it averages batch-norm/ReLU outputs and an int8 layer reads it, an Int8Activation `pool_quant` in front
  makes its inputs int8 codes (blocks.pool_quant_for); float models have none.
* Conv/linear layers carry their Precision as `.precision`; `model.binarizable_layers()` lists their module
  names in forward order; `model.config()` is JSON-able.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..precision import INT8, Precision
from .alexnet_small import AlexNetSmall
from .base import ZooModel
from .blinknet import BlinkNet
from .cnv import CNV
from .cresnet20 import CifarResNet20
from .lenet import LeNet5
from .mlp import MLP
from .nin import NIN
from .resnet14 import ResNet14
from .vgg_small import VGGSmall

__all__ = ["MODELS", "ZooModel", "build_model", "model_from_config"]

MODELS: dict[str, Callable[..., ZooModel]] = {
    model.NAME: model
    for model in (BlinkNet, ResNet14, CNV, NIN, LeNet5, AlexNetSmall, VGGSmall, CifarResNet20, MLP)
}

CONFIG_KEYS = ("name", "precision", "in_channels", "num_classes", "image_size", "full_precision", "options")


def build_model(name: str, *, precision: str, in_channels: int, num_classes: int, image_size: int,
                full_precision: Precision | str = INT8, options: Mapping[str, Any] | None = None,
                **more_options: Any) -> ZooModel:
    """Build zoo model `name` at variant `precision`. Model options come as keywords, as an `options` mapping
    (the form config() writes, so `build_model(**model.config())` works), or both."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"unknown model {name!r}; models: {', '.join(MODELS)}")
    if options is not None and not isinstance(options, Mapping):
        raise ValueError(f"options must be a mapping of option names to values, not {options!r}")
    merged = dict(options or {})
    for option in more_options:
        if option in merged:
            raise ValueError(f"option {option!r} given twice, as a keyword and in options")
    merged.update(more_options)
    return MODELS[name](precision=precision, in_channels=in_channels, num_classes=num_classes,
                        image_size=image_size, full_precision=full_precision, **merged)


def model_from_config(config: Mapping[str, Any]) -> ZooModel:
    """Rebuild a model (fresh weights, same architecture) from `model.config()`."""
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping such as model.config() returns, not {config!r}")
    unknown = [key for key in config if key not in CONFIG_KEYS]
    missing = [key for key in CONFIG_KEYS if key != "options" and key not in config]
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(map(repr, unknown))}; keys: {', '.join(CONFIG_KEYS)}")
    if missing:
        raise ValueError(f"config lacks {', '.join(map(repr, missing))}")
    return build_model(**config)
