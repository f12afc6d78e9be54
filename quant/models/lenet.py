"""LeNet-5 (LeCun et al., 1998) as an ABC-Net study network.

conv 5x5 6 | max-pool 2 | conv 5x5 16 | max-pool 2 | linear 120 | linear 84 | linear classes, with batch-norm
after every layer but the last (LeCun's subsampling layers are max-pools here, as in current practice). The
first conv is zero-padded so its output is 28x28, as LeCun padded the 28x28 MNIST digits to 32x32: a 28x28 or
a 32x32 input both give the classic 16x5x5 = 400 features. Variants: see study.py.
"""

from __future__ import annotations

from .study import ABC_OPTIONS, ConvSpec, StudyNet

__all__ = ["LeNet5"]


class LeNet5(StudyNet):
    NAME = "lenet5"
    OPTIONS = ABC_OPTIONS
    HIDDEN_FEATURES = (120, 84)

    @classmethod
    def conv_specs(cls, image_size: int) -> tuple[ConvSpec, ...]:
        return (ConvSpec(6, 5, padding=max(0, (32 - image_size) // 2), pool=True), ConvSpec(16, 5, pool=True))
