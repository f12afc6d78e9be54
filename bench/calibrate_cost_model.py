"""Calibrates the LUT estimate of hbnn.compiler.cost_model against real synthesis, and checks it on held-out designs.

    .venv/bin/python bench/calibrate_cost_model.py [--jobs 2] [--skip-validation] [--cache FILE]

Each design is a plan (precisions, layer widths, target cycles). A calibration design is built as the cost model
builds it (cost_model.dummy_graph: random weight codes and thresholds, seed 0, folded by set_folding, mapped by
map_to_hardware.map_stages); single layers of each lane kind, layer pairs and whole networks. The held-out set has
more of those and, marked "compiled", trained-like networks: hbnn.sim.fuzz.random_stack models (random batch norms,
ReLU in front of int8 layers) lowered and compiled by the compiler, priced by network_cost from their plan alone,
so their error includes the dummy thresholds'. Every design is synthesized with Yosys (synth_xilinx -family xc7
-flatten, hbnn.hw.synthesis); the cost model's terms (cost_model.lut_terms) are fitted by non-negative least
squares on relative error over the calibration set. Prints, per design, measured logic LUTs, the estimate with the
fitted coefficients and with the coefficients cost_model.py holds now, their errors, measured vs estimated DSPs and
BRAM36, and the maximum relative errors. Figures, not assertions. --cache keeps the syntheses in a JSON file, so
that a re-fit does not synthesize again; it ends with the coefficients and the table in the form cost_model.py
holds them. On 2 cores with --jobs 2: 11 minutes in all (34 syntheses).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from hbnn.compiler import cost_model
from hbnn.compiler.lower import lower_model
from hbnn.compiler.map_to_hardware import TOP_NAME, emit_verilog, map_stages
from hbnn.compiler.passes.set_folding import set_folding
from hbnn.compiler.pipeline import compile_graph
from hbnn.hw.dataflow import Dataflow
from hbnn.hw.synthesis import synthesize
from hbnn.quant.precision import Precision
from hbnn.sim.fuzz import random_stack

SHORT = {"binary": "bin", "weight-binary": "wb", "int8": "int8", "binary+alpha": "bin+a",
         "weight-binary+alpha": "wb+a"}


@dataclass(frozen=True)
class Design:
    precisions: tuple[str, ...]
    sizes: tuple[int, ...]
    target_cycles: int
    compiled: bool = False  # a random_stack model through the compiler, not the cost model's dummy graph

    @property
    def plan(self) -> list[cost_model.LayerDescription]:
        return [(f"fcs.{index}", "linear", Precision.parse(precision), width_in, width_out)
                for index, (precision, width_in, width_out) in enumerate(zip(self.precisions, self.sizes,
                                                                              self.sizes[1:]))]

    def stages(self, elaborated: bool = True):
        """The mapped stages; elaborated=False silences Amaranth's warning for components only analysed."""
        if self.compiled:
            graph = compile_graph(lower_model(random_stack(self.precisions, self.sizes, seed=0)), None,
                                  self.target_cycles)
        else:
            graph = set_folding(cost_model.dummy_graph(self.plan), target_cycles=self.target_cycles)
        stages = map_stages(graph)
        if not elaborated:
            for stage in stages:
                stage.component._MustUse__silence = True
        return stages

    @property
    def label(self) -> str:
        folds = " ".join(f"{layer.pe}x{layer.simd}" for layer in cost_model.network_cost(
            self.plan, self.target_cycles).layers)
        kinds = ",".join(SHORT[p] for p in self.precisions)
        return (f"{'compiled ' if self.compiled else ''}{kinds} {'-'.join(map(str, self.sizes))} "
                f"@{self.target_cycles} ({folds})")


def single(precision: str, width_in: int, width_out: int, target: int) -> Design:
    return Design((precision,), (width_in, width_out), target)


# Single layers of each lane kind span lanes 8..1024 and weight ROMs in LUTs and in block RAM; pairs add a threshold
# unit (sign or int8), a width converter and a FIFO; networks chain the three lane kinds.
CALIBRATION = (
    single("binary", 64, 64, 64),
    single("binary", 64, 64, 16),
    single("binary", 64, 64, 4),
    single("binary", 64, 64, 256),
    single("binary", 256, 64, 32),
    single("binary", 128, 128, 16),
    single("weight-binary", 64, 64, 128),
    single("weight-binary", 64, 64, 32),
    single("weight-binary", 32, 32, 8),
    single("weight-binary", 128, 16, 128),
    single("int8", 64, 64, 64),
    single("int8", 64, 64, 512),
    single("int8", 32, 32, 16),
    single("int8", 128, 16, 32),
    Design(("binary", "binary"), (64, 64, 10), 16),
    Design(("binary", "weight-binary"), (64, 32, 10), 32),
    Design(("int8", "int8"), (64, 32, 10), 64),
    Design(("weight-binary", "binary"), (32, 64, 10), 64),
    Design(("binary", "int8"), (64, 64, 10), 16),
    Design(("int8", "binary"), (32, 64, 10), 8),
    Design(("weight-binary", "weight-binary"), (64, 32, 10), 16),
    Design(("binary", "binary", "binary"), (64, 128, 128, 10), 32),
    Design(("int8", "weight-binary", "binary", "int8"), (64, 64, 64, 32, 10), 64),
)

VALIDATION = (
    single("binary", 64, 64, 32),
    single("weight-binary", 64, 64, 64),
    single("int8", 64, 64, 128),
    single("int8", 64, 32, 16),
    Design(("int8", "binary"), (32, 64, 10), 32),
    Design(("binary", "binary", "binary"), (64, 128, 128, 10), 16),
    Design(("binary", "binary", "binary"), (64, 128, 128, 10), 32, compiled=True),
    Design(("binary", "binary", "binary"), (64, 128, 128, 10), 128, compiled=True),
    Design(("int8", "weight-binary", "binary", "int8"), (64, 64, 64, 32, 10), 64, compiled=True),
    Design(("weight-binary+alpha", "binary+alpha", "int8"), (32, 64, 32, 10), 32, compiled=True),
    Design(("int8", "int8", "int8"), (64, 64, 32, 10), 128, compiled=True),
)


def measure(design: Design) -> dict:
    """Resources of the synthesized design and the synthesis time in seconds."""
    with tempfile.TemporaryDirectory(prefix="hbnn-calibrate-") as work:
        path = pathlib.Path(work) / f"{TOP_NAME}.v"
        path.write_text(emit_verilog(Dataflow([stage.component for stage in design.stages()])))
        started = time.monotonic()
        resources = synthesize(path, TOP_NAME)
        return {"luts": resources.luts, "lutram": resources.lutram, "dsps": resources.dsps,
                "bram36": resources.bram36, "seconds": time.monotonic() - started}


def terms(design: Design) -> np.ndarray:
    return np.array(cost_model.lut_terms(design.stages(elaborated=False)))


def fit(designs: list[Design], measured: list[dict]) -> tuple[float, ...]:
    """Non-negative least squares on relative errors (each row divided by its measured LUTs): the error the module
    states. Non-negative: every term is hardware that costs LUTs, and more of it must not cost fewer."""
    luts = np.array([entry["luts"] for entry in measured], dtype=float)
    dense = [index for index, name in enumerate(cost_model.LUT_TERMS) if name not in cost_model.SPATIAL_TERMS]
    matrix = np.array([terms(design) for design in designs])[:, dense] / luts[:, None]
    fitted, _ = nnls(matrix, np.ones_like(luts))
    coefficients = list(cost_model.LUT_COEFFICIENTS)  # the spatial terms: bench/calibrate_conv_cost.py's
    for index, value in zip(dense, fitted):
        coefficients[index] = round(float(value), 3)
    return tuple(coefficients)


def estimate(design: Design, coefficients: tuple[float, ...]) -> int:
    """The estimate for the design's plan: for a compiled design, what network_cost's dummy design gives."""
    plan_design = Design(design.precisions, design.sizes, design.target_cycles)
    return cost_model.estimate_luts(plan_design.stages(elaborated=False), coefficients)


def report(title: str, designs: list[Design], measured: list[dict], fitted: tuple[float, ...]) -> float:
    """Prints the table; returns the largest relative error of the fitted coefficients."""
    print(f"\n{title}")
    print(f"  {'design':<58} {'measured':>8} {'fitted':>7} {'error':>6} {'current':>7} {'error':>6}  "
          f"{'DSP':>9}  {'BRAM36':>11}  {'synth s':>7}")
    worst_fitted = worst_current = 0.0
    for design, entry in zip(designs, measured):
        luts = entry["luts"]
        new, old = estimate(design, fitted), estimate(design, cost_model.LUT_COEFFICIENTS)
        error_new, error_old = (new - luts) / luts, (old - luts) / luts
        worst_fitted, worst_current = max(worst_fitted, abs(error_new)), max(worst_current, abs(error_old))
        cost = cost_model.network_cost(design.plan, design.target_cycles)
        print(f"  {design.label:<58} {luts:>8} {new:>7} {error_new:>+6.1%} {old:>7} {error_old:>+6.1%}  "
              f"{entry['dsps']:>4} {cost.dsps:>4}  {entry['bram36']:>5g} {cost.bram36:>5g}  "
              f"{entry['seconds']:>7.1f}")
    print(f"  max relative error: {worst_fitted:.1%} (fitted coefficients), {worst_current:.1%} "
          f"(coefficients in cost_model.py)")
    return worst_fitted


def table(calibration: list[Design], validation: list[Design], measured: list[dict],
          fitted: tuple[float, ...], worst: dict[str, float]) -> None:
    """The fitted coefficients and LUT_CALIBRATION as cost_model.py holds them, to paste there."""
    print("\n# for hbnn/compiler/cost_model.py")
    for name, value in zip(cost_model.LUT_TERMS, fitted):
        if name not in cost_model.SPATIAL_TERMS:
            print(f"LUT_PER_{name.upper().removesuffix('S')} = {value}")  # xnor_lanes -> LUT_PER_XNOR_LANE
    print("LUT_CALIBRATION = (")
    groups = ["fit"] * len(calibration) + ["held out, compiled" if design.compiled else "held out"
                                           for design in validation]
    for design, entry, group in zip(calibration + validation, measured, groups):
        row = (design.precisions, design.sizes, design.target_cycles, group, entry["luts"],
               estimate(design, fitted))
        print(f"    {row!r},")
    print(")")
    print(f"LUT_MAX_ERROR = {{'fit': {worst['fit']:.3f}, 'held out': {worst['held out']:.3f}}}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="syntheses run at once (default 2)")
    parser.add_argument("--skip-validation", action="store_true", help="synthesize the calibration set only")
    parser.add_argument("--cache", type=pathlib.Path, help="JSON file of earlier syntheses, read and extended")
    args = parser.parse_args()
    calibration = list(CALIBRATION)
    validation = [] if args.skip_validation else list(VALIDATION)
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    missing = [design for design in calibration + validation if design.label not in cache]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # Yosys runs as a subprocess: threads suffice
        for design, entry in zip(missing, pool.map(measure, missing)):
            cache[design.label] = entry
            if args.cache:
                args.cache.write_text(json.dumps(cache, indent=1))
    print(f"{len(missing)} designs synthesized in {time.monotonic() - started:.0f} s")
    measured = [cache[design.label] for design in calibration + validation]
    fitted = fit(calibration, measured[:len(calibration)])
    print("fitted coefficients (" + ", ".join(f"{name} {value:g}" for name, value in
                                                zip(cost_model.LUT_TERMS, fitted)) + ")")
    print("in cost_model.py    (" + ", ".join(f"{name} {value:g}" for name, value in
                                                zip(cost_model.LUT_TERMS, cost_model.LUT_COEFFICIENTS)) + ")")
    worst = {"fit": report("calibration set (fitted on)", calibration, measured[:len(calibration)], fitted)}
    if validation:
        worst["held out"] = report("validation set (held out)", validation, measured[len(calibration):], fitted)
        table(calibration, validation, measured, fitted, worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
