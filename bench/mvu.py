"""Matrix-vector unit resources per lane kind: each shape synthesized alone with Yosys synth_xilinx -family xc7.

    .venv/bin/python bench/mvu.py [--only binary|add_subtract|multiply]

- binary (XNOR-popcount lanes) at the shapes (MW, MH, PE, SIMD) = (1024, 1024, 32, 64), (1024, 1024, 32, 32),
  (256, 256, 16, 16), (576, 64, 16, 32): binary MACs per logic LUT per cycle (PE * SIMD / LUT), weights where
  Yosys puts them (BRAM when deep);
- add/subtract lanes (binary weights x int8 inputs): logic LUTs per lane;
- multiply lanes (int8 x int8): DSP48E1 slices, int8 MACs per DSP per cycle, logic LUTs per lane.
Random weights, seeded. Figures, not assertions.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
from amaranth.back import verilog

from hbnn.hw.mvau import Mvau
from hbnn.hw.synthesis import synthesize

BINARY_SHAPES = [(1024, 1024, 32, 64), (1024, 1024, 32, 32), (256, 256, 16, 16), (576, 64, 16, 32)]
ADD_SUBTRACT_SHAPES = [(64, 64, 4, 8), (256, 64, 8, 16)]
MULTIPLY_SHAPES = [(64, 64, 4, 8), (64, 64, 8, 8)]


def synthesized(component, work: pathlib.Path, name: str):
    path = work / f"{name}.v"
    path.write_text(verilog.convert(component, name="top", emit_src=False))
    started = time.monotonic()
    resources = synthesize(path, "top", "xc7", log_path=work / f"{name}.log")
    return resources, time.monotonic() - started


def weights_of(rng, kind, rows, columns):
    if kind == "binary":
        return np.where(rng.random((rows, columns)) < 0.5, 1, -1)
    return rng.integers(-128, 128, (rows, columns))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["binary", "add_subtract", "multiply"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'lanes':<14} {'MW':>5} {'MH':>5} {'PE':>3} {'SIMD':>4}  {'LUT':>6} {'LUTRAM':>6} {'FF':>6} "
          f"{'CARRY':>5} {'BRAM36':>6} {'DSP':>4}  {'figure':<28} {'synth s':>7}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hbnn-bench-mvu-") as work:
        work = pathlib.Path(work)
        plan = []
        if args.only in (None, "binary"):
            plan += [("xnor_popcount", "binary", "bipolar", shape) for shape in BINARY_SHAPES]
        if args.only in (None, "add_subtract"):
            plan += [("add_subtract", "binary", "int8", shape) for shape in ADD_SUBTRACT_SHAPES]
        if args.only in (None, "multiply"):
            plan += [("multiply", "int8", "int8", shape) for shape in MULTIPLY_SHAPES]
        for label, weight_kind, input_kind, (columns, rows, pe, simd) in plan:
            weights = weights_of(rng, weight_kind, rows, columns)
            component = Mvau(weights=weights, weight_kind=weight_kind, input_kind=input_kind, pe=pe, simd=simd)
            resources, seconds = synthesized(component, work, f"{label}_{columns}_{rows}_{pe}_{simd}")
            lanes = pe * simd
            if weight_kind == "int8":
                figure = (f"{lanes / max(resources.dsps, 1):.2f} MAC/DSP/cycle, "
                          f"{resources.luts / lanes:.1f} LUT/lane")
            elif input_kind == "int8":
                figure = f"{resources.luts / lanes:.2f} LUT/lane"
            else:
                figure = f"{lanes / resources.luts:.3f} MAC/LUT/cycle"
            print(f"{label:<14} {columns:>5} {rows:>5} {pe:>3} {simd:>4}  {resources.luts:>6} "
                  f"{resources.lutram:>6} {resources.flip_flops:>6} {resources.carry:>5} {resources.bram36:>6} "
                  f"{resources.dsps:>4}  {figure:<28} {seconds:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
