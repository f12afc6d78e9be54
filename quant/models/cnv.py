"""CNV: the VGG-like BNN of Courbariaux/Hubara et al. in the form FINN deploys it
(brevitas_examples.bnn_pynq.models.CNV).

Six unpadded 3x3 convs 64-64-pool-128-128-pool-256-256 (2x2 max pools), each conv followed by batch-norm
(eps 1e-4, as FINN) and activation, then linear 512-BN-act, 512-BN-act, and the classifier, all without bias.
A 32x32 input leaves a 1x1x256 map, so the first linear layer has 256 inputs; other sizes get
256*s*s inputs, s being the final map size (sizes below 32 leave nothing for the last conv and are refused).

Variants:
  fp      every layer at full precision;
  binary  binary weights everywhere except the classifier; binary inputs everywhere except the first conv,
          which reads 8-bit pixels (WEIGHT_BINARY, whatever the full precision).

Differences from FINN's CNV: FINN also binarizes the classifier's weights and scales its outputs with a one-channel
TensorNorm; here the classifier is at full precision and has no TensorNorm (2 parameters fewer). FINN maps pixels
from [0, 1] to [-1, 1) inside forward(); here the first layer's input quantizer sees the data as given.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from ..precision import BINARY, WEIGHT_BINARY, Precision, linear
from .base import ZooModel
from .blocks import activation_for, conv_bn_act_parts, conv_output_size, linear_bn_act_parts

__all__ = ["CNV"]

# (out_channels, max-pool after it), as FINN's CNV_OUT_CH_POOL.
CONV_CHANNELS_POOL = ((64, False), (64, True), (128, False), (128, True), (256, False), (256, False))
HIDDEN_FEATURES = (512, 512)
KERNEL_SIZE = 3
BN_EPS = 1e-4

CONV_NAMES = tuple(f"features.conv{index}" for index in range(1, len(CONV_CHANNELS_POOL) + 1))
LINEAR_NAMES = tuple(f"classifier.fc{index}" for index in range(1, len(HIDDEN_FEATURES) + 2))


def final_map_size(image_size: int) -> int:
    size = image_size
    for _, pool in CONV_CHANNELS_POOL:
        size = conv_output_size(size, KERNEL_SIZE)
        if pool:
            size //= 2
    return size


MIN_IMAGE_SIZE = next(size for size in range(1, 1000) if final_map_size(size) >= 1)


class CNV(ZooModel):
    NAME = "cnv"
    VARIANTS = ("fp", "binary")

    def __init__(self, **arguments: Any) -> None:
        super().__init__(**arguments)
        map_size = final_map_size(self.image_size)
        if map_size < 1:
            raise ValueError(f"image_size {self.image_size} is too small for cnv's six unpadded 3x3 convs and two "
                             f"pools; it needs at least {MIN_IMAGE_SIZE} (pad smaller images: e.g. --dataset "
                             f"fashion-mnist@{MIN_IMAGE_SIZE})")
        plan = self._plan_layers()
        plan = self._set_plan(plan)
        names = CONV_NAMES + LINEAR_NAMES

        features: dict[str, nn.Module] = {}
        in_channels = self.in_channels
        for index, (out_channels, pool) in enumerate(CONV_CHANNELS_POOL, start=1):
            reader = plan[names[index]]
            features.update(conv_bn_act_parts(plan[f"features.conv{index}"], in_channels, out_channels,
                                              KERNEL_SIZE, activation=activation_for(reader), bn_eps=BN_EPS,
                                              suffix=str(index)))
            if pool:  # max commutes with the sign a binary reader takes, so pooling after the activation is exact
                features[f"pool{index}"] = nn.MaxPool2d(2)
            in_channels = out_channels
        self.features = nn.Sequential(OrderedDict(features))

        classifier: dict[str, nn.Module] = {}
        in_features = in_channels * map_size * map_size
        for index, out_features in enumerate(HIDDEN_FEATURES, start=1):
            reader = plan[f"classifier.fc{index + 1}"]
            classifier.update(linear_bn_act_parts(plan[f"classifier.fc{index}"], in_features, out_features,
                                                  activation=activation_for(reader), bn_eps=BN_EPS,
                                                  suffix=str(index)))
            in_features = out_features
        classifier[f"fc{len(HIDDEN_FEATURES) + 1}"] = linear(plan[LINEAR_NAMES[-1]], in_features, self.num_classes)
        self.classifier = nn.Sequential(OrderedDict(classifier))

    def _plan_layers(self) -> dict[str, Precision]:
        full = self.full_precision
        if self.variant == "fp":
            return {name: full for name in CONV_NAMES + LINEAR_NAMES}
        plan = {name: BINARY for name in CONV_NAMES + LINEAR_NAMES}
        plan[CONV_NAMES[0]] = WEIGHT_BINARY  # binary weights on 8-bit pixels, as FINN's Q1.7 input
        plan[LINEAR_NAMES[-1]] = full
        return plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
