"""Calibrates the spatial and residual LUT terms of hbnn.compiler.cost_model against Yosys, and checks them on
held-out designs.

    .venv/bin/python bench/calibrate_conv_cost.py [--designs 24] [--jobs 1] [--cache FILE]

The dense terms (lanes, input registers, ROMs, threshold compares, stream units) keep the coefficients
bench/calibrate_cost_model.py fitted on dense designs; this fits the three terms that sliding windows, channel
pads, pools and residual adds bring (cost_model: window_units, window_bits, reduce_bits) on what the dense terms
leave of each design's measured logic LUTs. The designs are drawn as the fuzz tests draw them
(hbnn.sim.conv_fuzz: binary with +1 padding, weight-binary, int8 and XNOR-Net-alpha convolutions, kernels 1 and 3,
strides 1 and 2, max pools and average heads; hbnn.sim.residual_fuzz: residual blocks with identity, 1x1 and
channel-padding shortcuts), larger than the tests' (up to 16 channels, 12x12 maps, three layers or two blocks),
with the drawn foldings, lowered and compiled by the compiler and synthesized by Yosys (synth_xilinx -family xc7
-flatten, hbnn.hw.synthesis). Even-numbered designs are fitted on (non-negative least squares on relative error),
odd-numbered ones held out. Prints each design's measured and estimated LUTs and the largest errors, then the
coefficients and the table in the form cost_model.py holds them. Figures, not assertions; --cache keeps the
syntheses so that a re-fit does not synthesize again.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.optimize import nnls

from hbnn.compiler import cost_model
from hbnn.compiler.ir import ElementwiseAdd, Folding, Pool
from hbnn.compiler.lower import lower_model
from hbnn.compiler.map_to_hardware import TOP_NAME, emit_verilog, map_design
from hbnn.compiler.pipeline import compile_graph
from hbnn.hw.synthesis import synthesize
from hbnn.sim.conv_fuzz import CALIBRATION_PRECISIONS, draw_conv_case, random_conv_stack, with_simd
from hbnn.sim.residual_fuzz import dead_quantizers, draw_residual_case, random_residual_stack



def draw(index: int):
    """Design `index`: a conv stack for even index // 2, a residual stack for odd (so both kinds are fitted on and
    held out)."""
    rng = np.random.default_rng(1000 + index)
    if (index // 2) % 2 == 0:
        return "conv", draw_conv_case(rng, max_layers=3, max_channels=16, max_size=12,
                                      precisions=CALIBRATION_PRECISIONS)
    return "residual", draw_residual_case(rng, max_blocks=2, max_channels=16, max_size=10)


def design(index: int):
    """(label, graph compiled at the drawn foldings) or (label, None) when the drawn model is degenerate."""
    kind, case = draw(index)
    model = random_conv_stack(case) if kind == "conv" else random_residual_stack(case)
    label = f"{index:02d} {kind} {case.describe()}"
    if kind == "residual" and dead_quantizers(model):
        return label, None
    node_kind, simds = (Pool, case.pool_simd) if kind == "conv" else (ElementwiseAdd, case.add_simd)
    graph = with_simd(lower_model(model, (case.in_channels, case.size, case.size)), node_kind, simds)
    names = [layer.name for layer in graph.dense_layers()]
    return label, compile_graph(graph, dict(zip(names, (Folding(pe, simd) for pe, simd in case.foldings))))


def stages_of(graph, elaborated: bool):
    mapped = map_design(graph)
    if not elaborated:
        for stage in mapped.stages:
            stage.component._MustUse__silence = True
    return mapped


def measure(graph) -> dict:
    with tempfile.TemporaryDirectory(prefix="hbnn-calibrate-conv-") as work:
        path = pathlib.Path(work) / f"{TOP_NAME}.v"
        path.write_text(emit_verilog(stages_of(graph, True).accelerator()))
        started = time.monotonic()
        resources = synthesize(path, TOP_NAME)
        return {"luts": resources.luts, "dsps": resources.dsps, "bram36": resources.bram36,
                "seconds": time.monotonic() - started}


def terms(graph) -> np.ndarray:
    return np.array(cost_model.lut_terms(stages_of(graph, False).stages))


def split(all_terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dense terms, new terms) columns."""
    new = [cost_model.LUT_TERMS.index(name) for name in cost_model.SPATIAL_TERMS]
    dense = [i for i in range(len(cost_model.LUT_TERMS)) if i not in new]
    return all_terms[:, dense], all_terms[:, new]


def dense_coefficients() -> np.ndarray:
    return np.array([c for name, c in zip(cost_model.LUT_TERMS, cost_model.LUT_COEFFICIENTS)
                     if name not in cost_model.SPATIAL_TERMS], dtype=float)


def fit(term_rows: np.ndarray, luts: np.ndarray) -> np.ndarray:
    dense, new = split(term_rows)
    left = luts - dense @ dense_coefficients()
    coefficients, _ = nnls(new / luts[:, None], left / luts)
    return np.round(coefficients, 3)


def estimates(term_rows: np.ndarray, new_coefficients: np.ndarray) -> np.ndarray:
    dense, new = split(term_rows)
    return np.rint(dense @ dense_coefficients() + new @ new_coefficients).astype(int)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--designs", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=1, help="syntheses run at once (default 1)")
    parser.add_argument("--cache", type=pathlib.Path, help="JSON file of earlier syntheses, read and extended")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    built = [design(index) for index in range(args.designs)]
    skipped = [label for label, graph in built if graph is None]
    built = [(label, graph) for label, graph in built if graph is not None]
    missing = [(label, graph) for label, graph in built if label not in cache]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # Yosys runs as a subprocess: threads suffice
        for (label, _), entry in zip(missing, pool.map(lambda item: measure(item[1]), missing)):
            cache[label] = entry
            print(f"synthesized {label}: {entry['luts']} LUT in {entry['seconds']:.0f} s", flush=True)
            if args.cache:
                args.cache.write_text(json.dumps(cache, indent=1))
    print(f"{len(missing)} designs synthesized in {time.monotonic() - started:.0f} s; "
          f"{len(skipped)} drawn models degenerate (an int8 quantizer calibrated on zeros), skipped")
    labels = [label for label, _ in built]
    rows = np.array([terms(graph) for _, graph in built])
    luts = np.array([cache[label]["luts"] for label in labels], dtype=float)
    fitted = np.array([int(label[:2]) % 2 == 0 for label in labels])
    coefficients = fit(rows[fitted], luts[fitted])
    estimate = estimates(rows, coefficients)
    errors = (estimate - luts) / luts
    print("\n| design | set | measured LUT | estimate | error |")
    print("|---|---|---:|---:|---:|")
    for label, is_fit, measured, guess, error in zip(labels, fitted, luts, estimate, errors):
        print(f"| {label} | {'fit' if is_fit else 'held out'} | {measured:,.0f} | {guess:,} | {error:+.1%} |")
    worst = {"fit": float(np.max(np.abs(errors[fitted]))), "held out": float(np.max(np.abs(errors[~fitted])))}
    rms = {"fit": float(np.sqrt(np.mean(errors[fitted] ** 2))), "held out": float(np.sqrt(np.mean(errors[~fitted] ** 2)))}
    print(f"\nmax relative error: {worst['fit']:.1%} fitted on, {worst['held out']:.1%} held out "
          f"(RMS {rms['fit']:.1%} and {rms['held out']:.1%})")
    print("\n# for hbnn/compiler/cost_model.py")
    for name, value in zip(cost_model.SPATIAL_TERMS, coefficients):
        print(f"LUT_PER_{name.upper().removesuffix('S')} = {value}")
    print("CONV_LUT_CALIBRATION = (")
    for label, is_fit, measured, guess in zip(labels, fitted, luts, estimate):
        print(f"    ({label!r}, {'fit' if is_fit else 'held out'!r}, {int(measured)}, {int(guess)}),")
    print(")")
    print(f"CONV_LUT_MAX_ERROR = {{'fit': {worst['fit']:.3f}, 'held out': {worst['held out']:.3f}}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
