"""VGG-Small, the CIFAR VGG of the binarization literature (BinaryConnect/BNN's convs, as used by LQ-Nets and
later ABC-Net comparisons), as an ABC-Net study network.

Six padded 3x3 convs 128-128-pool-256-256-pool-512-512-pool (2x2 max-pools), each followed by batch-norm and
activation, then one linear layer to the classes: 32x32 leaves 512x4x4 features, 28x28 512x3x3.
Variants: see study.py.
"""

from __future__ import annotations

from .study import ABC_OPTIONS, ConvSpec, StudyNet

__all__ = ["VGGSmall"]


class VGGSmall(StudyNet):
    NAME = "vgg_small"
    OPTIONS = ABC_OPTIONS

    @classmethod
    def conv_specs(cls, image_size: int) -> tuple[ConvSpec, ...]:
        return (ConvSpec(128, 3, padding=1), ConvSpec(128, 3, padding=1, pool=True),
                ConvSpec(256, 3, padding=1), ConvSpec(256, 3, padding=1, pool=True),
                ConvSpec(512, 3, padding=1), ConvSpec(512, 3, padding=1, pool=True))
