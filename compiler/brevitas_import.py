"""A Brevitas model given as PyTorch (torch's own BatchNorm1d/2d), lowered exactly against PyTorch itself.

The model's structure comes from its QONNX export (Brevitas' `export_qonnx`), lowered as any QONNX graph
(hbnn.compiler.qonnx_import), but each layer's thresholds are found by bisection over PyTorch's own functions on the
exported nodes between the product and the next quantizer: `F.batch_norm` for BatchNormalization (what
BatchNorm1d/2d's eval forward calls), float32 tensor ops for Mul/Add/Sub/Div/Relu, and Brevitas' quantizer
arithmetic (binary sign with sign(0) = +1; x / scale, round half to even, clamp, times scale). So the hardware
matches the PyTorch model, whose batch norm onnxruntime may round differently.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["torch_evaluator"]


def _data_and_constant(node, x, constants):
    """(the data operand, the constant one as a float32 tensor, whether the data comes first)."""
    first, second = node.input[0], node.input[1]
    if second in constants:
        return x, torch.from_numpy(np.asarray(constants[second], dtype=np.float32)), True
    return x, torch.from_numpy(np.asarray(constants[first], dtype=np.float32)), False


def _binary(operation):
    def apply(node, x, constants, attributes):
        x, constant, data_first = _data_and_constant(node, x, constants)
        return operation(x, constant) if data_first else operation(constant, x)
    return apply


def _batch_norm(node, x, constants, attributes):
    scale, bias, mean, var = (torch.from_numpy(np.asarray(constants[name], dtype=np.float32))
                              for name in node.input[1:5])
    return F.batch_norm(x, mean, var, scale, bias, training=False, momentum=0.0, eps=attributes.get("epsilon", 1e-5))


def _bipolar_quant(node, x, constants, attributes):
    scale = torch.from_numpy(np.asarray(constants[node.input[1]], dtype=np.float32))
    return torch.where(x >= 0, 1.0, -1.0) * scale


def _quant(node, x, constants, attributes):
    scale, zero_point, bits = (torch.from_numpy(np.asarray(constants[name], dtype=np.float32))
                               for name in node.input[1:4])
    bits = int(bits.reshape(-1)[0])
    signed, narrow = attributes.get("signed", 1), attributes.get("narrow", 0)
    low = -(1 << (bits - 1)) + (1 if narrow else 0) if signed else 0
    high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - (1 if narrow else 0)
    y = torch.clamp(torch.round(x / scale + zero_point), low, high)
    return (y - zero_point) * scale


def _multithreshold(node, x, constants, attributes):
    thresholds = torch.from_numpy(np.asarray(constants[node.input[1]], dtype=np.float32))
    channels = x.shape[1]
    thresholds = thresholds.expand(channels, -1) if thresholds.shape[0] == 1 else thresholds
    shaped = thresholds.reshape(1, channels, *([1] * (x.dim() - 2)), -1)
    passed = (x.unsqueeze(-1) >= shaped).sum(dim=-1).to(torch.float32)
    return passed * attributes.get("out_scale", 1.0) + attributes.get("out_bias", 0.0)


TORCH_OPS = {
    "BatchNormalization": _batch_norm,
    "Mul": _binary(torch.mul), "Add": _binary(torch.add), "Sub": _binary(torch.sub), "Div": _binary(torch.div),
    "Relu": lambda node, x, constants, attributes: torch.relu(x),
    "BipolarQuant": _bipolar_quant, "Quant": _quant, "MultiThreshold": _multithreshold,
}


def torch_evaluator(constants: dict[str, np.ndarray]):
    """An `evaluate` for hbnn.compiler.qonnx_import.lower_qonnx: the segment's nodes as PyTorch computes them."""
    from .qonnx_read import attributes_of, refuse

    def evaluate(source, quantizer, values: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        with torch.no_grad():
            for node in [*source.nodes, quantizer]:
                if node.op_type not in TORCH_OPS:
                    refuse(node, "no PyTorch function for it here")
                x = TORCH_OPS[node.op_type](node, x, constants, attributes_of(node))
        return x.numpy()
    return evaluate
