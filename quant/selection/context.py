"""What every selection method works from: a trained full-precision network and a few labelled training images.

`SelectionContext.model_with(layers)` rebuilds the network with some layers at other precisions and the trained
weights copied over (conv/linear weights and batch-norm are stored the same way at every precision), so that a
method can ask "what does binarizing these layers do to the loss" without retraining. `loss(model)` is the mean
cross-entropy on the calibration images with batch-norm using each batch's own statistics: a freshly binarized
layer changes the statistics its batch-norm sees, and running statistics gathered at full precision would
measure that mismatch rather than the binarization (the buffers are restored afterwards).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..precision import BINARY, Precision

__all__ = ["SelectionContext", "batch_statistics", "model_at", "transfer_weights"]


def transfer_weights(source: nn.Module, target: nn.Module) -> list[str]:
    """Copy every state entry of `source` into `target` where name and shape match; return the target entries
    left as they were (e.g. ABC-Net activation shifts, which a full-precision layer does not have)."""
    source_state = source.state_dict()
    target_state = target.state_dict()
    # A Brevitas activation quantizer's collected scale (…scaling_impl.value) is not in a fresh network's
    # state_dict until its first training step, but loads into it: offer every entry whose shape does not clash,
    # and let load_state_dict say which it took.
    offered = {key: value for key, value in source_state.items()
               if key not in target_state or target_state[key].shape == value.shape}
    unexpected = set(target.load_state_dict(offered, strict=False).unexpected_keys)
    loaded = set(offered) - unexpected
    return [key for key in target.state_dict() if key not in loaded]


def model_at(model: nn.Module, layers: Mapping[str, Precision]) -> nn.Module:
    """The zoo network `model` rebuilt at `layers` ({name: Precision}, every layer) with its weights copied in."""
    from ..models import build_model

    config = model.config()
    overrides = {name: precision.name for name, precision in layers.items()}
    config["options"] = {**config["options"], "layer_precisions": overrides}
    rebuilt = build_model(**{**config, "precision": "fp"})
    transfer_weights(model, rebuilt)
    return rebuilt.eval()


@contextlib.contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """Eval mode everywhere (no dropout) except batch-norm, which normalizes with the batch's statistics;
    every buffer (running statistics) and each module's training flag is restored on exit."""
    modes = [(module, module.training) for module in model.modules()]
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    model.eval()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.train()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])


@dataclass
class SelectionContext:
    """A trained network at full precision and the labelled images selection may look at.

    model: a zoo model (ZooModel) whose layers are all at full precision, already trained;
    images, labels: calibration images (N, C, H, W), already preprocessed as training saw them, and labels;
    keep: layers that stay at full precision whatever the method says (default: the first and the last layer,
          as MixBin and Hybrid Binary Networks keep them).
    """

    model: nn.Module
    images: torch.Tensor
    labels: torch.Tensor
    batch_size: int = 256
    keep: tuple[str, ...] | None = None
    layers: list[str] = field(init=False)

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels) or len(self.images) < 2:
            raise ValueError(f"selection needs at least 2 labelled calibration images, got {len(self.images)} "
                             f"images and {len(self.labels)} labels")
        self.layers = list(self.model.binarizable_layers())
        if self.keep is None:
            self.keep = (self.layers[0], self.layers[-1])
        unknown = [name for name in self.keep if name not in self.layers]
        if unknown:
            raise ValueError(f"keep names unknown layer {unknown[0]!r}; layers: {', '.join(self.layers)}")
        self.model.eval()

    @property
    def full_precision(self) -> dict[str, Precision]:
        """The starting plan: every layer as the trained model has it."""
        return {name: self.model.precision_of(name) for name in self.layers}

    @property
    def candidates(self) -> list[str]:
        """Layers a method may binarize, in forward order."""
        return [name for name in self.layers if name not in self.keep]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def plan_with(self, binarized: Iterable[str], precision: Precision = BINARY) -> dict[str, Precision]:
        """The full-precision plan with the given layers at `precision` (fully binarized by default)."""
        layers = self.full_precision
        for name in binarized:
            if name not in layers:
                raise ValueError(f"{name!r} is not a layer of {self.model.NAME}")
            layers[name] = precision
        return layers

    def model_with(self, layers: Mapping[str, Precision]) -> nn.Module:
        """The network rebuilt at `layers` ({name: Precision}, every layer) with the trained weights copied in."""
        return model_at(self.model, layers)

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.images), self.batch_size):
            yield self.images[start:start + self.batch_size], self.labels[start:start + self.batch_size]

    def loss(self, model: nn.Module | None = None) -> float:
        """Mean cross-entropy of `model` (default: the trained full-precision one) on the calibration images."""
        model = self.model if model is None else model
        total = 0.0
        with batch_statistics(model), torch.no_grad():
            for images, labels in self.batches():
                total += float(F.cross_entropy(model(images), labels, reduction="sum"))
        return total / len(self.images)

    def loss_with(self, binarized: Iterable[str], precision: Precision = BINARY) -> float:
        return self.loss(self.model_with(self.plan_with(binarized, precision)))
