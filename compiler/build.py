"""Writes a build folder: Verilog, weight and threshold memory images, the checkpoint, and a manifest.

Layout of BUILD/:
  hbnn_top.v                      the accelerator (Amaranth -> Verilog), top module `hbnn_top`
  memories/<layer>.weights.hex    one weight word per line, address order (hbnn.hw.mvau.Mvau.weight_words)
  memories/<node>.thresholds.txt  per threshold unit (named by its quantizer), one channel per line: its direction
                                  (+ rising, - descending) and thresholds
  model.pt                        the checkpoint it was compiled from (for `hbnn sim`)
  model.onnx                      or the QONNX graph (cleaned), when compiled from one
  manifest.json                   layers, foldings, memories and where each went, stream formats, cycle model,
                                  board; no timestamps or absolute paths, so the same model and options give
                                  byte-identical folders.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Mapping

import torch

from .. import __version__
from ..boards import Board
from ..hw.memory_style import memory_style
from ..hw.mvau import Mvau
from ..hw.sliding_window import SlidingWindow as WindowUnit
from ..hw.stream_fifo import StreamFifo
from ..hw.threshold import MultiThreshold as ThresholdUnit
from ..quant.checkpoint import load_checkpoint
from .budget import BoardBudgetError, check_board, node_resources
from .check import check_graph, data_type_name
from .cycles import CycleEstimate, estimate_cycles
from .forked import Forked
from .ir import Dense, ElementwiseAdd, Folding, Graph, MultiThreshold, Pool, SlidingWindow
from .lower import input_layer_of, lower_model
from .map_to_hardware import TOP_NAME, MappedDesign, emit_verilog, map_design, stream_formats
from .pipeline import compile_graph
from .qonnx_import import load_qonnx, lower_qonnx
from .passes.set_folding import DEFAULT_TARGET_CYCLES, LANE_LUT_SHARE, WEIGHT_BRAM_SHARE

__all__ = ["MANIFEST", "VERILOG", "CHECKPOINT", "QONNX_MODEL", "MANIFEST_VERSION", "compile_checkpoint",
           "compile_qonnx", "compile_brevitas", "write_build", "read_manifest", "BREVITAS_WEIGHTS"]

MANIFEST = "manifest.json"
VERILOG = f"{TOP_NAME}.v"
CHECKPOINT = "model.pt"
QONNX_MODEL = "model.onnx"
BREVITAS_WEIGHTS = "brevitas_state.pt"
MANIFEST_VERSION = 6  # 4: convolutions (windows, pixels), pools, output divisor; 5: residual adds, forked
# thresholds; 6: fits_board
STREAM_PACKING = ("an image is `transfers` transfers; element i of a transfer in bits [i*element_bits, "
                  "(i+1)*element_bits) of the payload, two's complement when signed; bipolar: 1 means +1")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _hex_lines(words: list[int], width: int) -> str:
    digits = max(1, -(-width // 4))
    return "".join(f"{word:0{digits}x}\n" for word in words)


def _stage_depths(unit: ThresholdUnit) -> list[int]:
    """Words in each compare stage's threshold memory per lane: stage s holds 2^s thresholds per channel group."""
    return [(unit.channels // unit.pe) << stage for stage in range(unit.stages)]


def _threshold_entry(node: MultiThreshold, unit: ThresholdUnit, files: dict[str, str]) -> dict:
    thresholds_file = f"memories/{node.name}.thresholds.txt"
    files[thresholds_file] = "".join(
        ("-" if falling else "+") + " " + " ".join(map(str, row.tolist())) + "\n"
        for falling, row in zip(node.descending.tolist(), node.thresholds))
    return {
        "node": node.name, "thresholds_per_channel": int(node.thresholds.shape[1]), "stages": unit.stages,
        "output_codes": [node.base, node.base + int(node.thresholds.shape[1])], "file": thresholds_file,
        "stage_memories": [{"depth": depth, "style": memory_style(depth)} for depth in _stage_depths(unit)],
        "sha256": _sha256(files[thresholds_file]),
    }


def _layer_entry(dense: Dense, mvau: Mvau, types, files: dict[str, str]) -> dict:
    weights_file = f"memories/{dense.name}.weights.hex"
    depth, word_bits = mvau.weight_memory
    files[weights_file] = _hex_lines(mvau.weight_words(), word_bits)
    abc = {} if mvau.bases is None else {
        "abc": {"weight_bases": mvau.bases.weight_bases, "activation_bases": mvau.bases.act_bases,
                "bases_side_by_side": mvau.bases.parallel, "passes": mvau.passes,
                "coefficient_codes": [list(row) for row in mvau.bases.coefficients],
                "coefficient_exponent": dense.weight_exponent, "ranks": list(mvau.bases.ranks)}}
    return {
        "name": dense.name, "lane": mvau.lane, "weights": dense.weight_kind,
        "inputs": data_type_name(types[dense.inputs[0]].dtype),
        "in_features": dense.in_features, "out_features": dense.out_features,
        "pe": mvau.pe, "simd": mvau.simd, "neuron_folds": mvau.neuron_folds, "synapse_folds": mvau.synapse_folds,
        "accumulator_bits": mvau.accumulator_bits, "dsp_multipliers": mvau.pe * mvau.simd if mvau.lane == "multiply"
        else 0,
        "weight_memory": {"file": weights_file, "word_bits": word_bits, "depth": depth,
                          "style": memory_style(depth), "sha256": _sha256(files[weights_file])},
        **abc,
    }


def _window_entry(unit: WindowUnit) -> dict:
    depth = unit.buffer_rows * unit.width * unit.channels // unit.simd
    return {"kernel": unit.kernel, "stride": unit.stride, "padding": unit.padding, "pad_element": unit.pad_value,
            "buffer_rows": unit.buffer_rows, "buffer": {"depth": depth, "style": memory_style(depth, writable=True)}}


def _fifo_entry(edge: str, fifo: StreamFifo) -> dict:
    depth = fifo.memory_depth
    return {"edge": edge, "depth": fifo.depth, "elements": fifo.elements, "element_bits": fifo.element.width,
            "memory_bits": depth * fifo.elements * fifo.element.width,
            "style": memory_style(depth, writable=True) if depth else "registers"}


def _layer_entries(graph: Graph, design: MappedDesign, files: dict[str, str]) -> tuple[list, list, list]:
    """(one entry per Dense, one per Pool, one per residual add). A value's threshold units are its readers': a
    value several quantizers read (a residual block's input) has a "threshold" and "forked_thresholds"."""
    types = check_graph(graph)
    units = {stage.node: stage.component for stage in design.stages if stage.node is not None}
    producers = {node.name: node for node in graph.nodes}

    def thresholds(value: str) -> list[MultiThreshold]:
        return [node for node in graph.readers(value) if isinstance(node, MultiThreshold)]

    def with_thresholds(entry: dict, value: str) -> dict:
        readers = thresholds(value)
        entry["output"] = data_type_name(readers[0].dtype if readers else types[value].dtype)
        if readers:
            entry["threshold"] = _threshold_entry(readers[0], units[readers[0].name], files)
        if len(readers) > 1:
            entry["forked_thresholds"] = [_threshold_entry(node, units[node.name], files) for node in readers[1:]]
        return entry

    layers, pools, adds = [], [], []
    for node in graph.nodes:
        if isinstance(node, Pool):
            readers = thresholds(node.name)
            pools.append({"name": node.name, "kind": node.kind, "kernel": node.kernel, "stride": node.stride,
                          "padding": node.padding, "simd": node.simd, "output": data_type_name(types[node.name].dtype),
                          "window": _window_entry(units[f"{node.name}.window"]),
                          "threshold": readers[0].name if readers else None})
        elif isinstance(node, Dense):
            entry = with_thresholds(_layer_entry(node, units[node.name], types, files), node.name)
            if isinstance(producers.get(node.inputs[0]), SlidingWindow):
                entry["window"] = _window_entry(units[node.inputs[0]])
            entry["pixels"] = units[node.name].vectors
            layers.append(entry)
        elif isinstance(node, ElementwiseAdd):
            channels, height, width = types[node.name].shape
            fifos = [_fifo_entry(edge, design.stages[index].component) for index, edge in design.bypass_fifos
                     if edge.endswith(f" -> {node.name}")]
            adds.append(with_thresholds({"name": node.name, "inputs": list(node.inputs), "simd": node.simd,
                                         "pixels": height * width, "channels": channels,
                                         "sum": data_type_name(types[node.name].dtype), "bypass_fifos": fifos},
                                        node.name))
    return layers, pools, adds


def write_build(graph: Graph, out_dir: str | pathlib.Path, board: Board, model_config: Mapping,
                checkpoint: str | pathlib.Path | None = None, fit_check: bool = True,
                entries: Mapping[str, object] | None = None, reference_files: Mapping[str, bytes] | None = None
                ) -> dict:
    """Writes the whole folder next to OUT, then swaps it in: a failure leaves no half-written build.

    A design over the board's budget is an error (BoardBudgetError); with fit_check=False it is built anyway, for
    co-simulation and resource reports, and the manifest's "fits_board" says why it does not fit. entries: more
    manifest entries ("qonnx", "brevitas": what hbnn.sim.qonnx_reference reads), reference_files: the files they
    name (the cleaned graph, the weights)."""
    out_dir = pathlib.Path(out_dir)
    types = check_graph(graph)
    design = map_design(graph)
    stages = list(design.stages)
    try:
        resources, misfit = check_board(stages, board), None
    except BoardBudgetError as error:
        if fit_check:
            raise
        resources, misfit = node_resources(stages), str(error)
    analysis = Forked(estimate_cycles, design)  # overlaps Verilog emission (compiler/forked.py)
    try:
        files: dict[str, str] = {VERILOG: emit_verilog(design.accelerator())}
        layers, pools, adds = _layer_entries(graph, design, files)
    except BaseException:
        analysis.cancel()
        raise
    cycles: CycleEstimate = analysis.result()
    (input_name, input_tensor), = graph.inputs
    output_name, = graph.outputs
    output_type = types[output_name].dtype
    input_format, output_format = stream_formats(graph, design)
    layer = input_layer_of(graph)
    manifest = {
        "format": "hbnn-build", "version": MANIFEST_VERSION, "hbnn_version": __version__,
        "top": TOP_NAME, "verilog": VERILOG, "verilog_sha256": _sha256(files[VERILOG]),
        "board": board.as_dict(),
        "fits_board": {"fits": misfit is None, "why_not": misfit,
                       "meaning": "hbnn.compiler.budget's estimate; a design that does not fit was built with "
                                  "--no-fit-check, for co-simulation and resource reports only"},
        "model": dict(model_config),
        "checkpoint": CHECKPOINT if checkpoint is not None else None,
        **dict(entries or {}),
        "input": {**input_format.as_dict(), "packing": STREAM_PACKING, "value": input_name,
                  "quantizer": {"layer": layer, "codes": data_type_name(input_tensor.dtype)},
                  "exponent": getattr(input_tensor.dtype, "exponent", 0)},
        "output": {**output_format.as_dict(), "packing": STREAM_PACKING, "value": output_name,
                   "codes": data_type_name(output_type), "exponent": output_type.exponent,
                   "divisor": graph.divisor_of(output_name),
                   "meaning": "each output value is code * 2**exponent / divisor (the divisor is an average pool's "
                              "area, 1 without one), computed in float64; PyTorch's float32 output is that value "
                              "rounded once to float32"},
        "clock_reset": {"clock": "clk", "reset": "rst (synchronous, active high)"},
        "layers": layers,
        "pools": pools,
        "residual_adds": adds,
        "dsp_multipliers": sum(entry["dsp_multipliers"] for entry in layers),
        "estimates": {"bram36": sum(node.bram36 for node in resources),
                      "lane_luts": round(sum(node.lane_luts for node in resources)),
                      "per_node": [{"node": node.node, "dsps": node.dsps, "bram36": node.bram36,
                                    "lane_luts": round(node.lane_luts)} for node in resources],
                      "meaning": "hbnn.compiler.budget: DSPs exact; block RAM and the lanes' LUTs estimated"},
        "cycles": cycles.as_dict(),
    }
    files[MANIFEST] = json.dumps(manifest, indent=2) + "\n"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        if checkpoint is not None:
            shutil.copyfile(checkpoint, staging / CHECKPOINT)
        for relative, content in (reference_files or {}).items():
            (staging / relative).write_bytes(content)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def compile_checkpoint(checkpoint: str | pathlib.Path, out_dir: str | pathlib.Path, board: Board,
                       folding: Mapping[str, Folding] | None = None,
                       target_cycles: int = DEFAULT_TARGET_CYCLES, fit_check: bool = True) -> tuple[Graph, dict]:
    """`hbnn compile` of a checkpoint."""
    model, _ = load_checkpoint(checkpoint)
    graph = compile_for_board(lower_model(model), board, folding, target_cycles, fit_check)
    return graph, write_build(graph, out_dir, board, model.config(), checkpoint, fit_check)


def compile_for_board(graph: Graph, board: Board, folding: Mapping[str, Folding] | None, target_cycles: int,
                      fit_check: bool) -> Graph:
    """The passes with the board's budgets. With fit_check=False a design that does not fit the board is built
    anyway (write_build), and at the folding the DSP and LUT budgets give: the block-RAM budget's slower folding is
    for fitting, and a design that does not fit gains nothing from it but a longer co-simulation."""
    budgets = {"dsp_budget": board.dsps, "lut_budget": int(board.luts * LANE_LUT_SHARE)}
    compiled = compile_graph(graph, folding, target_cycles, **budgets, bram_budget=board.bram36 * WEIGHT_BRAM_SHARE)
    if not fit_check and not _fits(compiled, board):
        compiled = compile_graph(graph, folding, target_cycles, **budgets)
    return compiled


def compile_qonnx(path: str | pathlib.Path, out_dir: str | pathlib.Path, board: Board,
                  folding: Mapping[str, Folding] | None = None, target_cycles: int = DEFAULT_TARGET_CYCLES,
                  fit_check: bool = True) -> tuple[Graph, dict]:
    """`hbnn compile MODEL.onnx`: a QONNX graph (hbnn.compiler.qonnx_import), compiled as a checkpoint is; the build
    keeps the cleaned graph, which `hbnn sim` runs with execute_onnx as the reference."""
    return _compile_lowered(load_qonnx(path), None, pathlib.Path(path).name, out_dir, board, folding, target_cycles,
                            fit_check)


def compile_brevitas(network: str, out_dir: str | pathlib.Path, board: Board,
                     folding: Mapping[str, Folding] | None = None, target_cycles: int = DEFAULT_TARGET_CYCLES,
                     fit_check: bool = True, weights: str | pathlib.Path | None = None,
                     seed: int = 0) -> tuple[Graph, dict]:
    """`hbnn compile bnn_pynq:NETWORK [--weights W]`: one of Brevitas' bnn_pynq networks as PyTorch, its weights from
    W (a state dict, loaded with weights_only) or random (seeded); thresholds exact against PyTorch
    (hbnn.compiler.brevitas_import), and `hbnn sim` compares with the PyTorch model."""
    from ..quant.bnn_pynq import bnn_pynq_model, export_model, load_brevitas_weights
    from .brevitas_import import torch_evaluator

    model = bnn_pynq_model(network, seed)
    if weights is not None:
        load_brevitas_weights(model, weights)
    with tempfile.TemporaryDirectory() as folder:
        graph_path = export_model(model, network, pathlib.Path(folder) / "model.onnx")
        qonnx_model = load_qonnx(graph_path)
    state = io.BytesIO()
    torch.save(model.state_dict(), state)
    brevitas = {"network": network, "weights": BREVITAS_WEIGHTS, "source": str(weights) if weights else None,
                "seed": None if weights else seed,
                "meaning": "the PyTorch model (brevitas_examples.bnn_pynq) with these weights is the reference"}
    return _compile_lowered(qonnx_model, torch_evaluator, f"bnn_pynq:{network}", out_dir, board, folding,
                            target_cycles, fit_check, {"brevitas": brevitas}, {BREVITAS_WEIGHTS: state.getvalue()})


def _compile_lowered(model, evaluator, source: str, out_dir, board: Board, folding, target_cycles, fit_check,
                     entries=None, files=None) -> tuple[Graph, dict]:
    lowering = lower_qonnx(model, evaluator)
    graph = compile_for_board(lowering.graph, board, folding, target_cycles, fit_check)
    entry = {"source": source, "file": QONNX_MODEL, "input_tensor": lowering.input_tensor,
             "input_scale": lowering.input_scale, "output_tensor": lowering.output_tensor,
             "output_scale": [float(value) for value in lowering.output_scale],
             "host_tail": list(lowering.host_tail),
             "meaning": "input codes = input_tensor / input_scale; the hardware outputs output_tensor / output_scale "
                        "(exact integers); the host runs host_tail's nodes on the rest; the reference is "
                        "qonnx.core.onnx_exec.execute_onnx on file"}
    config = {"format": "qonnx", "source": source}
    return graph, write_build(graph, out_dir, board, config, None, fit_check, {"qonnx": entry, **(entries or {})},
                              {QONNX_MODEL: model.model.SerializeToString(), **(files or {})})


def _fits(graph: Graph, board: Board) -> bool:
    stages = list(map_design(graph).stages)
    for stage in stages:
        stage.component._MustUse__silence = True  # priced, never elaborated: not a forgotten design
    try:
        check_board(stages, board)
    except BoardBudgetError:
        return False
    return True


def read_manifest(build_dir: str | pathlib.Path) -> dict:
    path = pathlib.Path(build_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {build_dir} is not an hbnn build folder "
                                "(make one with `hbnn compile CHECKPOINT --out DIR`)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if manifest.get("format") != "hbnn-build":
        raise ValueError(f"{path} is not an hbnn build manifest")
    if manifest.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{path} is a version-{manifest.get('version')} build folder; this hbnn reads version "
                         f"{MANIFEST_VERSION}: compile the checkpoint again (`hbnn compile`)")
    return manifest
