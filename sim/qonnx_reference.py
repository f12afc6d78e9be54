"""The reference of a build compiled from QONNX: `qonnx.core.onnx_exec.execute_onnx` on the build's model.onnx.

For a batch of host inputs it gives the accelerator's input codes (the input quantizer's output over its scale), the
integers the hardware must output (the reference's tensor there over the output scale: exact, or an error), and the
graph's final outputs. `finish` runs the host's part after the hardware (BNN-PYNQ's TensorNorm) on the hardware's
integers, through the same execute_onnx.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from ..compiler.wire_order import wire_order

__all__ = ["QonnxReference", "BrevitasReference", "ReferenceRun", "REFERENCE_BATCH"]

REFERENCE_BATCH = 100  # images per execute_onnx call: it steps node by node, each an onnxruntime session


def _wire_order(values: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, elements) in wire order."""
    return wire_order(values).reshape(len(values), -1)


def _exact_codes(values: np.ndarray, scale: np.ndarray, tensor: str) -> np.ndarray:
    codes = np.rint(values.astype(np.float64) / scale)
    if not np.array_equal((codes * scale).astype(np.float32), values.astype(np.float32)):
        raise ValueError(f"tensor {tensor!r} is not integer codes times its scale in the reference run")
    return codes.astype(np.int64)


@dataclass(frozen=True)
class ReferenceRun:
    input_codes: np.ndarray  # (N, elements) int64, wire order
    output_codes: np.ndarray  # (N, outputs) int64, wire order: what the hardware must output
    final: np.ndarray  # (N, ...) float32: the graph's output


class QonnxReference:
    def __init__(self, model_path: str | pathlib.Path, qonnx: dict):
        from qonnx.core.modelwrapper import ModelWrapper

        self.model = ModelWrapper(str(model_path))
        self.qonnx = qonnx
        self.input_name = self.model.graph.input[0].name
        self.output_name = self.model.graph.output[0].name
        self.input_shape = tuple(self.model.get_tensor_shape(self.input_name)[1:])
        self._batched: dict[int, object] = {}

    def _at_batch(self, batch: int):
        from qonnx.transformation.change_batchsize import ChangeBatchSize
        from qonnx.transformation.infer_shapes import InferShapes

        if batch not in self._batched:
            self._batched[batch] = self.model.transform(ChangeBatchSize(batch)).transform(InferShapes())
        return self._batched[batch]

    def run(self, x: np.ndarray) -> ReferenceRun:
        from qonnx.core.onnx_exec import execute_onnx

        x = np.asarray(x, dtype=np.float32).reshape(len(x), *self.input_shape)
        inputs, outputs, finals = [], [], []
        scale_in = np.float64(self.qonnx["input_scale"])
        scale_out = np.asarray(self.qonnx["output_scale"], dtype=np.float64)
        for start in range(0, len(x), REFERENCE_BATCH):
            chunk = x[start:start + REFERENCE_BATCH]
            context = execute_onnx(self._at_batch(len(chunk)), {self.input_name: chunk},
                                   return_full_exec_context=True)
            inputs.append(_exact_codes(_wire_order(context[self.qonnx["input_tensor"]]), scale_in,
                                       self.qonnx["input_tensor"]))
            outputs.append(_exact_codes(_wire_order(context[self.qonnx["output_tensor"]]), scale_out,
                                        self.qonnx["output_tensor"]))
            finals.append(np.asarray(context[self.output_name], dtype=np.float32))
        return ReferenceRun(np.concatenate(inputs), np.concatenate(outputs), np.concatenate(finals))

    def finish(self, codes: np.ndarray) -> np.ndarray:
        """The graph's output from the hardware's integers: the host tail (if any) run by execute_onnx."""
        from qonnx.core.onnx_exec import execute_onnx

        codes = np.asarray(codes, dtype=np.int64)
        values = (codes * np.asarray(self.qonnx["output_scale"], dtype=np.float64)).astype(np.float32)
        if not self.qonnx["host_tail"]:
            return values
        tensor = self.qonnx["output_tensor"]
        finals = []
        for start in range(0, len(values), REFERENCE_BATCH):
            chunk = values[start:start + REFERENCE_BATCH]
            model = self._at_batch(len(chunk))
            nodes = {node.name: node for node in model.graph.node}
            shape = model.get_tensor_shape(tensor)
            if len(shape) == 4:  # back from wire order
                chunk = chunk.reshape(len(chunk), shape[2], shape[3], shape[1]).transpose(0, 3, 1, 2)
            out = execute_onnx(model, {tensor: np.ascontiguousarray(chunk).reshape(shape)},
                               start_node=nodes[self.qonnx["host_tail"][0]],
                               end_node=nodes[self.qonnx["host_tail"][-1]])[self.output_name]
            finals.append(np.asarray(out, dtype=np.float32))
        return np.concatenate(finals)


class BrevitasReference(QonnxReference):
    """The reference of a build compiled from a Brevitas model as PyTorch (hbnn.compiler.build.compile_brevitas):
    the PyTorch model itself. Its first QuantIdentity's output is the input stream, its last quantized layer's
    output what the hardware must output (both over the export's scales, exactly), its forward the final output;
    `finish` (the host's tail) still runs the export's nodes."""

    def __init__(self, model_path, qonnx: dict, torch_model):
        super().__init__(model_path, qonnx)
        self.torch_model = torch_model.eval()

    def run(self, x: np.ndarray) -> ReferenceRun:
        import torch
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

        captured: dict[str, list] = {"input": [], "output": []}
        products = [module for module in self.torch_model.modules() if isinstance(module, (QuantLinear, QuantConv2d))]
        quantizers = [module for module in self.torch_model.modules() if isinstance(module, QuantIdentity)]

        def keep(kind):
            def hook(module, args, output):
                value = getattr(output, "value", output)
                captured[kind].append(value.detach().numpy().astype(np.float32))
            return hook

        handles = [quantizers[0].register_forward_hook(keep("input")),
                   products[-1].register_forward_hook(keep("output"))]
        x = np.asarray(x, dtype=np.float32).reshape(len(x), *self.input_shape)
        inputs, outputs, finals = [], [], []
        try:
            with torch.no_grad():
                for start in range(0, len(x), REFERENCE_BATCH):
                    captured["input"].clear()
                    captured["output"].clear()
                    out = self.torch_model(torch.from_numpy(x[start:start + REFERENCE_BATCH]))
                    finals.append(getattr(out, "value", out).numpy().astype(np.float32))
                    inputs.append(_exact_codes(_wire_order(captured["input"][0]), np.float64(self.qonnx["input_scale"]),
                                               "the first QuantIdentity's output"))
                    outputs.append(_exact_codes(_wire_order(captured["output"][-1]),
                                                np.asarray(self.qonnx["output_scale"], dtype=np.float64),
                                                "the last quantized layer's output"))
        finally:
            for handle in handles:
                handle.remove()
        return ReferenceRun(np.concatenate(inputs), np.concatenate(outputs), np.concatenate(finals))
