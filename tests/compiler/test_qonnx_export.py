"""`hbnn export CHECKPOINT --onnx OUT`: the QONNX graph computes what the checkpoint computes (execute_onnx against
PyTorch), and compiling it gives the checkpoint's Verilog byte for byte."""
import json

import numpy as np
import pytest
import torch

from hbnn.cli import main as hbnn
from hbnn.compiler.check import GraphError
from hbnn.compiler.lower import input_layer_of, lower_model
from hbnn.compiler.qonnx_export import export_qonnx_graph
from hbnn.quant.checkpoint import save_checkpoint
from hbnn.quant.models import build_model


def _checkpoint(path, name, precision, **options):
    torch.manual_seed(0)
    model = build_model(name, precision=precision, full_precision="int8", in_channels=1, num_classes=10,
                        image_size=28, **options)
    model.train()
    with torch.no_grad():
        model(torch.rand(64, 1, 28, 28))  # the quantizers' scales and the batch norms' statistics
    model.eval()
    save_checkpoint(path, model, {"dataset": "random"})
    return model


@pytest.mark.parametrize("name, precision, options", [("mlp", "hybrid", {}), ("lenet5", "binary", {}),
                                                      ("lenet5", "ternary", {}),
                                                      ("resnet14", "binary", {"shortcuts": "all"})])
def test_export_round_trip_is_byte_identical(tmp_path, name, precision, options):
    """A hybrid MLP (int8 layers with biases), a binary LeNet-5 (+1 padding, max pools, a flatten), a ternary one
    (2-bit narrow weights) and a residual ResNet-14 (1x1 strided shortcuts, residual adds, a global average pool)."""
    model = _checkpoint(tmp_path / "model.pt", name, precision, **options)
    assert hbnn(["export", str(tmp_path / "model.pt"), "--onnx", str(tmp_path / "model.onnx")]) == 0

    # The export computes what PyTorch computes (its input is what the first quantizer reads).
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    graph = ModelWrapper(str(tmp_path / "model.onnx")).transform(InferShapes())
    shape = graph.get_tensor_shape(graph.graph.input[0].name)
    layer = model.get_submodule(input_layer_of(lower_model(model)))
    seen = []
    handle = layer.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    x = torch.rand(20, 1, 28, 28)
    with torch.no_grad():
        expected = model(x).numpy()
    handle.remove()
    for index in range(len(x)):
        out = execute_onnx(graph, {graph.graph.input[0].name: seen[0][index].numpy().astype(np.float32).reshape(shape)})
        assert np.array_equal(out[graph.graph.output[0].name].reshape(-1), expected[index])

    assert hbnn(["compile", str(tmp_path / "model.pt"), "--out", str(tmp_path / "from-checkpoint")]) == 0
    assert hbnn(["compile", str(tmp_path / "model.onnx"), "--out", str(tmp_path / "from-qonnx")]) == 0
    verilog = [(tmp_path / build / "hbnn_top.v").read_bytes() for build in ("from-checkpoint", "from-qonnx")]
    assert verilog[0] == verilog[1]
    manifest = json.loads((tmp_path / "from-qonnx" / "manifest.json").read_text())
    assert manifest["model"]["format"] == "qonnx"


def test_unexported_nodes_are_named():
    torch.manual_seed(0)
    model = build_model("cresnet20", precision="fp", full_precision="int8", in_channels=1, num_classes=10,
                        image_size=28).eval()
    with pytest.raises(GraphError, match=r"\(ChannelPad\): not exported to QONNX yet"):
        export_qonnx_graph(lower_model(model))
