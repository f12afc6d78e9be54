"""StudyNet: the plain feed-forward CNNs of the ABC-Net study (LeNet-5, small AlexNet, small VGG), built from a
list of conv specs and hidden linear widths.

Layout: features.conv{i}-bn{i}-act{i}[-pool{i}] ..., flatten, classifier[.dropout{j}].fc{j}-bn{j}-act{j} ...,
classifier.fc{last} (with bias). The first conv and the last linear layer stay at full precision (ABC-Net and
its predecessors keep them so); every layer in between takes the variant's precision:
  fp       full precision            binary   binary weights and inputs (BINARY)
  ternary  TERNARY                   abc      ABC-Net: weight_bases binary weight bases (M), act_bases binary
                                              activation bases (N), options that apply to "abc" only.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..precision import Precision, linear
from .base import Option, ZooModel, check_positive_int
from .blocks import activation_for, conv_bn_act_parts, conv_output_size, dropout_for, linear_bn_act_parts
from .precision_names import study_precision

__all__ = ["ConvSpec", "StudyNet"]

ABC_OPTIONS = {
    "weight_bases": Option(3, check_positive_int, variants=("abc",)),
    "act_bases": Option(3, check_positive_int, variants=("abc",)),
}


@dataclass(frozen=True)
class ConvSpec:
    out_channels: int
    kernel_size: int
    padding: int = 0
    pool: bool = False  # a 2x2 max-pool after the activation


class StudyNet(ZooModel):
    """Subclasses set NAME, HIDDEN_FEATURES and conv_specs(); DROPOUT adds a `dropout` option (front of hidden
    linear layers, as AlexNet's classifier)."""

    VARIANTS = ("fp", "binary", "ternary", "abc")
    OPTIONS = ABC_OPTIONS
    HIDDEN_FEATURES: ClassVar[tuple[int, ...]] = ()
    DROPOUT: ClassVar[bool] = False

    @classmethod
    def conv_specs(cls, image_size: int) -> tuple[ConvSpec, ...]:
        raise NotImplementedError

    def __init__(self, **arguments: Any) -> None:
        super().__init__(**arguments)
        specs = self.conv_specs(self.image_size)
        map_size = self._final_map_size(specs)
        conv_names = [f"features.conv{index}" for index in range(1, len(specs) + 1)]
        linear_names = [f"classifier.fc{index}" for index in range(1, len(self.HIDDEN_FEATURES) + 2)]
        plan = self._plan_layers(conv_names + linear_names)
        plan = self._set_plan(plan)
        readers = list(plan.values())[1:]  # the layer after each layer

        features: dict[str, nn.Module] = {}
        in_channels = self.in_channels
        for index, spec in enumerate(specs, start=1):
            features.update(conv_bn_act_parts(plan[conv_names[index - 1]], in_channels, spec.out_channels,
                                              spec.kernel_size, padding=spec.padding,
                                              activation=activation_for(readers[index - 1]), suffix=str(index)))
            if spec.pool:
                features[f"pool{index}"] = nn.MaxPool2d(2)
            in_channels = spec.out_channels
        self.features = nn.Sequential(OrderedDict(features))

        classifier: dict[str, nn.Module] = {}
        in_features = in_channels * map_size * map_size
        for index, out_features in enumerate(self.HIDDEN_FEATURES, start=1):
            precision = plan[linear_names[index - 1]]
            if self.DROPOUT:
                classifier[f"dropout{index}"] = dropout_for(self.options["dropout"], precision)
            classifier.update(linear_bn_act_parts(precision, in_features, out_features,
                                                  activation=activation_for(readers[len(specs) + index - 1]),
                                                  suffix=str(index)))
            in_features = out_features
        classifier[f"fc{len(linear_names)}"] = linear(plan[linear_names[-1]], in_features, self.num_classes,
                                                      bias=True)
        self.classifier = nn.Sequential(OrderedDict(classifier))

    def _final_map_size(self, specs: tuple[ConvSpec, ...]) -> int:
        size = self.image_size
        for spec in specs:
            size = conv_output_size(size, spec.kernel_size, padding=spec.padding)
            if size >= 1 and spec.pool:
                size //= 2
            if size < 1:
                raise ValueError(f"image_size {self.image_size} is too small for {self.NAME}: its feature map "
                                 f"vanishes before the classifier")
        return size

    def _plan_layers(self, names: list[str]) -> dict[str, Precision]:
        full = self.full_precision
        middle = study_precision(self.variant, full, weight_bases=self.options.get("weight_bases", 1),
                                 act_bases=self.options.get("act_bases", 1))
        plan = {name: middle for name in names}
        plan[names[0]] = plan[names[-1]] = full
        return plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
