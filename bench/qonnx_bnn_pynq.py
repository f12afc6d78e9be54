"""Brevitas' bnn_pynq networks (the models FINN users train) through hbnn, from their QONNX export and as PyTorch.

    .venv/bin/python bench/qonnx_bnn_pynq.py [--networks tfc_1w1a,...] [--images 1000] [--conv-images 100]
                                             [--board pynq-z2] [--out runs/qonnx-bnn-pynq]

For each network: random weights and drawn batch-norm statistics (hbnn.quant.bnn_pynq), exported with Brevitas'
export_qonnx; `hbnn compile NET.onnx` (the reference: execute_onnx on the graph) and `hbnn compile bnn_pynq:NET`
(the reference: the PyTorch model), both at the default folding; whether the two give byte-identical Verilog; then
each build co-simulated in Verilator on random pixels (--images, --conv-images for CNV), undisturbed and with random
back-pressure, every output compared as an integer, latency and interval against the analysis. Prints one row per
network and form.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import warnings

import numpy as np

from hbnn.boards import get_board
from hbnn.compiler.budget import BoardBudgetError
from hbnn.compiler.build import compile_brevitas, compile_qonnx
from hbnn.quant.bnn_pynq import BNN_PYNQ_NETWORKS, export_bnn_pynq
from hbnn.sim.verify import verify_build
from markdown_table import print_table  # bench/, next to this script

HEADER = ("| network | form | compile s | layers (lanes, PE x SIMD) | images | mismatches (2 runs) | latency measured = "
          "analytical | interval measured = analytical | Verilog identical to the other form |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", default=",".join(BNN_PYNQ_NETWORKS))
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--conv-images", type=int, default=100)
    parser.add_argument("--board", default="pynq-z2")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/qonnx-bnn-pynq"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    board = get_board(args.board)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.networks.split(","):
        graph = export_bnn_pynq(name, args.out / f"{name}.onnx", seed=0)
        builds = {}
        try:
            for form, compile_form in (("QONNX", lambda out: compile_qonnx(graph, out, board)),
                                       ("PyTorch", lambda out: compile_brevitas(name, out, board, seed=0))):
                started = time.monotonic()
                _, manifest = compile_form(args.out / f"{name}-{form.lower()}")
                builds[form] = (manifest, time.monotonic() - started)
        except BoardBudgetError as error:
            rows.append(f"| {name} | both | - | does not fit {board.name}: {error} | | | | | |")
            print(rows[-1], flush=True)
            continue
        same = builds["QONNX"][0]["verilog_sha256"] == builds["PyTorch"][0]["verilog_sha256"]
        count = args.conv_images if name.startswith("cnv") else args.images
        pixels = 3 * 32 * 32 if name.startswith("cnv") else 28 * 28
        x = np.random.default_rng(1).random((count, pixels), dtype=np.float32)
        for form, (manifest, seconds) in builds.items():
            build = args.out / f"{name}-{form.lower()}"
            result = verify_build(build, x, engine="verilator", seed=0, log=lambda *_: None)
            (build / "sim.json").write_text(json.dumps({**result.as_dict(), "dataset": "random"}, indent=2) + "\n")
            layers = " / ".join(f"{layer['name']} {layer['lane']} {layer['pe']}x{layer['simd']}"
                                for layer in manifest["layers"])
            rows.append(f"| {name} | {form} | {seconds:.1f} | {layers} | {result.images} | {result.mismatches} | "
                        f"{result.latency:,} = {result.predicted_latency:,} | {result.initiation_interval:,} = "
                        f"{result.predicted_initiation_interval:,} | {'yes' if same else 'no'} |")
            print(rows[-1], flush=True)
    print_table(HEADER, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
