"""Writes a build folder: Verilog, weight and threshold memory images, the checkpoint, and a manifest.

Layout of BUILD/:
  hbnn_top.v                 the accelerator (Amaranth -> Verilog), top module `hbnn_top`
  memories/<layer>.weights.hex    one word per line, address order (see hbnn.hw.xnor_popcount.weight_words)
  memories/<layer>.thresholds.hex popcount thresholds, one word per neuron fold
  model.pt                   the checkpoint it was compiled from (for `hbnn sim`)
  manifest.json              layers, folding, data types, stream formats, cycle model, board; no timestamps or
                             absolute paths, so the same model and options give byte-identical folders.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
from collections.abc import Mapping

from .. import __version__
from ..boards import Board
from ..hw.layout import StreamFormat
from ..hw.xnor_popcount import threshold_width, threshold_words, weight_words
from ..quant.checkpoint import load_checkpoint
from .cycles import estimate_cycles
from .ir import Bipolar, Folding, Graph, XnorPopcount, accumulator_width
from .map_to_hardware import TOP_NAME, emit_verilog
from .pipeline import compile_model
from .set_folding import DEFAULT_TARGET_CYCLES

__all__ = ["MANIFEST", "VERILOG", "CHECKPOINT", "compile_checkpoint", "write_build", "read_manifest"]

MANIFEST = "manifest.json"
VERILOG = f"{TOP_NAME}.v"
CHECKPOINT = "model.pt"
MANIFEST_VERSION = 2  # 2: stream formats with element kinds and transfers per image
STREAM_PACKING = ("an image is `transfers` transfers; element i of a transfer in bits [i*element_bits, "
                  "(i+1)*element_bits) of the payload, two's complement when signed; bipolar: 1 means +1")


def _hex_lines(words: list[int], width: int) -> str:
    digits = max(1, -(-width // 4))
    return "".join(f"{word:0{digits}x}\n" for word in words)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _layer_entry(node: XnorPopcount, memories: pathlib.Path) -> dict:
    pe, simd = node.folding.pe, node.folding.simd
    weights_hex = _hex_lines(weight_words(node.weight_bits, pe, simd), pe * simd)
    (memories / f"{node.name}.weights.hex").write_text(weights_hex)
    entry = {
        "name": node.name, "type": "xnor_popcount", "in_features": node.in_features,
        "out_features": node.out_features, "pe": pe, "simd": simd,
        "neuron_folds": node.out_features // pe, "synapse_folds": node.in_features // simd,
        "weights": {"file": f"memories/{node.name}.weights.hex", "word_bits": pe * simd,
                    "depth": (node.out_features // pe) * (node.in_features // simd), "sha256": _sha256(weights_hex)},
    }
    if node.thresholds is not None:
        width = threshold_width(node.in_features)
        thresholds_hex = _hex_lines(threshold_words(node.thresholds, pe, width), pe * width)
        (memories / f"{node.name}.thresholds.hex").write_text(thresholds_hex)
        entry["thresholds"] = {"file": f"memories/{node.name}.thresholds.hex", "word_bits": pe * width,
                               "depth": node.out_features // pe, "sha256": _sha256(thresholds_hex)}
        entry["output"] = {"type": "bipolar", "width": node.out_features}
    else:
        entry["output"] = {"type": "int", "signed": True, "lane_bits": accumulator_width(node.in_features),
                           "lanes": node.out_features}
    return entry


def write_build(graph: Graph, out_dir: str | pathlib.Path, board: Board, model_config: Mapping,
                checkpoint: str | pathlib.Path | None = None) -> dict:
    out_dir = pathlib.Path(out_dir)
    memories = out_dir / "memories"
    memories.mkdir(parents=True, exist_ok=True)
    verilog = emit_verilog(graph)
    (out_dir / VERILOG).write_text(verilog)
    layers = [_layer_entry(node, memories) for node in graph.nodes]
    last = graph.nodes[-1]
    if last.output_type == Bipolar():
        output = StreamFormat("bipolar", last.out_features)
    else:
        output = StreamFormat("signed" if last.output_type.signed else "unsigned", last.out_features,
                              last.output_type.width)
    manifest = {
        "format": "hbnn-build", "version": MANIFEST_VERSION, "hbnn_version": __version__,
        "top": TOP_NAME, "verilog": VERILOG, "verilog_sha256": _sha256(verilog),
        "board": board.as_dict(),
        "model": dict(model_config),
        "checkpoint": CHECKPOINT if checkpoint is not None else None,
        "input": {**StreamFormat("bipolar", graph.input_width).as_dict(), "packing": STREAM_PACKING},
        "output": {**output.as_dict(), "packing": STREAM_PACKING},
        "clock_reset": {"clock": "clk", "reset": "rst (synchronous, active high)"},
        "layers": layers,
        "cycles": estimate_cycles(graph).as_dict(),
    }
    if checkpoint is not None:
        shutil.copyfile(checkpoint, out_dir / CHECKPOINT)
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def compile_checkpoint(checkpoint: str | pathlib.Path, out_dir: str | pathlib.Path, board: Board,
                       folding: Mapping[str, Folding] | None = None,
                       target_cycles: int = DEFAULT_TARGET_CYCLES) -> tuple[Graph, dict]:
    model, _ = load_checkpoint(checkpoint)
    graph = compile_model(model, folding, target_cycles)
    return graph, write_build(graph, out_dir, board, model.config(), checkpoint)


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
