"""hbnn's lowered graph written as QONNX (`hbnn export CHECKPOINT --onnx OUT`), for FINN, Netron and onnxruntime.

The graph is lower_model's, with quantizers moved in front of max pools (quantize_early): every float32 op of quant/CONTRACT.md becomes one ONNX node with
the same IEEE semantics (a batch norm as Sub, Div by the float32 sqrt(var + eps), Mul, Add, as hbnn evaluates it), so
`execute_onnx` on the export computes what the checkpoint computes, and compiling the export
(hbnn.compiler.qonnx_import) finds the same thresholds and the same layer names: byte-identical Verilog.

- the input quantizer is the first node (BipolarQuant, or an 8-bit Quant with its power-of-two scale); the graph
  input is what it quantizes (the host's preprocessing, e.g. normalization, stays on the host);
- a Dense is a MatMul (vectors) or a Conv (after a SlidingWindow) of the quantized weights (BipolarQuant of +-1, or
  an 8-bit narrow Quant of codes * 2**e), its integer bias an Add of bias * scale;
- a binary convolution's +1 padding is a Pad node (constant 1.0) in front of an unpadded Conv;
- max pools are MaxPool, sum pools AveragePool / GlobalAveragePool (the division by the area, which the contract
  does once in float64 and rounds once, is the pool's), flattens Flatten (the next layer's columns back in torch's
  (c, y, x) order), residual sums Add.
Channel padding (cResNet-20's shortcut) and an average pool at the output are not exported yet (refused, naming the
node).
"""
from __future__ import annotations

import numpy as np

from .check import GraphError, check_graph
from .passes.quantize_early import quantize_early
from .wire_order import torch_columns
from .ir import (Add, BatchNorm, Bipolar, ChannelOps, Dense, ElementwiseAdd, Flatten, Graph, Int, Multiply, Pool,
                 Quantize, Relu, Scale, SlidingWindow)

__all__ = ["export_qonnx_graph", "QONNX_DOMAIN", "OPSET"]

QONNX_DOMAIN = "qonnx.custom_op.general"
OPSET = 13


class _Writer:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.types = check_graph(graph)
        self.nodes, self.initializers = [], []
        self.tensor: dict[str, str] = {}  # IR value -> ONNX tensor
        self.flattened: dict[str, tuple[int, int, int]] = {}
        self.windows: dict[str, SlidingWindow] = {}
        self.exponent: dict[str, int] = {}  # IR value -> the power of two its codes are scaled by
        self.averaged: dict[str, int] = {}  # sum pools written as average pools -> their area
        self.ranks: dict[str, int] = {}  # IR value -> its ONNX tensor's rank

    def constant(self, name: str, values) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs, output: str, name: str, domain: str = "", **attributes) -> str:
        import onnx.helper

        self.nodes.append(onnx.helper.make_node(op, list(inputs), [output], name=name, domain=domain, **attributes))
        return output

    def per_channel(self, value: str, values) -> np.ndarray:
        channels, height, width = self.types[value].shape
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        return values.reshape(1, channels) if self._rank(value) == 2 else values.reshape(1, channels, 1, 1)

    def _rank(self, value: str) -> int:
        """The rank of the value's ONNX tensor: 2 for vectors (N, C), 4 for maps (N, C, H, W), a global pool's
        (N, C, 1, 1) included."""
        return self.ranks[value]

    def quantizer(self, name: str, source: str, dtype, exponent: int) -> str:
        if isinstance(dtype, Bipolar):
            return self.node("BipolarQuant", [source, self.constant(f"{name}.scale", 1.0)], name, name, QONNX_DOMAIN)
        inputs = [source, self.constant(f"{name}.scale", np.ldexp(1.0, exponent)), self.constant(f"{name}.zeropt", 0.0),
                  self.constant(f"{name}.bitwidth", 8.0)]
        return self.node("Quant", inputs, name, name, QONNX_DOMAIN, signed=1, narrow=0, rounding_mode="ROUND")

    def run(self, input_name: str = "global_in"):
        import onnx.helper
        from onnx import TensorProto

        (value, tensor), = self.graph.inputs
        rank = 2 if tensor.shape[1:] == (1, 1) else 4
        shape = [1, tensor.shape[0]] if rank == 2 else [1, *tensor.shape]
        exponent = tensor.dtype.exponent if isinstance(tensor.dtype, Int) else 0
        self.ranks[value] = rank
        self.tensor[value] = self.quantizer(value, input_name, tensor.dtype, exponent)
        self.exponent[value] = exponent
        for node in self.graph.nodes:
            self._node(node)
            self.ranks.setdefault(node.name, self.ranks[node.inputs[0]])
        (output,) = self.graph.outputs
        if self.graph.divisor_of(output) != 1:
            raise GraphError(f"output {output!r}: an average pool's divisor on the host is not exported yet")
        out_shape = [1, self.types[output].shape[0]] if self._rank(output) == 2 else [1, *self.types[output].shape]
        onnx_graph = onnx.helper.make_graph(
            self.nodes, "hbnn", [onnx.helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
            [onnx.helper.make_tensor_value_info(self.tensor[output], TensorProto.FLOAT, out_shape)], self.initializers)
        model = onnx.helper.make_model(onnx_graph, producer_name="hbnn",
                                       opset_imports=[onnx.helper.make_opsetid("", OPSET),
                                                      onnx.helper.make_opsetid(QONNX_DOMAIN, 1)])
        return model

    def _node(self, node):
        if isinstance(node, ChannelOps):
            self.ranks[node.name] = self.ranks[node.inputs[0]]
        if isinstance(node, Dense):
            self._dense(node)
        elif isinstance(node, ChannelOps):
            self._channel_ops(node)
        elif isinstance(node, Quantize):
            self.tensor[node.name] = self.quantizer(node.name, self.tensor[node.inputs[0]],
                                                    Bipolar() if node.kind == "sign" else Int(8, True), node.exponent)
            self.exponent[node.name] = node.exponent if node.kind == "int8" else 0
        elif isinstance(node, SlidingWindow):
            self.windows[node.name] = node
            self.tensor[node.name] = self.tensor[node.inputs[0]]
            self.exponent[node.name] = self.exponent[node.inputs[0]]
        elif isinstance(node, Pool) and node.kind == "sum":  # an average pool: the division is the pool node's
            channels, height, width = self.types[node.inputs[0]].shape
            source = self.tensor[node.inputs[0]]
            if node.padding == 0 and node.kernel == height == width:
                self.tensor[node.name] = self.node("GlobalAveragePool", [source], node.name, node.name)
            else:
                self.tensor[node.name] = self.node("AveragePool", [source], node.name, node.name,
                                                   kernel_shape=[node.kernel] * 2, strides=[node.stride] * 2,
                                                   pads=[node.padding] * 4)
            self.exponent[node.name] = self.exponent[node.inputs[0]]
            self.averaged[node.name] = node.area
        elif isinstance(node, ElementwiseAdd):
            a, b = node.inputs
            self.tensor[node.name] = self.node("Add", [self.tensor[a], self.tensor[b]], node.name, node.name)
            self.exponent[node.name] = self.exponent[a]
        elif isinstance(node, Pool) and node.kind == "max":
            self.tensor[node.name] = self.node("MaxPool", [self.tensor[node.inputs[0]]], node.name, node.name,
                                               kernel_shape=[node.kernel] * 2, strides=[node.stride] * 2,
                                               pads=[node.padding] * 4)
            self.exponent[node.name] = self.exponent[node.inputs[0]]
        elif isinstance(node, Flatten):
            self.flattened[node.name] = self.types[node.inputs[0]].shape
            self.ranks[node.name] = 2
            self.tensor[node.name] = self.node("Flatten", [self.tensor[node.inputs[0]]], node.name, node.name, axis=1)
            self.exponent[node.name] = self.exponent[node.inputs[0]]
        else:
            raise GraphError(f"layer {node.name!r} ({type(node).__name__}{' ' + node.kind if isinstance(node, Pool) else ''})"
                             ": not exported to QONNX yet")

    def _weights(self, node: Dense, codes: np.ndarray) -> str:
        name = f"{node.name}.weight"
        if node.weight_kind == "binary":
            values = self.constant(name, codes)
            return self.node("BipolarQuant", [values, self.constant(f"{name}_quant.scale", 1.0)], f"{name}_quant",
                             f"{name}_quant", QONNX_DOMAIN)
        scale = np.ldexp(1.0, node.weight_exponent)
        bits = 2.0 if node.weight_kind == "ternary" else 8.0  # narrow 2-bit signed: -1, 0, +1
        inputs = [self.constant(name, codes * scale), self.constant(f"{name}_quant.scale", scale),
                  self.constant(f"{name}_quant.zeropt", 0.0), self.constant(f"{name}_quant.bitwidth", bits)]
        return self.node("Quant", inputs, f"{name}_quant", f"{name}_quant", QONNX_DOMAIN, signed=1, narrow=1,
                         rounding_mode="ROUND")

    def _dense(self, node: Dense):
        source = node.inputs[0]
        weights = np.asarray(node.weights, dtype=np.float64)
        if source in self.windows:
            window = self.windows[source]
            channels = self.types[window.inputs[0]].shape[0]
            kernel = window.kernel
            weights = torch_columns(weights, (channels, kernel, kernel))
            data = self.tensor[source]
            pads = window.padding
            if window.padding and window.pad_code != 0:  # +1 padding of a binary convolution: an explicit Pad
                padding = [0, 0, window.padding, window.padding] * 2
                data = self.node("Pad", [data, self._int64(f"{window.name}.pads", padding),
                                         self.constant(f"{window.name}.pad_value", float(window.pad_code))],
                                 window.name, window.name, mode="constant")
                pads = 0
            product = self.node("Conv", [data, self._weights(node, weights)], node.name, node.name,
                                kernel_shape=[kernel] * 2, strides=[window.stride] * 2, pads=[pads] * 4)
        elif self._rank(source) == 4:  # a 1x1 convolution reads the map directly, no window
            product = self.node("Conv", [self.tensor[source], self._weights(node, weights[:, :, None, None])],
                                node.name, node.name, kernel_shape=[1, 1])
        else:
            if source in self.flattened:  # columns back from the wire's (y, x, c) order to torch's (c, y, x)
                weights = torch_columns(weights, self.flattened[source]).reshape(len(weights), -1)
            product = self.node("MatMul", [self.tensor[source], self._weights(node, weights.T)], node.name, node.name)
        exponent = self.exponent[source] + (node.weight_exponent if node.weight_kind == "int8" else 0)
        self.ranks[node.name] = 4 if source in self.windows or self._rank(source) == 4 else 2
        if node.bias is not None:
            bias = self.constant(f"{node.name}.bias", self.per_channel(node.name, node.bias * np.ldexp(1.0, exponent)))
            product = self.node("Add", [product, bias], f"{node.name}.biased", f"{node.name}.bias_add")
        self.tensor[node.name] = product
        self.exponent[node.name] = exponent

    def _int64(self, name: str, values) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
        return name

    def _channel_ops(self, node: ChannelOps):
        value = self.tensor[node.inputs[0]]
        for index, op in enumerate(node.ops):
            label = f"{node.name}.{index}"
            if isinstance(op, Scale):
                if op.divisor != self.averaged.get(node.inputs[0], 1):
                    raise GraphError(f"layer {node.name!r}: a division by {op.divisor} that no average pool does")
                continue  # the codes are already values times their scale in QONNX (an average pool divided)
            if isinstance(op, Multiply):
                value = self.node("Mul", [value, self.constant(f"{label}.alpha", self.per_channel(node.name,
                                                                                                  op.values))],
                                  f"{label}.mul", f"{label}.mul")
            elif isinstance(op, Add):
                value = self.node("Add", [value, self.constant(f"{label}.bias", self.per_channel(node.name,
                                                                                                 op.values))],
                                  f"{label}.add", f"{label}.add")
            elif isinstance(op, BatchNorm):  # the contract's four float32 ops, sqrt(var + eps) rounded once
                denominator = np.sqrt(op.var + np.float32(op.eps)).astype(np.float32)
                for step, (onnx_op, values) in enumerate((("Sub", op.mean), ("Div", denominator),
                                                          ("Mul", op.gamma), ("Add", op.beta))):
                    value = self.node(onnx_op, [value, self.constant(f"{label}.bn{step}",
                                                                     self.per_channel(node.name, values))],
                                      f"{label}.bn_{onnx_op.lower()}", f"{label}.bn_{onnx_op.lower()}")
            elif isinstance(op, Relu):
                value = self.node("Relu", [value], f"{label}.relu", f"{label}.relu")
        self.tensor[node.name] = value
        self.exponent[node.name] = 0


def export_qonnx_graph(graph: Graph):
    """The lowered graph (hbnn.compiler.lower.lower_model) as an onnx ModelProto; its quantizers first moved in
    front of max pools and flattens (the quantize_early pass, exact: they commute), so that pools run on codes as
    FINN and hbnn's hardware run them."""
    return _Writer(quantize_early(graph)).run()
