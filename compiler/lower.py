"""Lowers a trained model to the IR by graph capture (torch.fx, the contract layers as leaves).

What runs before the first quantized layer (flattening, centering, normalization) is the host's preprocessing: the
graph's input is the first layer's input codes, named `<layer>.input_quant`. Each contract layer (quant/CONTRACT.md)
becomes its input Quantize, a Dense on integer codes (`quantized_weight_codes()`) and a ChannelOps with its float32
op sequence; a convolution puts a SlidingWindow (with the layer's pad code) in front of its Dense. Batch norms and
ReLUs after a layer become ChannelOps too, max pools and flattens Pool and Flatten nodes, an average pool a sum Pool
on integer codes followed by Scale(divisor=area). A residual sum (hbnn.quant.residual.QuantAdd) becomes its two
addends' int8 Quantize nodes (one shared exponent), an ElementwiseAdd of the codes and a Scale back to float32,
exact: the sum of two int8 codes times a power of two is a float32. Shapes come from running the model once on zeros
(torch.fx's ShapeProp). Anything else is refused with an error that names the first module (or operation) without a
mapping and why.
"""
from __future__ import annotations

import math
import operator

import numpy as np
import torch
import torch.fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from ..quant.abc_layers import AbcConv2d, AbcLinear
from ..quant.activation_quant import Int8Activation
from ..quant.binary_layers import BinaryConv2d, BinaryLinear
from ..quant.float_layers import FloatConv2d, FloatLinear
from ..quant.input_codes import input_codes
from ..quant.int8_layers import Int8Conv2d, Int8Linear
from ..quant.layers import ExactBatchNorm1d, ExactBatchNorm2d
from ..quant.pooling import ExactAvgPool2d
from ..quant.residual import QuantAdd, ZeroPadShortcut
from ..quant.ternary_layers import TernaryConv2d, TernaryLinear
from .check import check_graph
from .wire_order import weight_columns
from .ir import (Add, BatchNorm, Bipolar, ChannelOps, ChannelPad, Dense, ElementwiseAdd, Flatten, Graph, Int, Multiply,
                 Pool, Quantize, Relu, Scale, SlidingWindow, Tensor, abc_ranks)
from .passes.merge_channel_ops import merge_channel_ops
from .passes.output_integers import output_integers

__all__ = ["INPUT_SUFFIX", "UnsupportedLayerError", "UnsupportedModelError", "lower_model", "input_layer_of",
           "network_input_codes"]

INPUT_SUFFIX = ".input_quant"  # the graph input `fc1.input_quant` is the codes fc1's input quantizer makes
SUPPORTED = ("int8, weight-binary, binary, ternary and ABC-Net linear and conv layers (hbnn.quant.precision.linear/conv2d), "
             "ExactBatchNorm1d/2d, ReLU, MaxPool2d, ExactAvgPool2d, Int8Activation, QuantAdd (residual sums), "
             "ZeroPadShortcut, Identity, Dropout and flattening")
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
        if isinstance(module, CONTRACT_LAYERS + (ExactBatchNorm1d, ExactBatchNorm2d, ExactAvgPool2d, Int8Activation,
                                                 QuantAdd, ZeroPadShortcut)):
            return True
        if type(module).__module__.startswith("brevitas"):
            return True  # refused below with a reason, not traced into
        return super().is_leaf_module(module, qualified_name)


def _capture(model: nn.Module, input_shape: tuple[int, ...]) -> torch.fx.Graph:
    """The model's graph, every node annotated with its output shape (node.meta["tensor_meta"])."""
    try:
        graph = _Tracer().trace(model)
    except Exception as error:  # fx raises several types for data-dependent control flow and unsupported ops
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsupportedModelError(f"{type(model).__qualname__} cannot be captured as a graph (torch.fx: "
                                    f"{first})") from error
    module = torch.fx.GraphModule(model, graph)
    try:
        with torch.no_grad():
            ShapeProp(module).propagate(torch.zeros(1, *input_shape))
    except Exception as error:
        raise UnsupportedModelError(f"{type(model).__qualname__} does not run on an input of shape "
                                    f"{tuple(input_shape)}: {error}") from error
    return graph


def _input_shape(model: nn.Module) -> tuple[int, ...]:
    """A zoo model's (channels, size, size); a plain stack's first linear layer's (in_features,)."""
    if hasattr(model, "in_channels") and hasattr(model, "image_size"):
        return (model.in_channels, model.image_size, model.image_size)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            return (module.in_features,)
        if isinstance(module, nn.Conv2d):
            break
    raise UnsupportedModelError(f"{type(model).__qualname__} does not say its input shape; pass input_shape")


def _shape(fx_node: torch.fx.Node) -> tuple[int, int, int]:
    """An fx value's shape as the IR's (C, H, W): (N, C, H, W) or (N, F) -> (F, 1, 1)."""
    shape = tuple(fx_node.meta["tensor_meta"].shape)[1:]
    return shape if len(shape) == 3 else (math.prod(shape), 1, 1)


def _power_of_two_exponent(path: str, module, what: str, scale: float) -> int:
    mantissa, exponent = math.frexp(scale)
    if mantissa != 0.5:
        raise UnsupportedLayerError(path, module, f"its {what} scale {scale!r} is not a power of two")
    return exponent - 1


def _refusal(path: str, module: nn.Module) -> str | None:
    """Why a contract layer has no mapping yet, or None when it has one."""
    if isinstance(module, (FloatConv2d, FloatLinear)):
        return "float layers have no integer form; train it at int8 (--full-precision int8)"
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or _square(module.dilation) != 1:
            return "grouped and dilated convolutions have no mapping"
        if module.padding_mode != "zeros" or any(_square(value) is None
                                                 for value in (module.kernel_size, module.stride, module.padding)):
            return "only square kernels, strides and paddings (padding_mode 'zeros') are mapped"
    return None


def _square(value) -> int | None:
    """A torch size argument as one int, or None when its two entries differ."""
    if isinstance(value, int):
        return value
    return value[0] if len(set(value)) == 1 else None


def _input_quantizer(path: str, module: nn.Module) -> tuple[str, int]:
    """(Quantize kind, exponent) of the layer's own input quantizer."""
    kind = module.precision.inputs
    if kind == "binary":
        return "sign", 0
    if kind == "abc":
        return "abc", 0
    _, scale = input_codes("int8", module.input_quant, _probe(module))
    return "int8", _power_of_two_exponent(path, module, "input", float(scale))


def _probe(module: nn.Module) -> torch.Tensor:
    """A zero input of the layer's width (the quantizers' scales in eval mode do not depend on it)."""
    if isinstance(module, nn.Conv2d):
        return torch.zeros(1, module.in_channels, 1, 1)
    return torch.zeros(1, module.in_features)


def _input_type(kind: str, exponent: int) -> Bipolar | Int:
    return Bipolar() if kind == "sign" else Int(8, True, exponent)


def _abc_dense_and_ops(path: str, module: nn.Module, input_value: str,
                       flattened: tuple[int, int, int] | None) -> list:
    """ABC-Net: M weight planes, the fixed-point coefficient codes q (M, N) whose scale 2^e is the Dense's exponent,
    the ranks of the activation bases; then f32(acc * 2^e) and the bias (quant/CONTRACT.md)."""
    planes, alpha = module.quantized_weight_codes()
    coefficients, exponent = module.coefficient_codes(alpha)
    planes = np.stack([weight_columns(plane.detach().cpu().numpy().astype(np.int64), flattened) for plane in planes])
    ops = [Scale()]
    if module.bias is not None:
        ops.append(Add(module.bias.detach().cpu().numpy()))
    dense = Dense(name=path, inputs=(input_value,), weights=planes, weight_kind="abc", weight_exponent=exponent,
                  coefficients=coefficients.numpy(), ranks=abc_ranks(module.activation_shifts.detach().numpy()))
    return [dense, ChannelOps(name=f"{path}.out", inputs=(path,), ops=tuple(ops))]


def _dense_and_ops(path: str, module: nn.Module, input_value: str,
                   flattened: tuple[int, int, int] | None = None) -> list:
    """Dense on the layer's codes, then the layer's own float32 ops (the contract's eval op sequence)."""
    if isinstance(module, (AbcConv2d, AbcLinear)):
        return _abc_dense_and_ops(path, module, input_value, flattened)
    codes, scale = module.quantized_weight_codes()
    codes = weight_columns(codes.detach().cpu().numpy().astype(np.int64), flattened)
    ops = [Scale()]
    bias = None
    if isinstance(module, (Int8Linear, Int8Conv2d)):
        weight_kind = "int8"
        weight_exponent = _power_of_two_exponent(path, module, "weight", float(scale))
        if module.bias is not None:
            bias = module._bias_codes(_probe(module)).detach().cpu().numpy().astype(np.int64)
    else:  # binary and ternary weights: codes with no scale of their own, TWN's / XNOR-Net's alpha after
        weight_kind, weight_exponent = "ternary" if isinstance(module, (TernaryConv2d, TernaryLinear)) else "binary", 0
        if module.precision.weight_scale:
            ops.append(Multiply(scale.detach().cpu().numpy()))
        if module.bias is not None:
            ops.append(Add(module.bias.detach().cpu().numpy()))
    dense = Dense(name=path, inputs=(input_value,), weights=codes, weight_kind=weight_kind,
                  weight_exponent=weight_exponent, bias=bias)
    return [dense, ChannelOps(name=f"{path}.out", inputs=(path,), ops=tuple(ops))]


def _pad_level(module: nn.Module) -> int:
    """The pad code on the wire: the layer's input_pad_code, or for ABC-Net (each base padded with +1) the level N,
    at which every base is +1."""
    if isinstance(module, (AbcConv2d, AbcLinear)):
        return module.precision.act_bases
    return int(module.input_pad_code)


def _batchnorm(path: str, module) -> BatchNorm:
    return BatchNorm(mean=module.running_mean.detach().cpu().numpy(), var=module.running_var.detach().cpu().numpy(),
                     gamma=module.weight.detach().cpu().numpy(), beta=module.bias.detach().cpu().numpy(),
                     eps=module.eps)


class _Lowering:
    """Walks the captured graph. A captured value is either host data (before the first quantized layer) or the
    name of an IR value."""

    HOST = object()

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...]):
        self.model = model
        self.input_shape = input_shape
        self.modules = dict(model.named_modules())
        self.nodes: list = []
        self.inputs: list[tuple[str, Tensor]] = []
        self.values: dict[torch.fx.Node, object] = {}
        self.float_values: set[str] = set()  # IR values that are float32 (outputs of ChannelOps)
        self.code_values: set[str] = set()  # IR values that are integer codes a pool may sum
        self.flattened: dict[str, tuple[int, int, int]] = {}  # Flatten outputs: the (C, H, W) they flatten

    def run(self) -> Graph:
        outputs = []
        for fx_node in _capture(self.model, self.input_shape).nodes:
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
        return Graph(tuple(self.inputs), tuple(_live(self.nodes, outputs)), tuple(outputs))

    def _argument(self, fx_node: torch.fx.Node):
        tensors = [arg for arg in fx_node.args if isinstance(arg, torch.fx.Node)]
        return [self.values[arg] for arg in tensors]

    def _module(self, fx_node: torch.fx.Node):
        path = str(fx_node.target)
        module = self.modules[path]
        if isinstance(module, QuantAdd):
            return self._residual_add(path, module, self._argument(fx_node))
        (source,) = self._argument(fx_node) or [None]
        if isinstance(module, CONTRACT_LAYERS):
            why = _refusal(path, module)
            if why is not None:
                raise UnsupportedLayerError(path, module, why)
            kind, exponent = _input_quantizer(path, module)
            value = path + INPUT_SUFFIX
            if source is self.HOST and kind == "abc":
                raise UnsupportedLayerError(path, module, "an ABC-Net layer reading the network input is not mapped "
                                                          "(its activation bases would be the host's); keep the "
                                                          "first layer int8, as the zoo's ABC-Net models do")
            if source is self.HOST:
                if self.inputs:
                    raise UnsupportedLayerError(path, module, f"it reads the network input too, as "
                                                              f"{self.inputs[0][0]!r} does; one input layer is mapped")
                shape = _shape(fx_node.args[0])
                self.inputs.append((value, Tensor(_input_type(kind, exponent), shape)))
            else:
                self._require_float(path, module, source)
                shifts = module.activation_shifts.detach().cpu().numpy() if kind == "abc" else None
                self.nodes.append(Quantize(name=value, inputs=(source,), kind=kind, exponent=exponent, shifts=shifts))
            if isinstance(module, nn.Conv2d):
                kernel, stride, padding = (_square(v) for v in (module.kernel_size, module.stride, module.padding))
                if (kernel, stride, padding) != (1, 1, 0):
                    self.nodes.append(SlidingWindow(name=f"{path}.window", inputs=(value,), kernel=kernel,
                                                    stride=stride, padding=padding,
                                                    pad_code=_pad_level(module)))
                    value = f"{path}.window"
                flattened = None
            else:
                flattened = self._flattened_input(path, module, fx_node, source)
            new = _dense_and_ops(path, module, value, flattened)
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
            return self._flatten(path, fx_node, source)
        if isinstance(module, ZeroPadShortcut):
            return self._zero_pad_shortcut(path, module, source)
        if isinstance(module, nn.MaxPool2d):
            return self._max_pool(path, module, source)
        if isinstance(module, ExactAvgPool2d):
            return self._average_pool(path, module, source)
        if isinstance(module, Int8Activation):
            self._require_float(path, module, source)
            _, scale = module.codes(torch.zeros(1))
            exponent = _power_of_two_exponent(path, module, "activation", float(scale))
            self.nodes.append(Quantize(name=path, inputs=(source,), kind="int8", exponent=exponent))
            self.code_values.add(path)
            return path
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise UnsupportedLayerError(path, module, "torch's fused batch-norm kernel cannot be reproduced bit for "
                                                      "bit; use hbnn.quant.ExactBatchNorm1d/2d")
        if type(module).__module__.startswith("brevitas"):
            raise UnsupportedLayerError(path, module, "it is not a contract layer: build layers with "
                                                      "hbnn.quant.precision.linear/conv2d, which quantize their own "
                                                      "inputs")
        raise UnsupportedLayerError(path, module, "no integer lowering is known for this module type")

    def _residual_add(self, path, module, sources):
        """quant(a) + quant(b), one shared int8 quantizer: the codes' integer sum, then its exact float32 value."""
        if len(sources) != 2 or self.HOST in sources:
            raise UnsupportedLayerError(path, module, "it adds two layer outputs; the network input is not one")
        _, scale = module.quant.codes(torch.zeros(1))
        exponent = _power_of_two_exponent(path, module, "shared addend", float(scale))
        addends = []
        for suffix, source in zip(("a", "b"), sources):
            self._require_float(path, module, source)
            self.nodes.append(Quantize(name=f"{path}.{suffix}", inputs=(source,), kind="int8", exponent=exponent))
            addends.append(f"{path}.{suffix}")
        self.nodes.append(ElementwiseAdd(name=f"{path}.sum", inputs=tuple(addends)))
        self.nodes.append(ChannelOps(name=path, inputs=(f"{path}.sum",), ops=(Scale(),)))
        self.float_values.add(path)
        return path

    def _zero_pad_shortcut(self, path, module, source):
        """Every stride-th pixel (a 1x1 max pool of that stride), then the zero channels (a ChannelPad of 0.0): on
        float32 values, so that the add's quantizer moves in front of both (quantize_early)."""
        self._require_float(path, module, source)
        if module.stride != 1:
            self.nodes.append(Pool(name=f"{path}.subsample", inputs=(source,), kind="max", kernel=1,
                                   stride=module.stride))
            source = f"{path}.subsample"
        self.nodes.append(ChannelPad(name=path, inputs=(source,), before=module.pad_before, after=module.pad_after))
        self.float_values.add(path)
        return path

    def _flattened_input(self, path, module, fx_node, source) -> tuple[int, int, int] | None:
        """The (C, H, W) map a linear layer reads flattened, or None when it reads a vector."""
        if source in self.flattened:
            return self.flattened[source]
        shape = _shape(fx_node.args[0])
        if shape[1:] != (1, 1) or len(fx_node.args[0].meta["tensor_meta"].shape) != 2:
            raise UnsupportedLayerError(path, module, f"it reads a {tuple(fx_node.args[0].meta['tensor_meta'].shape)}"
                                                      " tensor; a linear layer reads flattened values")
        return None

    def _flatten(self, path, fx_node, source):
        shape = _shape(fx_node.args[0])
        if shape[1:] == (1, 1):
            return source  # (C, 1, 1) is already flat, in the same order
        name = path if isinstance(path, str) else fx_node.name
        self.nodes.append(Flatten(name=name, inputs=(source,)))
        self.flattened[name] = shape
        if source in self.float_values:
            self.float_values.add(name)
        return name

    def _max_pool(self, path, module, source):
        kernel, stride, padding, dilation = (_square(value) for value in (module.kernel_size, module.stride,
                                                                          module.padding, module.dilation))
        if None in (kernel, stride, padding) or dilation != 1 or module.ceil_mode or module.return_indices:
            raise UnsupportedLayerError(path, module, "only square max pools without dilation, ceil mode or indices "
                                                      "are mapped")
        self.nodes.append(Pool(name=path, inputs=(source,), kind="max", kernel=kernel, stride=stride,
                               padding=padding))
        (self.float_values if source in self.float_values else self.code_values).add(path)
        return path

    def _average_pool(self, path, module, source):
        """An average pool is a sum of integer codes, then one float64 division by the area (ExactAvgPool2d): on a
        layer's exact conversion to float32 (ChannelOps of one Scale, below 2^24) or on quantized codes."""
        kernel, stride = module.kernel_size, module.stride or module.kernel_size
        if not (isinstance(kernel, int) and isinstance(stride, int)):
            raise UnsupportedLayerError(path, module, "only square average pools are mapped")
        integers = source if source in self.code_values else self._exact_integers(path, module, source)
        pooled = f"{path}.sum"
        self.nodes.append(Pool(name=pooled, inputs=(integers,), kind="sum", kernel=kernel, stride=stride))
        self.nodes.append(ChannelOps(name=path, inputs=(pooled,), ops=(Scale(divisor=module.area),)))
        self.float_values.add(path)
        return path

    def _exact_integers(self, path, module, source) -> str:
        producer = next((node for node in self.nodes if node.name == source), None)
        if not (isinstance(producer, ChannelOps) and len(producer.ops) == 1 and isinstance(producer.ops[0], Scale)
                and producer.ops[0].divisor == 1):
            raise UnsupportedLayerError(path, module, f"it averages the float values {source!r}, whose sum has no "
                                                      "integer form; quantize them first (hbnn.quant.Int8Activation)")
        types = check_graph(Graph(tuple(self.inputs), tuple(self.nodes), (producer.inputs[0],)))
        dtype = types[producer.inputs[0]].dtype
        if max(-dtype.low, dtype.high) >= 1 << 24:
            raise UnsupportedLayerError(path, module, f"its input {producer.inputs[0]!r} ({dtype.width}-bit) may "
                                                      "round when converted to float32, so its sum would differ from "
                                                      "the integers'")
        return producer.inputs[0]

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
            return self._flatten(fx_node.name, fx_node, sources[0])
        if target in (torch.relu, torch.nn.functional.relu):
            return self._channel_op(fx_node.name, None, sources[0], Relu())
        if target in (operator.add, torch.add) or name in ("add", "add_"):
            return self._refuse_op(fx_node, "a float residual sum has no integer form; add through "
                                            "hbnn.quant.residual.QuantAdd (both addends on one int8 scale)")
        return self._refuse_op(fx_node, f"the operation {name!r} on layer outputs has no integer lowering")

    def _refuse_op(self, fx_node, why):
        """Refused, named by the module whose forward() runs the operation (e.g. `block1.add`)."""
        stack = fx_node.meta.get("nn_module_stack") or {}
        owner = next(reversed(stack), "") if stack else ""
        raise UnsupportedLayerError(f"{owner}.{fx_node.name}" if owner else fx_node.name, None, why)

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


def _live(nodes: list, outputs: list[str]) -> list:
    """The nodes an output depends on (an average pool reads a layer's integers, leaving its float32 copy unread)."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if node.name in needed:
            kept.append(node)
            needed.update(node.inputs)
    return kept[::-1]


def lower_model(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> Graph:
    """The model (eval mode) as a checked graph whose outputs are integer codes times a power of two. input_shape:
    one input without the batch axis; zoo models state theirs."""
    model.eval()
    graph = _Lowering(model, tuple(input_shape) if input_shape is not None else _input_shape(model)).run()
    graph = merge_channel_ops(output_integers(graph))
    check_graph(graph)
    return graph


def input_layer_of(graph: Graph) -> str:
    """The module path of the layer whose input quantizer makes the graph's input."""
    (name, _), = graph.inputs
    return name.removesuffix(INPUT_SUFFIX)


def network_input_codes(model: nn.Module, layer: str, x: torch.Tensor, batch: int = 256) -> np.ndarray:
    """The codes `layer`'s input quantizer makes when the model runs on x: the accelerator's input stream. Runs the
    model `batch` images at a time (its eval forward is float64, and a CNN's maps are large)."""
    module = model.get_submodule(layer)
    captured = []
    handle = module.register_forward_pre_hook(lambda _, args: captured.append(args[0]))
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, len(x), batch):
                model(x[start:start + batch])
    finally:
        handle.remove()
    codes, _ = input_codes(module.precision.inputs, module.input_quant, torch.cat(captured))
    return codes.cpu().numpy().astype(np.int64)
