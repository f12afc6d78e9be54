"""FINN beside hbnn on the same QONNX graphs: FINN's analytical estimates and folding against hbnn's measured cycles
and Yosys resources (docs/finn-comparison.md).

    make finn-env        # FINN (finn-plus from PyPI) in .finn-venv, apart from hbnn's environment
    .venv/bin/python bench/finn_compare.py [--out runs/finn-compare] [--images 4] [--no-synthesis]
                                           [--cases tfc_1w1a@3125000,cnv_1w1a@3052,cnv_1w1a@12071]

For each case (Brevitas' bnn_pynq TFC and CNV, 1w1a, random weights, exported with export_qonnx; a target frame
rate at 100 MHz on the PYNQ-Z2): FINN's own build steps up to its estimate reports, with its SetFolding for the
target (bench/finn_estimates.py, run in .finn-venv: per-layer PE/SIMD, cycles and LUT/BRAM/DSP from each layer's
analytical estimate; no Vivado), and hbnn's compile of the same .onnx at the same cycle target, co-simulated on
--images random images (cycles measured) and synthesized with Yosys (`synth_xilinx -family xc7`).

The two sides count different things, and the table says so: FINN's LUTs are its formulas' estimate of Vivado's,
hbnn's are Yosys' mapped LUTs (Vivado reads 1.5-2.3x fewer on BNN-PYNQ's CNV); FINN adds its uint8 input thresholds
and a top-1 label select in hardware, hbnn's input stream carries the input quantizer's codes and outputs the
last layer's integers.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import subprocess
import sys
import time
import warnings

import numpy as np

from hbnn.boards import get_board
from hbnn.compiler.build import compile_qonnx
from hbnn.hw.synthesis import synthesize
from hbnn.quant.bnn_pynq import export_bnn_pynq
from hbnn.sim.verify import verify_build
from markdown_table import print_table  # bench/, next to this script

FINN_PYTHON = pathlib.Path(".finn-venv/bin/python")
CASES = (("tfc_1w1a", 3_125_000.0), ("cnv_1w1a", 3_052.0), ("cnv_1w1a", 12_071.0))  # (network, frames/s)
CLOCK_HZ = 100e6
HEADER = ("| network | target images/s (cycles) | FINN cycles (slowest layer) | hbnn cycles measured = analytical "
          "| FINN LUT (estimate) | hbnn LUT (Yosys) | FINN BRAM36 | hbnn BRAM36 | FINN DSP | hbnn DSP | "
          "hbnn compile s | FINN estimate s |")


def finn_estimates(graph: pathlib.Path, fps: float, out: pathlib.Path) -> dict:
    if not FINN_PYTHON.exists():
        raise SystemExit("FINN's environment is missing: run `make finn-env` first")
    command = [str(FINN_PYTHON), "bench/finn_estimates.py", str(graph), "--target-fps", str(fps), "--board",
               "Pynq-Z2", "--clock-ns", "10", "--out", str(out), "--workdir", str(out.with_suffix(""))]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"FINN's estimate flow failed on {graph} ({' '.join(command)}):\n{run.stderr[-3000:]}")
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/finn-compare"))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--no-synthesis", action="store_true")
    parser.add_argument("--cases", default=",".join(f"{network}@{fps:.0f}" for network, fps in CASES),
                        help="NETWORK@IMAGES_PER_SECOND[,...] (default: %(default)s)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    board = get_board("pynq-z2")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for case in args.cases.split(","):
        network, fps = case.split("@")[0], float(case.split("@")[1])
        graph = args.out / f"{network}.onnx"
        if not graph.exists():
            export_bnn_pynq(network, graph, seed=0)
        target = int(CLOCK_HZ / fps)
        name = f"{network}-{int(fps)}"
        started = time.monotonic()
        finn = finn_estimates(graph, fps, args.out / f"{name}.finn.json")
        finn_seconds = time.monotonic() - started

        started = time.monotonic()
        _, manifest = compile_qonnx(graph, args.out / f"{name}-build", board, target_cycles=target)
        compile_seconds = time.monotonic() - started
        pixels = 3 * 32 * 32 if network.startswith("cnv") else 28 * 28
        x = np.random.default_rng(1).random((args.images, pixels), dtype=np.float32)
        result = verify_build(args.out / f"{name}-build", x, backpressure=False, engine="verilator",
                              log=lambda *_: None)
        if not result.passed:
            raise SystemExit(f"{name}: hbnn's co-simulation is not bit-exact or its cycles are off: {result}")
        if args.no_synthesis:
            luts = bram = dsps = "-"
        else:
            build = args.out / f"{name}-build"
            resources = synthesize(build / manifest["verilog"], manifest["top"], board.yosys_family,
                                   log_path=build / "yosys.log")
            (build / "report.json").write_text(json.dumps(resources.as_dict(), indent=2) + "\n")
            luts, bram, dsps = f"{resources.luts:,}", f"{resources.bram36:g}", resources.dsps
        totals = finn["totals"]
        rows.append(f"| {network} | {fps:,.0f} ({target:,}) | {totals['max_cycles']:,} ({totals['max_cycles_node']}) | "
                    f"{result.initiation_interval:,} = {math.ceil(result.predicted_initiation_interval):,} | "
                    f"{totals['LUT']:,.0f} | {luts} | {totals['BRAM_18K'] / 2:g} | {bram} | {totals['DSP']:.0f} | "
                    f"{dsps} | {compile_seconds:.1f} | {finn_seconds:.0f} |")
        print(rows[-1], flush=True)
    print_table(HEADER, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
