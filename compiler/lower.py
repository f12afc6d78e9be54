"""Lowers a trained model to the IR by graph capture (torch.fx, the contract layers as leaves).

What runs before the first quantized layer (flattening, centering, normalization) is the host's preprocessing: the
graph's input is the first layer's input codes, named `<layer>.input_quant`. Each contract layer (quant/CONTRACT.md)
becomes its input Quantize, a Dense on integer codes (`quantized_weight_codes()`) and a ChannelOps with its float32
op sequence; batch norms and ReLUs after it become ChannelOps too. Anything else is refused with an error that names
the first module (or operation) without a mapping and why.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.fx
from torch import nn

from ..quant.abc_layers import AbcConv2d, AbcLinear
from ..quant.binary_layers import BinaryConv2d, BinaryLinear
from ..quant.float_layers import FloatConv2d, FloatLinear
from ..quant.input_codes import input_codes
from ..quant.int8_layers import Int8Conv2d, Int8Linear
from ..quant.layers import ExactBatchNorm1d, ExactBatchNorm2d
from ..quant.pooling import ExactAvgPool2d
from ..quant.ternary_layers import TernaryConv2d, TernaryLinear
from .check import check_graph
from .ir import Add, BatchNorm, Bipolar, ChannelOps, Dense, Graph, Int, Multiply, Quantize, Relu, Scale, Tensor
from .passes.merge_channel_ops import merge_channel_ops
from .passes.output_integers import output_integers

__all__ = ["INPUT_SUFFIX", "UnsupportedLayerError", "UnsupportedModelError", "lower_model", "input_layer_of",
           "network_input_codes"]

INPUT_SUFFIX = ".input_quant"  # the graph input `fc1.input_quant` is the codes fc1's input quantizer makes
SUPPORTED = ("int8, weight-binary and binary linear layers (hbnn.quant.precision.linear), ExactBatchNorm1d/2d, "
             "ReLU, Identity, Dropout and flattening")
CONTRACT_LAYERS = (Int8Linear, BinaryLinear, Int8Conv2d, BinaryConv2d, TernaryConv2d, TernaryLinear, AbcConv2d,
                   AbcLinear, FloatConv2d, FloatLinear)
PASS_THROUGH = (nn.Identity, nn.Dropout)
FLATTENING = ("flatten", "view", "reshape")


class UnsupportedModelError(ValueError):
    """The model as a whole has no hardware mapping (e.g. it cannot be captured)."""


class UnsupportedLayerError(ValueError):
    """A module of the model has no integer-exact lowering; the message names it."""

    def __init__(self, path: str, module: torch.nn.Module | None, why: str):
        kind = f" ({type(module).__module__}.{type(module).__qualname__})" if module is not None else ""
        super().__init__(f"layer {path!r}{kind} has no hardware mapping: {why}. hbnn compiles {SUPPORTED}.")
        self.path = path

    @classmethod
    def described(cls, path: str, why: str) -> "UnsupportedLayerError":
        """For a layer known only by its description (the cost model prices plans, not modules)."""
        error = cls.__new__(cls)
        ValueError.__init__(error, f"layer {path!r}: {why}")
        error.path = path
        return error


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        if isinstance(module, CONTRACT_LAYERS + (ExactBatchNorm1d, ExactBatchNorm2d, ExactAvgPool2d)):
            return True
        if type(module).__module__.startswith("brevitas"):
            return True  # refused below with a reason, not traced into
        return super().is_leaf_module(module, qualified_name)


def _capture(model: nn.Module) -> torch.fx.Graph:
    try:
        return _Tracer().trace(model)
    except Exception as error:  # fx raises several types for data-dependent control flow and unsupported ops
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsupportedModelError(f"{type(model).__qualname__} cannot be captured as a graph (torch.fx: "
                                    f"{first})") from error


def _power_of_two_exponent(path: str, module, what: str, scale: float) -> int:
    mantissa, exponent = math.frexp(scale)
    if mantissa != 0.5:
        raise UnsupportedLayerError(path, module, f"its {what} scale {scale!r} is not a power of two")
    return exponent - 1


def _refusal(path: str, module: nn.Module) -> str | None:
    """Why a contract layer has no mapping yet, or None when it has one."""
    if isinstance(module, (FloatConv2d, FloatLinear)):
        return "float layers have no integer form; train it at int8 (--full-precision int8)"
    if isinstance(module, (TernaryConv2d, TernaryLinear)):
        return "ternary layers are not mapped to hardware yet"
    if isinstance(module, (AbcConv2d, AbcLinear)):
        return "ABC-Net layers are not mapped to hardware yet"
    if isinstance(module, nn.Conv2d):
        return "convolutions are not mapped to hardware yet"
    return None


def _input_quantizer(path: str, module: nn.Module) -> tuple[str, int]:
    """(Quantize kind, exponent) of the layer's own input quantizer."""
    kind = module.precision.inputs
    if kind == "binary":
        return "sign", 0
    probe = torch.zeros(1, module.in_features)
    _, scale = input_codes("int8", module.input_quant, probe)
    return "int8", _power_of_two_exponent(path, module, "input", float(scale))


def _input_type(kind: str, exponent: int) -> Bipolar | Int:
    return Bipolar() if kind == "sign" else Int(8, True, exponent)


def _dense_and_ops(path: str, module: nn.Module, input_value: str) -> list:
    """Dense on the layer's codes, then the layer's own float32 ops (the contract's eval op sequence)."""
    codes, scale = module.quantized_weight_codes()
    codes = codes.detach().cpu().numpy().astype(np.int64)
    ops = [Scale()]
    bias = None
    if isinstance(module, Int8Linear):
        weight_kind = "int8"
        weight_exponent = _power_of_two_exponent(path, module, "weight", float(scale))
        if module.bias is not None:
            probe = torch.zeros(1, module.in_features)
            bias = module._bias_codes(probe).detach().cpu().numpy().astype(np.int64)
    else:
        weight_kind, weight_exponent = "binary", 0
        if module.precision.weight_scale:
            ops.append(Multiply(scale.detach().cpu().numpy()))
        if module.bias is not None:
            ops.append(Add(module.bias.detach().cpu().numpy()))
    dense = Dense(name=path, inputs=(input_value,), weights=codes, weight_kind=weight_kind,
                  weight_exponent=weight_exponent, bias=bias)
    return [dense, ChannelOps(name=f"{path}.out", inputs=(path,), ops=tuple(ops))]


def _batchnorm(path: str, module) -> BatchNorm:
    return BatchNorm(mean=module.running_mean.detach().cpu().numpy(), var=module.running_var.detach().cpu().numpy(),
                     gamma=module.weight.detach().cpu().numpy(), beta=module.bias.detach().cpu().numpy(),
                     eps=module.eps)


class _Lowering:
    """Walks the captured graph. A captured value is either host data (before the first quantized layer) or the
    name of an IR value."""

    HOST = object()

    def __init__(self, model: nn.Module):
        self.model = model
        self.modules = dict(model.named_modules())
        self.nodes: list = []
        self.inputs: list[tuple[str, Tensor]] = []
        self.values: dict[torch.fx.Node, object] = {}
        self.float_values: set[str] = set()  # IR values that are float32 (outputs of ChannelOps)

    def run(self) -> Graph:
        outputs = []
        for fx_node in _capture(self.model).nodes:
            if fx_node.op == "placeholder":
                self.values[fx_node] = self.HOST
            elif fx_node.op == "output":
                outputs = self._outputs(fx_node)
            elif fx_node.op == "call_module":
                self.values[fx_node] = self._module(fx_node)
            elif fx_node.op in ("call_function", "call_method"):
                self.values[fx_node] = self._operation(fx_node)
            elif fx_node.op == "get_attr":
                self.values[fx_node] = self._refuse_op(fx_node, "it reads a parameter directly")
        if not self.inputs:
            raise UnsupportedModelError(f"{type(self.model).__qualname__} has no quantized layer to compile")
        return Graph(tuple(self.inputs), tuple(self.nodes), tuple(outputs))

    def _argument(self, fx_node: torch.fx.Node):
        tensors = [arg for arg in fx_node.args if isinstance(arg, torch.fx.Node)]
        return [self.values[arg] for arg in tensors]

    def _module(self, fx_node: torch.fx.Node):
        path = str(fx_node.target)
        module = self.modules[path]
        (source,) = self._argument(fx_node) or [None]
        if isinstance(module, CONTRACT_LAYERS):
            why = _refusal(path, module)
            if why is not None:
                raise UnsupportedLayerError(path, module, why)
            kind, exponent = _input_quantizer(path, module)
            if source is self.HOST:
                if self.inputs:
                    raise UnsupportedLayerError(path, module, f"it reads the network input too, as "
                                                              f"{self.inputs[0][0]!r} does; one input layer is mapped")
                value = path + INPUT_SUFFIX
                self.inputs.append((value, Tensor(_input_type(kind, exponent), (module.in_features, 1, 1))))
            else:
                self._require_float(path, module, source)
                value = path + INPUT_SUFFIX
                self.nodes.append(Quantize(name=value, inputs=(source,), kind=kind, exponent=exponent))
            new = _dense_and_ops(path, module, value)
            self.nodes += new
            self.float_values.add(new[-1].name)
            return new[-1].name
        if source is self.HOST:
            return self.HOST  # host preprocessing in front of the first quantized layer
        if isinstance(module, (ExactBatchNorm1d, ExactBatchNorm2d)):
            return self._channel_op(path, module, source, _batchnorm(path, module))
        if isinstance(module, nn.ReLU):
            return self._channel_op(path, module, source, Relu())
        if isinstance(module, PASS_THROUGH):
            return source
        if isinstance(module, nn.Flatten):
            return source  # a dense layer's values are (C, 1, 1) already; convolutions come with their own rule
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise UnsupportedLayerError(path, module, "torch's fused batch-norm kernel cannot be reproduced bit for "
                                                      "bit; use hbnn.quant.ExactBatchNorm1d/2d")
        if type(module).__module__.startswith("brevitas"):
            raise UnsupportedLayerError(path, module, "it is not a contract layer: build layers with "
                                                      "hbnn.quant.precision.linear/conv2d, which quantize their own "
                                                      "inputs")
        raise UnsupportedLayerError(path, module, "no integer lowering is known for this module type")

    def _require_float(self, path, module, source) -> None:
        if source not in self.float_values:
            raise UnsupportedLayerError(path, module, f"its input {source!r} is not the float32 output of a layer")

    def _channel_op(self, path, module, source, op):
        self._require_float(path, module, source)
        self.nodes.append(ChannelOps(name=path, inputs=(source,), ops=(op,)))
        self.float_values.add(path)
        return path

    def _operation(self, fx_node: torch.fx.Node):
        sources = self._argument(fx_node)
        if all(source is self.HOST for source in sources):
            return self.HOST
        target = fx_node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        if name in FLATTENING or target is torch.flatten:
            return sources[0]
        if target in (torch.relu, torch.nn.functional.relu):
            return self._channel_op(fx_node.name, None, sources[0], Relu())
        return self._refuse_op(fx_node, f"the operation {name!r} on layer outputs has no integer lowering")

    def _refuse_op(self, fx_node, why):
        raise UnsupportedLayerError(fx_node.name, None, why)

    def _outputs(self, fx_node: torch.fx.Node) -> list[str]:
        result = fx_node.args[0]
        results = list(result) if isinstance(result, (tuple, list)) else [result]
        names = []
        for item in results:
            value = self.values.get(item) if isinstance(item, torch.fx.Node) else None
            if not isinstance(value, str):
                raise UnsupportedModelError("the model's output is not computed by a quantized layer")
            names.append(value)
        return names


def lower_model(model: nn.Module) -> Graph:
    """The model (eval mode) as a checked graph whose outputs are integer codes times a power of two."""
    model.eval()
    graph = _Lowering(model).run()
    graph = merge_channel_ops(output_integers(graph))
    check_graph(graph)
    return graph


def input_layer_of(graph: Graph) -> str:
    """The module path of the layer whose input quantizer makes the graph's input."""
    (name, _), = graph.inputs
    return name.removesuffix(INPUT_SUFFIX)


def network_input_codes(model: nn.Module, layer: str, x: torch.Tensor) -> np.ndarray:
    """The codes `layer`'s input quantizer makes when the model runs on x: the accelerator's input stream."""
    module = model.get_submodule(layer)
    captured = []
    handle = module.register_forward_pre_hook(lambda _, args: captured.append(args[0]))
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    codes, _ = input_codes(module.precision.inputs, module.input_quant, captured[0])
    return codes.cpu().numpy().astype(np.int64)
