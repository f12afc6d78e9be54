"""Calibrates the LUT estimate of hbnn.compiler.cost_model against real synthesis, and checks it on held-out designs.

    .venv/bin/python bench/calibrate_cost_model.py [--jobs 2] [--skip-validation]

Builds each configuration as the compiler would (XnorPopcount layers with random weights and thresholds, seed 0,
through hbnn.compiler.map_to_hardware.emit_verilog), synthesizes it with Yosys (synth_xilinx -family xc7
-flatten, hbnn.hw.synthesis) and fits the cost model's LUT terms (cost_model.lut_terms) by least squares on the
calibration set, minimizing relative error. Prints, per design, the measured logic LUTs, the estimate with the
fitted coefficients and with the coefficients cost_model.py holds now, and the maximum relative errors. The
validation set (single layers and whole 64-128-128-10 networks at the compiler's default folding) is never fitted
on. Figures, not assertions. On 2 cores: 2 minutes with --skip-validation, about 7 in all.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hbnn.compiler import cost_model
from hbnn.compiler.ir import Folding, Graph, XnorPopcount
from hbnn.compiler.map_to_hardware import TOP_NAME, emit_verilog
from hbnn.compiler.set_folding import default_folding
from hbnn.hw.synthesis import synthesize


@dataclass(frozen=True)
class Layer:
    out_features: int  # MH
    in_features: int  # MW
    pe: int
    simd: int
    thresholded: bool = True

    @property
    def folding(self) -> Folding:
        return Folding(pe=self.pe, simd=self.simd)

    @property
    def label(self) -> str:
        return (f"{self.out_features}x{self.in_features} {self.pe}x{self.simd} "
                f"{'thr' if self.thresholded else 'int'}")


@dataclass(frozen=True)
class Design:
    label: str
    layers: tuple[Layer, ...]


def single(layer: Layer) -> Design:
    return Design(layer.label, (layer,))


def network(sizes: tuple[int, ...], target_cycles: int) -> Design:
    layers = []
    for index, (width_in, width_out) in enumerate(zip(sizes, sizes[1:])):
        folding = default_folding(width_out, width_in, target_cycles)
        layers.append(Layer(width_out, width_in, folding.pe, folding.simd, thresholded=index < len(sizes) - 2))
    folds = " ".join(f"{layer.pe}x{layer.simd}" for layer in layers)
    return Design(f"{'-'.join(map(str, sizes))} @{target_cycles} ({folds})", tuple(layers))


# Spans PE 1..16, SIMD 16..128, weight memories 4..64 words, 10..128 rows, 64..256 columns, both output kinds.
CALIBRATION = tuple(single(layer) for layer in (
    Layer(64, 64, 1, 64),
    Layer(64, 64, 4, 64),
    Layer(64, 64, 16, 64),
    Layer(64, 64, 4, 16),
    Layer(64, 256, 4, 64),
    Layer(128, 128, 8, 128),
    Layer(64, 64, 4, 64, thresholded=False),
    Layer(10, 128, 5, 8, thresholded=False),
))

VALIDATION = (
    single(Layer(64, 64, 2, 64)),
    single(Layer(64, 64, 8, 64)),
    single(Layer(64, 64, 4, 32)),
    single(Layer(64, 64, 4, 8)),  # 128-word weight memory
    single(Layer(64, 256, 1, 64)),  # 256-word weight memory
    single(Layer(256, 64, 8, 64)),
    single(Layer(128, 64, 8, 64)),
    single(Layer(10, 128, 5, 16, thresholded=False)),
    network((64, 128, 128, 10), 128),
    network((64, 128, 128, 10), 32),
    network((64, 128, 128, 10), 16),
)


def graph_of(design: Design, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    nodes = []
    for index, layer in enumerate(design.layers):
        weights = rng.random((layer.out_features, layer.in_features)) < 0.5
        thresholds = rng.integers(0, layer.in_features + 2, layer.out_features) if layer.thresholded else None
        nodes.append(XnorPopcount(name=f"layers.{index}", weight_bits=weights, thresholds=thresholds,
                                  folding=layer.folding))
    return Graph(input_width=design.layers[0].in_features, nodes=tuple(nodes))


def measure(design: Design) -> tuple[int, float]:
    """Logic LUTs of the synthesized design and the synthesis time in seconds."""
    with tempfile.TemporaryDirectory(prefix="hbnn-calibrate-") as work:
        path = pathlib.Path(work) / f"{TOP_NAME}.v"
        path.write_text(emit_verilog(graph_of(design)))
        started = time.monotonic()
        resources = synthesize(path, TOP_NAME)
        return resources.luts, time.monotonic() - started


def terms(design: Design) -> np.ndarray:
    """The design's LUT terms: a sum over its layers, as network_cost sums layer estimates."""
    return np.sum([cost_model.lut_terms(layer.in_features, layer.out_features, layer.folding, layer.thresholded)
                   for layer in design.layers], axis=0)


def fit(designs: list[Design], measured: list[int]) -> tuple[float, ...]:
    """Least squares on relative errors (each row divided by its measured LUTs): the error the docstring states."""
    luts = np.array(measured, dtype=float)
    matrix = np.array([terms(design) for design in designs]) / luts[:, None]
    coefficients, *_ = np.linalg.lstsq(matrix, np.ones_like(luts), rcond=None)
    return tuple(round(float(c), 2) for c in coefficients)


def estimate(design: Design, coefficients: tuple[float, ...]) -> int:
    return sum(cost_model.estimate_luts(layer.in_features, layer.out_features, layer.folding, layer.thresholded,
                                        coefficients) for layer in design.layers)


def report(title: str, designs: list[Design], measured: list[int], seconds: list[float],
           fitted: tuple[float, ...]) -> None:
    print(f"\n{title}")
    print(f"  {'design':<40}  {'measured':>8}  {'fitted':>7}  {'error':>6}  {'current':>7}  {'error':>6}  "
          f"{'synth s':>7}")
    worst_fitted = worst_current = 0.0
    for design, luts, elapsed in zip(designs, measured, seconds):
        new, old = estimate(design, fitted), estimate(design, cost_model.LUT_COEFFICIENTS)
        error_new, error_old = (new - luts) / luts, (old - luts) / luts
        worst_fitted, worst_current = max(worst_fitted, abs(error_new)), max(worst_current, abs(error_old))
        print(f"  {design.label:<40}  {luts:>8}  {new:>7}  {error_new:>+6.1%}  {old:>7}  {error_old:>+6.1%}  "
              f"{elapsed:>7.1f}")
    print(f"  max relative error: {worst_fitted:.1%} (fitted coefficients), {worst_current:.1%} "
          f"(coefficients in cost_model.py)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="syntheses run at once (default 2)")
    parser.add_argument("--skip-validation", action="store_true", help="synthesize the calibration set only")
    args = parser.parse_args()
    calibration = list(CALIBRATION)
    validation = [] if args.skip_validation else list(VALIDATION)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # Yosys runs as a subprocess: threads suffice
        results = list(pool.map(measure, calibration + validation))
    measured = [luts for luts, _ in results]
    seconds = [elapsed for _, elapsed in results]
    fitted = fit(calibration, measured[:len(calibration)])
    print("fitted coefficients (" + ", ".join(f"{name} {value:g}" for name, value in
                                                zip(cost_model.LUT_TERMS, fitted)) + ")")
    print("in cost_model.py    (" + ", ".join(f"{name} {value:g}" for name, value in
                                                zip(cost_model.LUT_TERMS, cost_model.LUT_COEFFICIENTS)) + ")")
    report("calibration set (fitted on)", calibration, measured[:len(calibration)], seconds[:len(calibration)],
           fitted)
    if validation:
        report("validation set (held out)", validation, measured[len(calibration):], seconds[len(calibration):],
               fitted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
