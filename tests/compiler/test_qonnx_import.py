"""QONNX graphs lowered to the IR: the IR executor equals execute_onnx, as integers, on Brevitas' bnn_pynq exports;
and what hbnn cannot map is refused naming the node."""
import numpy as np
import onnx
import onnx.helper as oh
import pytest
from onnx import TensorProto, numpy_helper

from hbnn.compiler.execute import execute
from hbnn.compiler.ir import Bipolar, Dense, ElementwiseAdd, Int, MultiThreshold, Pool, SlidingWindow
from hbnn.compiler.qonnx_import import QonnxError, load_qonnx, lower_qonnx
from hbnn.quant.bnn_pynq import export_bnn_pynq
from hbnn.sim.qonnx_reference import QonnxReference

IMAGES = 40


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bnn_pynq")
    cache = {}

    def export(name):
        if name not in cache:
            cache[name] = export_bnn_pynq(name, folder / f"{name}.onnx", seed=0)
        return cache[name]
    return export


def _reference(model, lowering, folder):
    path = folder / "clean.onnx"
    model.save(str(path))
    entry = {"input_tensor": lowering.input_tensor, "input_scale": lowering.input_scale,
             "output_tensor": lowering.output_tensor, "output_scale": lowering.output_scale,
             "host_tail": list(lowering.host_tail)}
    return QonnxReference(path, entry)


def _ir_outputs(lowering, input_codes):
    (_, tensor), = lowering.graph.inputs
    channels, height, width = tensor.shape
    codes = input_codes.reshape(len(input_codes), height, width, channels).transpose(0, 3, 1, 2)
    out = execute(lowering.graph, codes)[lowering.graph.outputs[0]]
    return out.transpose(0, 2, 3, 1).reshape(len(out), -1)


@pytest.mark.parametrize("name", ["tfc_1w1a", "sfc_1w1a", "lfc_1w1a", "tfc_1w2a", "cnv_1w1a", "cnv_2w2a"])
def test_bnn_pynq_lowered_equals_execute_onnx(exports, tmp_path, name):
    model = load_qonnx(exports(name))
    lowering = lower_qonnx(model)
    reference = _reference(model, lowering, tmp_path)
    x = np.random.default_rng(1).random((IMAGES, int(np.prod(reference.input_shape))), dtype=np.float32)
    run = reference.run(x)
    assert np.array_equal(_ir_outputs(lowering, run.input_codes), run.output_codes)
    # The host's tail (TensorNorm) on the integers gives the graph's output, bit for bit.
    assert np.array_equal(reference.finish(run.output_codes).reshape(run.final.shape), run.final)
    thresholds = [node for node in lowering.graph.nodes if isinstance(node, MultiThreshold)]
    assert len(thresholds) == (8 if name.startswith("cnv") else 3)
    # The drawn statistics put thresholds inside the accumulator ranges: the outputs vary from image to image.
    assert len(np.unique(run.output_codes)) > 5


def test_bnn_pynq_layers_map_to_the_expected_lanes(exports):
    lowering = lower_qonnx(load_qonnx(exports("cnv_1w1a")))
    nodes = lowering.graph.nodes
    dense = [node for node in nodes if isinstance(node, Dense)]
    assert [node.weight_kind for node in dense] == ["binary"] * 9
    assert lowering.graph.inputs[0][1].dtype == Int(8, True, -7)  # CNV's 8-bit input, scale 2^-7
    assert sum(isinstance(node, Pool) for node in nodes) == 2
    assert [node.kernel for node in nodes if isinstance(node, SlidingWindow)] == [3] * 6
    assert all(node.dtype == Bipolar() for node in nodes if isinstance(node, MultiThreshold))
    assert lowering.host_tail  # TensorNorm runs on the host


def test_2_bit_activations_are_four_levels_on_int8_streams(exports):
    lowering = lower_qonnx(load_qonnx(exports("tfc_1w2a")))
    hidden = [node for node in lowering.graph.nodes if isinstance(node, MultiThreshold)]
    assert all(node.dtype.width == 8 and node.dtype.signed for node in hidden)
    assert all(node.thresholds.shape[1] <= 3 and node.base >= -2 for node in hidden)


# --- refusals, on small hand-made graphs --------------------------------------------------------------------------

def _graph(tmp_path, after_matmul, weight=None, weight_quant=True, scale=1.0):
    """input (1, 8) -> BipolarQuant -> MatMul(W) -> after_matmul nodes -> output."""
    rng = np.random.default_rng(0)
    weight = rng.choice([-1.0, 1.0], size=(8, 4)).astype(np.float32) if weight is None else weight
    nodes = [oh.make_node("BipolarQuant", ["x", "one"], ["xq"], name="InputQuant", domain="qonnx.custom_op.general")]
    if weight_quant:
        nodes.append(oh.make_node("BipolarQuant", ["w", "wscale"], ["wq"], name="WeightQuant",
                                  domain="qonnx.custom_op.general"))
    nodes.append(oh.make_node("MatMul", ["xq", "wq" if weight_quant else "w"], ["acc"], name="Product"))
    last = "acc"
    for index, (op, constant) in enumerate(after_matmul):
        output = f"t{index}"
        inputs = [last] + ([f"c{index}"] if constant is not None else [])
        nodes.append(oh.make_node(op, inputs, [output], name=f"{op}_{index}"))
        last = output
    nodes.append(oh.make_node("BipolarQuant", [last, "one"], ["y"], name="OutputQuant",
                              domain="qonnx.custom_op.general"))
    initializers = [numpy_helper.from_array(np.float32(1.0).reshape(()), "one"),
                    numpy_helper.from_array(np.float32(scale).reshape(()), "wscale"),
                    numpy_helper.from_array(weight, "w")]
    initializers += [numpy_helper.from_array(np.asarray(constant, dtype=np.float32), f"c{index}")
                     for index, (_, constant) in enumerate(after_matmul) if constant is not None]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializers)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)])
    path = tmp_path / "g.onnx"
    onnx.save(model, path)
    return path


def test_hand_made_graph_with_a_bias_and_a_negative_scale(tmp_path):
    path = _graph(tmp_path, [("Add", [0.5, -3.0, 2.0, 0.0]), ("Mul", [1.0, -2.0, 0.5, 3.0])])
    model = load_qonnx(path)
    lowering = lower_qonnx(model)
    (threshold,) = [node for node in lowering.graph.nodes if isinstance(node, MultiThreshold)]
    assert threshold.descending.tolist() == [False, True, False, False]
    reference = _reference(model, lowering, tmp_path)
    x = np.random.default_rng(2).random((64, 8), dtype=np.float32) * 2 - 1
    run = reference.run(x)
    assert np.array_equal(_ir_outputs(lowering, run.input_codes), run.output_codes)


def test_an_unmapped_op_is_named(tmp_path):
    with pytest.raises(QonnxError, match=r"node 'Tanh_0' \(Tanh\)"):
        lower_qonnx(load_qonnx(_graph(tmp_path, [("Tanh", None)])))


def test_a_division_by_the_values_is_refused(tmp_path):
    path = _graph(tmp_path, [("Div", [1.0, 2.0, 3.0, 4.0])])
    model = load_qonnx(path)
    division = next(node for node in model.graph.node if node.op_type == "Div")
    division.input[0], division.input[1] = division.input[1], division.input[0]  # constant / values
    with pytest.raises(QonnxError, match=r"\(Div\): divides a constant by the layer's values"):
        lower_qonnx(model)


def test_float_weights_are_named(tmp_path):
    with pytest.raises(QonnxError, match=r"weight 'w' is not quantized"):
        lower_qonnx(load_qonnx(_graph(tmp_path, [], weight_quant=False)))


def test_a_scale_that_rounds_in_float32_is_refused(tmp_path):
    with pytest.raises(QonnxError, match=r"node 'Product' \(MatMul\).*not determined by the integer accumulator"):
        lower_qonnx(load_qonnx(_graph(tmp_path, [], scale=0.1)))


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x80\x04 not a protobuf")
    with pytest.raises(QonnxError, match="is not an ONNX model"):
        load_qonnx(path)


def test_finn_streamlined_multithresholds(tmp_path):
    """FINN's streamline step leaves MultiThreshold nodes on the accumulators and integer weights annotated with
    their data type; both map, exactly against execute_onnx (thresholds at and between the integers)."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    rng = np.random.default_rng(5)
    w1 = rng.choice([-1.0, 1.0], size=(16, 6)).astype(np.float32)
    w2 = rng.integers(-3, 4, size=(6, 3)).astype(np.float32)
    input_thresholds = np.zeros((1, 1), dtype=np.float32)
    hidden = np.sort(rng.integers(-10, 11, size=(6, 3)) + rng.choice([0.0, 0.5], size=(6, 3)), axis=1)
    nodes = [
        oh.make_node("MultiThreshold", ["x", "t0"], ["xq"], name="InputThresholds", domain="qonnx.custom_op.general",
                     out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0),
        oh.make_node("MatMul", ["xq", "w1"], ["acc1"], name="MatMul_0"),
        oh.make_node("MultiThreshold", ["acc1", "t1"], ["h"], name="Thresholds_0", domain="qonnx.custom_op.general",
                     out_dtype="INT2", out_scale=1.0, out_bias=-2.0),
        oh.make_node("MatMul", ["h", "w2"], ["y"], name="MatMul_1"),
    ]
    initializers = [numpy_helper.from_array(value, name) for name, value in
                    (("t0", input_thresholds), ("w1", w1), ("t1", hidden.astype(np.float32)), ("w2", w2))]
    graph = oh.make_graph(nodes, "streamlined", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], initializers)
    model = ModelWrapper(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)]))
    model.set_tensor_datatype("w1", DataType["BIPOLAR"])
    model.set_tensor_datatype("w2", DataType["INT3"])
    path = tmp_path / "streamlined.onnx"
    model.save(str(path))

    loaded = load_qonnx(path)
    lowering = lower_qonnx(loaded)
    kinds = [node.weight_kind for node in lowering.graph.nodes if isinstance(node, Dense)]
    assert kinds == ["binary", "int8"] and lowering.graph.inputs[0][1].dtype == Bipolar()
    reference = _reference(loaded, lowering, tmp_path)
    x = rng.standard_normal((200, 16)).astype(np.float32)
    run = reference.run(x)
    assert np.array_equal(_ir_outputs(lowering, run.input_codes), run.output_codes)
    assert len(np.unique(run.output_codes)) > 5


def test_average_pool_then_trunc(tmp_path):
    """An average pool of codes, truncated (Brevitas' TruncAvgPool2d exports AveragePool + Trunc), and a global
    average pool requantized: sum pools whose division folds into the next quantizer's thresholds."""
    rng = np.random.default_rng(9)
    quant = dict(domain="qonnx.custom_op.general")
    nodes = [
        oh.make_node("Quant", ["x", "s_in", "zero", "bits4"], ["xq"], name="InputQuant", signed=1, narrow=0,
                     rounding_mode="ROUND", **quant),
        oh.make_node("BipolarQuant", ["w", "one"], ["wq"], name="WeightQuant", **quant),
        oh.make_node("Conv", ["xq", "wq"], ["acc"], name="Conv_0", kernel_shape=[1, 1]),
        oh.make_node("Quant", ["acc", "s_mid", "zero", "bits4"], ["a"], name="ActQuant", signed=1, narrow=0,
                     rounding_mode="ROUND", **quant),
        oh.make_node("AveragePool", ["a"], ["p"], name="AvgPool_0", kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("Trunc", ["p", "s_mid", "zero", "bits6", "bits4"], ["t"], name="Trunc_0",
                     rounding_mode="FLOOR", **quant),
        oh.make_node("GlobalAveragePool", ["t"], ["g"], name="GlobalPool_0"),
        oh.make_node("Quant", ["g", "s_out", "zero", "bits4"], ["y"], name="OutQuant", signed=1, narrow=0,
                     rounding_mode="ROUND", **quant),
    ]
    constants = {"s_in": 0.125, "zero": 0.0, "bits4": 4.0, "bits6": 6.0, "one": 1.0, "s_mid": 0.5, "s_out": 0.0625}
    initializers = [numpy_helper.from_array(np.float32(value).reshape(()), name) for name, value in constants.items()]
    initializers.append(numpy_helper.from_array(rng.choice([-1.0, 1.0], size=(3, 2, 1, 1)).astype(np.float32), "w"))
    graph = oh.make_graph(nodes, "pools", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 1, 1])], initializers)
    path = tmp_path / "pools.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13),
                                                  oh.make_opsetid("qonnx.custom_op.general", 1)]), path)
    model = load_qonnx(path)
    lowering = lower_qonnx(model)
    assert [node.kind for node in lowering.graph.nodes if isinstance(node, Pool)] == ["sum", "sum"]
    reference = _reference(model, lowering, tmp_path)
    x = rng.standard_normal((100, 2 * 8 * 8)).astype(np.float32)
    run = reference.run(x)
    assert np.array_equal(_ir_outputs(lowering, run.input_codes), run.output_codes)
    assert len(np.unique(run.output_codes)) > 3


def test_residual_add_of_two_code_tensors(tmp_path):
    """A residual join: a layer's requantized output plus the block input, both quantized at one scale, then
    requantized: an integer add whose reader becomes thresholds; the block input is read twice (a fork)."""
    rng = np.random.default_rng(11)
    quant = dict(domain="qonnx.custom_op.general", signed=1, narrow=0, rounding_mode="ROUND")
    nodes = [
        oh.make_node("Quant", ["x", "s", "zero", "bits8"], ["xq"], name="InputQuant", **quant),
        oh.make_node("BipolarQuant", ["w", "one"], ["wq"], name="WeightQuant", domain="qonnx.custom_op.general"),
        oh.make_node("Conv", ["xq", "wq"], ["acc"], name="Conv_0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        oh.make_node("Quant", ["acc", "s", "zero", "bits8"], ["aq"], name="BranchQuant", **quant),
        oh.make_node("Add", ["aq", "xq"], ["sum"], name="ResidualAdd"),
        oh.make_node("Relu", ["sum"], ["r"], name="Relu_0"),
        oh.make_node("Quant", ["r", "s2", "zero", "bits8"], ["y"], name="OutQuant", **quant),
    ]
    constants = {"s": 0.0625, "s2": 0.125, "zero": 0.0, "bits8": 8.0, "one": 1.0}
    initializers = [numpy_helper.from_array(np.float32(value).reshape(()), name) for name, value in constants.items()]
    initializers.append(numpy_helper.from_array(rng.choice([-1.0, 1.0], size=(4, 4, 3, 3)).astype(np.float32), "w"))
    graph = oh.make_graph(nodes, "residual", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])], initializers)
    path = tmp_path / "residual.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)]), path)
    model = load_qonnx(path)
    lowering = lower_qonnx(model)
    assert any(isinstance(node, ElementwiseAdd) for node in lowering.graph.nodes)
    reference = _reference(model, lowering, tmp_path)
    x = (rng.standard_normal((60, 4 * 6 * 6)) * 3).astype(np.float32)
    run = reference.run(x)
    assert np.array_equal(_ir_outputs(lowering, run.input_codes), run.output_codes)
    assert len(np.unique(run.output_codes)) > 20
