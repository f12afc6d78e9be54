"""QONNX graphs through the whole flow: `hbnn compile MODEL.onnx`, then `hbnn sim` against execute_onnx, every
output equal as an integer, cycles as analysed."""
import json

import numpy as np

from hbnn.cli import main as hbnn
from hbnn.quant.bnn_pynq import export_bnn_pynq
from hbnn.sim.verify import verify_build


def _passed(build, count):
    result = json.loads((build / "sim.json").read_text())
    assert result["mismatches"] == 0 and result["outputs_compared"] == 2 * count * 10  # 2 runs, 10 outputs each
    assert result["latency"] == result["predicted_latency"]
    assert result["initiation_interval"] == result["predicted_initiation_interval"]
    return result


def test_bnn_pynq_tfc_from_qonnx_is_bit_exact(tmp_path):
    graph = export_bnn_pynq("tfc_1w1a", tmp_path / "tfc_1w1a.onnx", seed=3)
    build = tmp_path / "build"
    assert hbnn(["compile", str(graph), "--out", str(build)]) == 0
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["qonnx"]["host_tail"]  # TensorNorm on the host
    assert (build / "model.onnx").exists() and not (build / "model.pt").exists()

    assert hbnn(["sim", str(build), "--count", "60", "--quiet", "--crosscheck", "2"]) == 0
    result = _passed(build, 60)
    assert result["dataset"] == "random"
    assert result["engines_agree"] is True


def test_2_bit_activations_from_qonnx_are_bit_exact(tmp_path):
    graph = export_bnn_pynq("tfc_1w2a", tmp_path / "tfc_1w2a.onnx", seed=3)
    build = tmp_path / "build"
    assert hbnn(["compile", str(graph), "--out", str(build)]) == 0
    x = np.random.default_rng(0).random((60, 784), dtype=np.float32)
    result = verify_build(build, x, engine="verilator", log=lambda *_: None)
    assert result.mismatches == 0 and result.outputs_compared == 2 * 60 * 10
    assert result.cycles_match


def test_bnn_pynq_as_pytorch_with_weights_is_bit_exact(tmp_path):
    """The PyTorch form: the network's weights from a state dict; the reference is the PyTorch model."""
    import torch

    from hbnn.quant.bnn_pynq import bnn_pynq_model

    weights = tmp_path / "tfc.pth"
    torch.save({"state_dict": bnn_pynq_model("tfc_1w1a", seed=7).state_dict(), "epoch": 3}, weights)
    build = tmp_path / "build"
    assert hbnn(["compile", "bnn_pynq:tfc_1w1a", "--weights", str(weights), "--out", str(build)]) == 0
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["brevitas"]["network"] == "tfc_1w1a" and manifest["brevitas"]["source"] == str(weights)
    assert hbnn(["sim", str(build), "--count", "50", "--quiet", "--crosscheck", "0"]) == 0
    _passed(build, 50)


def test_weights_that_do_not_fit_are_refused(tmp_path, capsys):
    import torch

    from hbnn.quant.bnn_pynq import bnn_pynq_model

    weights = tmp_path / "sfc.pth"
    torch.save(bnn_pynq_model("sfc_1w1a").state_dict(), weights)
    assert hbnn(["compile", "bnn_pynq:tfc_1w1a", "--weights", str(weights), "--out", str(tmp_path / "build")]) == 2
    assert "sfc.pth: its tensors do not fit the network" in capsys.readouterr().err
    assert not (tmp_path / "build").exists()


def test_a_reference_that_differs_is_counted(tmp_path):
    """The comparison can fail: the build's graph with one weight of the last layer negated after compiling."""
    import onnx
    from onnx import numpy_helper

    graph = export_bnn_pynq("tfc_1w1a", tmp_path / "tfc.onnx", seed=4)
    build = tmp_path / "build"
    assert hbnn(["compile", str(graph), "--out", str(build)]) == 0
    model = onnx.load(build / "model.onnx")
    last = [node for node in model.graph.node if node.op_type in ("Gemm", "MatMul")][-1]
    quantizer = next(node for node in model.graph.node if node.output[0] == last.input[1])
    initializer = next(item for item in model.graph.initializer if item.name == quantizer.input[0])
    weights = numpy_helper.to_array(initializer).copy()
    weights.flat[0] = -weights.flat[0]
    initializer.CopyFrom(numpy_helper.from_array(weights, initializer.name))
    onnx.save(model, build / "model.onnx")
    x = np.random.default_rng(0).random((20, 784), dtype=np.float32)
    result = verify_build(build, x, backpressure=False, engine="verilator", log=lambda *_: None)
    assert result.mismatches > 0
