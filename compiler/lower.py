"""Lowers a trained PyTorch/Brevitas model to the IR: BinaryDense, BatchNorm and Sign nodes.

Reads integer data the way Brevitas exposes it (`quant_weight()` values and scale) and refuses anything whose
integer meaning it cannot state exactly, naming the module at fault.
"""
from __future__ import annotations

import numpy as np
import torch
from brevitas.nn import QuantIdentity, QuantLinear

from ..quant.layers import ExactBatchNorm1d
from .check import check_graph
from .ir import BatchNorm, BinaryDense, Graph, Sign

__all__ = ["UnsupportedLayerError", "UnsupportedModelError", "lower_model"]

SUPPORTED = "binary-weight QuantLinear without bias, ExactBatchNorm1d, and binary (sign) QuantIdentity"


class UnsupportedModelError(ValueError):
    """The model as a whole has no hardware mapping yet."""


class UnsupportedLayerError(ValueError):
    """A module of the model has no integer-exact lowering; the message names it."""

    def __init__(self, path: str, module: torch.nn.Module, why: str):
        kind = f"{type(module).__module__}.{type(module).__qualname__}"
        super().__init__(f"layer {path!r} ({kind}) is not supported: {why}. hbnn compiles {SUPPORTED}.")
        self.path = path

    @classmethod
    def described(cls, path: str, why: str) -> "UnsupportedLayerError":
        """For a layer known only by its description (the cost model prices plans, not modules)."""
        error = cls.__new__(cls)
        ValueError.__init__(error, f"layer {path!r}: {why}")
        error.path = path
        return error


def _binary_weights(path: str, module: QuantLinear) -> np.ndarray:
    if module.bias is not None:
        raise UnsupportedLayerError(path, module, "it has a bias; binary layers fold offsets into thresholds")
    quant = module.quant_weight()
    if quant is None or float(quant.bit_width) != 1.0:
        raise UnsupportedLayerError(path, module, "its weights are not binary (bit width 1)")
    if quant.scale.numel() != 1 or float(quant.scale) != 1.0:
        raise UnsupportedLayerError(path, module, "its binary weights are scaled; use hbnn.quant.BinaryWeight "
                                                  "(scale 1)")
    values = quant.value.detach().cpu().numpy()
    if not np.isin(values, (-1.0, 1.0)).all():
        raise UnsupportedLayerError(path, module, "its quantized weights are not all -1 or +1")
    return values.astype(np.int8)


_SIGN_PROBE = torch.tensor([[-3.0, -1.0, -0.25, -0.0, 0.0, 0.25, 1.0, 3.0]])


def _is_binary_sign(module: QuantIdentity) -> bool:
    with torch.no_grad():
        out = module(_SIGN_PROBE)
    out = out.value if hasattr(out, "value") else out
    return torch.equal(out, torch.where(_SIGN_PROBE >= 0, 1.0, -1.0))


def lower_model(model: torch.nn.Module) -> Graph:
    layers = getattr(model, "layers", None)
    if not isinstance(layers, torch.nn.Sequential):
        name = model.config().get("name") if callable(getattr(model, "config", None)) else None
        raise UnsupportedModelError(f"hbnn compiles the binary MLP (hbnn.quant.BinaryMLP) so far; "
                                    f"{name or type(model).__qualname__} is trained but has no hardware mapping yet")
    model.eval()
    nodes = []
    width = None
    for index, module in enumerate(layers):
        path = f"layers.{index}"
        if isinstance(module, QuantLinear):
            nodes.append(BinaryDense(name=path, weights=_binary_weights(path, module)))
            width = width if width is not None else module.in_features
        elif isinstance(module, ExactBatchNorm1d):
            nodes.append(BatchNorm(name=path, mean=module.running_mean.detach().numpy(),
                                   var=module.running_var.detach().numpy(), gamma=module.weight.detach().numpy(),
                                   beta=module.bias.detach().numpy(), eps=module.eps))
        elif isinstance(module, torch.nn.BatchNorm1d):
            raise UnsupportedLayerError(path, module, "torch's fused batch-norm kernel cannot be reproduced bit "
                                                      "for bit; use hbnn.quant.ExactBatchNorm1d")
        elif isinstance(module, QuantIdentity):
            if not _is_binary_sign(module):
                raise UnsupportedLayerError(path, module, "its activation quantizer is not a binary sign")
            nodes.append(Sign(name=path))
        else:
            raise UnsupportedLayerError(path, module, "no integer lowering is known for this module type")
    if width is None:
        raise ValueError("the model has no QuantLinear layer to compile")
    graph = Graph(input_width=width, nodes=tuple(nodes))
    check_graph(graph)
    return graph
