"""A small AlexNet (Krizhevsky et al., 2012) for 28x28/32x32 inputs, as an ABC-Net study network.

AlexNet's five convs (64, 192, 384, 256, 256 channels; 5x5, 5x5, then 3x3, all padded to keep the size) with a
2x2 max-pool after convs 1, 2 and 5, then AlexNet's classifier shrunk from 4096 to 512 wide: dropout-linear 512,
dropout-linear 512, linear classes. Batch-norm after every layer but the last (ours: AlexNet had local response
normalization). 32x32 leaves a 4x4 map (4096 features), 28x28 a 3x3 one. Variants: see study.py.
"""

from __future__ import annotations

from .base import Option, check_probability
from .study import ABC_OPTIONS, ConvSpec, StudyNet

__all__ = ["AlexNetSmall"]


class AlexNetSmall(StudyNet):
    NAME = "alexnet_small"
    OPTIONS = {**ABC_OPTIONS, "dropout": Option(0.5, check_probability)}
    HIDDEN_FEATURES = (512, 512)
    DROPOUT = True

    @classmethod
    def conv_specs(cls, image_size: int) -> tuple[ConvSpec, ...]:
        return (ConvSpec(64, 5, padding=2, pool=True), ConvSpec(192, 5, padding=2, pool=True),
                ConvSpec(384, 3, padding=1), ConvSpec(256, 3, padding=1), ConvSpec(256, 3, padding=1, pool=True))
