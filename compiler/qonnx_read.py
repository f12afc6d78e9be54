"""Reading a QONNX graph as hbnn lowers it: qonnx's ModelWrapper, its clean-up without renaming, and how errors
name a node."""
from __future__ import annotations

import pathlib

from .check import GraphError

__all__ = ["QonnxError", "load_qonnx", "attributes_of", "refuse"]


class QonnxError(GraphError):
    """A QONNX graph hbnn cannot lower: the message names the node and its op type, or the tensor."""


def refuse(node, message: str):
    raise QonnxError(f"node {node.name!r} ({node.op_type}): {message}")


def _cleanup(model):
    """qonnx's cleanup_model without its renaming: the user's node and tensor names stay, so that messages name
    what the user sees in Netron; names are only given where missing or repeated."""
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (GiveUniqueNodeNames, GiveUniqueParameterTensors,
                                              RemoveStaticGraphInputs, RemoveUnusedTensors, SortGraph)
    from qonnx.analysis.topology import nodes_topologically_sorted
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    for node in model.graph.node:  # as cleanup_model: QONNX's quantizers in the domain qonnx executes them from
        if node.op_type in ("Quant", "Trunc", "BipolarQuant"):
            node.domain = "qonnx.custom_op.general"
    given_order = {node.name: index for index, node in enumerate(model.graph.node)}
    for transformation in (InferShapes(), GiveUniqueParameterTensors(),
                           FoldConstants(exclude_op_types=["Quant", "BipolarQuant", "QuantizeLinear",
                                                           "DequantizeLinear"]),
                           FoldTransposeIntoQuantInit(), RemoveUnusedTensors(), RemoveStaticGraphInputs(),
                           InferShapes()):
        model = model.transform(transformation)
    # qonnx's InferShapes re-sorts the nodes; the given order (where it is one) is the layers' order in hardware.
    nodes = list(model.graph.node)
    if all(node.name in given_order for node in nodes) and len(given_order) == len(nodes):
        nodes.sort(key=lambda node: given_order[node.name])
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    if not model.analysis(nodes_topologically_sorted)["nodes_topologically_sorted"]:
        model = model.transform(SortGraph())
    names = [node.name for node in model.graph.node]
    if "" in names or len(set(names)) != len(names):
        model = model.transform(GiveUniqueNodeNames())
    return model


def load_qonnx(path: str | pathlib.Path):
    """The graph as a qonnx ModelWrapper, cleaned (constant folding except the quantizers, shapes, sorted): the form
    hbnn lowers and keeps in a build."""
    from qonnx.core.modelwrapper import ModelWrapper

    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        model = ModelWrapper(str(path))
    except Exception as error:  # onnx's protobuf parser: not an ONNX file
        raise QonnxError(f"{path} is not an ONNX model: {error}") from None
    model = _cleanup(model)  # also drops initializers listed as graph inputs
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise QonnxError(f"{path}: hbnn maps graphs with one input and one output, not "
                         f"{len(model.graph.input)} and {len(model.graph.output)}")
    return model


def attributes_of(node) -> dict:
    import onnx.helper

    values = {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}
    return {name: value.decode() if isinstance(value, bytes) else value for name, value in values.items()}
