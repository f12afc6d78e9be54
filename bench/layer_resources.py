"""Where a compiled network's resources go: each layer synthesized alone with Yosys (hbnn.compiler.layer_synthesis).

    .venv/bin/python bench/layer_resources.py CHECKPOINT [CHECKPOINT ...] [--board pynq-z2] [--out runs/layers]

Compiles each checkpoint as `hbnn compile` does for the board (default folding), then synthesizes every layer's
stages (its sliding window, FIFO and width converter in front, its matrix-vector unit or pool, and the threshold
unit after it) as a design of its own, and prints one markdown table per checkpoint: PE x SIMD, lane kind, cycles
per image, Yosys' LUT / FF / DSP / BRAM36, and the layer's share of the layers' LUTs. The layers' sum is close to,
not equal to, the whole design's flattened synthesis (the module docstring of hbnn.compiler.layer_synthesis says why).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time
import warnings

from hbnn.boards import get_board
from hbnn.compiler.check import check_graph
from hbnn.compiler.ir import Bipolar, Dense, Pool
from hbnn.compiler.layer_synthesis import synthesize_layers
from hbnn.compiler.passes.set_folding import LANE_LUT_SHARE, WEIGHT_BRAM_SHARE, layer_cycles, layer_shapes
from hbnn.compiler.pipeline import compile_model
from hbnn.quant.checkpoint import load_checkpoint


def layer_table(graph, results) -> str:
    shapes, types = layer_shapes(graph), check_graph(graph)
    nodes = {node.name: node for node in graph.nodes}
    total_luts = sum(resources.luts for _, resources in results) or 1
    lines = ["| layer | PE x SIMD | lanes | cycles per image | LUT | FF | DSP | BRAM36 | share of LUTs |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, resources in results:
        node = nodes[name]
        if isinstance(node, Dense):
            folding = f"{node.folding.pe} x {node.folding.simd}"
            lanes = ("multiply" if node.weight_kind == "int8" else
                     "XNOR-popcount" if isinstance(types[node.inputs[0]].dtype, Bipolar) else "add/subtract")
            cycles = f"{layer_cycles(shapes[name], node.folding):,}"
        elif isinstance(node, Pool):
            folding, lanes, cycles = f"SIMD {node.simd}", f"{node.kind} pool", ""
        else:
            folding = lanes = cycles = ""
        lines.append(f"| {name} | {folding} | {lanes} | {cycles} | {resources.luts:,} | {resources.flip_flops:,} | "
                     f"{resources.dsps} | {resources.bram36:g} | {100 * resources.luts / total_luts:.0f}% |")
    total = [sum(getattr(resources, field) for _, resources in results)
             for field in ("luts", "flip_flops", "dsps", "bram36")]
    lines.append(f"| sum of the layers | | | | {total[0]:,} | {total[1]:,} | {total[2]} | {total[3]:g} | 100% |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=pathlib.Path)
    parser.add_argument("--board", default="pynq-z2")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/layers"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    board = get_board(args.board)
    for checkpoint in args.checkpoints:
        model, _ = load_checkpoint(checkpoint)
        graph = compile_model(model, dsp_budget=board.dsps, lut_budget=int(board.luts * LANE_LUT_SHARE),
                              bram_budget=board.bram36 * WEIGHT_BRAM_SHARE)
        started = time.monotonic()
        results = synthesize_layers(graph, board.yosys_family, args.out / checkpoint.stem,
                                    progress=lambda text: print(f"  {text}", file=sys.stderr, flush=True))
        print(f"\n{checkpoint} on {board.name}, each layer synthesized alone ({time.monotonic() - started:.0f} s):\n")
        print(layer_table(graph, results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
