"""Hardware cost model (read-only analysis): LUTs, DSPs and cycles of a layer or network from its description alone.

For the layers the compiler maps today (binary fully-connected layers: +-1 weights on sign inputs, no weight scale,
one XnorPopcountMVU each) it gives, without building anything:

* cycles: exact. The folding is the one `set_folding` would pick (`default_folding`), and a layer's cycles are its
  latency in the compiler's cycle model (hbnn.compiler.cycles): (MH/PE)*(MW/SIMD) + LAYER_PIPELINE_DEPTH. A
  network's cycles are the sum of its layers', which is `estimate_cycles(graph).latency`.
* DSPs: exact, 0. XNOR-popcount layers are LUT logic.
* LUTs: an ESTIMATE, a linear model fitted to Yosys (`synth_xilinx -family xc7 -flatten`, logic LUTs, the count
  `hbnn report` gives) on single-layer designs with random weights:

      LUTs = LUT_PER_LAYER + LUT_PER_LANE * PE*SIMD + LUT_PER_WEIGHT_LUT6 * MH*MW/64
             + LUT_PER_OUTPUT_BIT * MH * (1 if thresholded else accumulator width)

  PE*SIMD lanes are the XNOR gates and popcount adder inputs; MH*MW/64 is the weight memory counted in LUT6-sized
  pieces (the shallow weight ROMs come out of Yosys as LUT logic); the output bits are the result register's
  write multiplexers; the constant is the layer's counters and handshake. Measured error (the table by the
  constants below): at most 9.9% on the 8 calibration designs, 10.2% on 11 held-out designs (whole networks
  included), so read it as +-10%. It is not a timing or placement model, and it refuses weight memories deeper than
  MAX_WEIGHT_DEPTH words (Yosys may put those in block RAM, which it does not count). `bench/calibrate_cost_model.py`
  re-runs the calibration.

Every other layer (conv, int8, weight-binary, ternary, ABC-Net, scaled binary, float) raises
`UnsupportedLayerError` naming the layer and why: the compiler has no hardware for it yet, and a cost model that
returned 0 for it would be wrong silently.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..quant.precision import Precision
from .cycles import LAYER_PIPELINE_DEPTH, LayerCycles
from .ir import Folding, accumulator_width
from .lower import UnsupportedLayerError
from .set_folding import DEFAULT_TARGET_CYCLES, default_folding

__all__ = [
    "HardwareCost", "LayerDescription", "LUT_TERMS", "LUT_COEFFICIENTS", "layer_cost", "network_cost",
    "lut_terms", "estimate_luts", "check_mappable", "MAX_WEIGHT_DEPTH",
]

KINDS = ("linear", "conv")

# LUT model coefficients: bench/calibrate_cost_model.py, least squares on relative error, rounded to 0.01, on 8
# single-layer designs with random weights (seed 0); Yosys 0.70 (yowasp) synth_xilinx -family xc7 -flatten, logic LUTs.
#   calibration (fitted on)        measured  estimate        held out                        measured  estimate
#   64x64    PE 1 x SIMD 64  thr       583    619  +6.2%     64x64    2x64  thr                   699    742  +6.2%
#   64x64    PE 4 x SIMD 64  thr      1053    988  -6.2%     64x64    8x64  thr                  1504   1479  -1.7%
#   64x64    PE 16 x SIMD 64 thr      2302   2462  +7.0%     64x64    4x32  thr                   744    742  -0.3%
#   64x64    PE 4 x SIMD 16  thr       625    619  -1.0%     64x64    4x8   thr (128 words)       605    558  -7.8%
#   64x256   PE 4 x SIMD 64  thr      2056   2099  +2.1%     64x256   1x64  thr (256 words)      1686   1731  +2.7%
#   128x128  PE 8 x SIMD 128 thr      4042   3641  -9.9%     256x64   8x64  thr                  2699   2793  +3.5%
#   64x64    PE 4 x SIMD 64  int      1444   1458  +1.0%     128x64   8x64  thr                  2134   1917 -10.2%
#   10x128   PE 5 x SIMD 8   int       353    346  -2.0%     10x128   5x16  int                   430    422  -1.9%
#   (MH x MW; thr: thresholded output, int: accumulator output)
#                                                            64-128-128-10 network @128 cycles   3369   3266  -3.1%
#                                                            64-128-128-10 network @32 cycles    4161   4429  +6.4%
#                                                            64-128-128-10 network @16 cycles    6528   5980  -8.4%
# Max relative error: 9.9% on the calibration set, 10.2% held out. Against the README's folding sweep (a trained
# digits model, targets 128..4 cycles) the estimate is within -7.4%..+9.1%.
LUT_PER_LAYER = 58.44
LUT_PER_LANE = 1.92
LUT_PER_WEIGHT_LUT6 = 5.79
LUT_PER_OUTPUT_BIT = 1.05
MAX_WEIGHT_DEPTH = 256  # deepest weight memory measured: Yosys put a 512-word one in block RAM
LUT_TERMS = ("layer", "lanes", "weight_lut6", "output_bits")
LUT_COEFFICIENTS = (LUT_PER_LAYER, LUT_PER_LANE, LUT_PER_WEIGHT_LUT6, LUT_PER_OUTPUT_BIT)


@dataclass(frozen=True)
class HardwareCost:
    """Resources and cycles of one layer (pe and simd set) or of a network (pe and simd None)."""
    luts: int  # estimate, see the module docstring
    dsps: int
    cycles: int  # latency: cycles from input handshake to output handshake, pipeline empty
    pe: int | None = None
    simd: int | None = None


# (name, kind, precision, in_features, out_features), in forward order
LayerDescription = tuple[str, str, Precision, int, int]


def _unsupported(name: str, why: str) -> UnsupportedLayerError:
    return UnsupportedLayerError.described(name, why)


def _precision_reason(precision: Precision) -> str | None:
    if not isinstance(precision, Precision):
        raise TypeError(f"precision must be a Precision, not {type(precision).__name__}")
    if precision.weights == "binary" and precision.inputs == "binary":
        if precision.weight_scale:
            return ("the compiler maps unscaled +-1 weights only; binary+alpha layers (a float scale per output) "
                    "are not mapped yet")
        return None
    what = {
        "float": "float layers have no hardware mapping",
        "int8": "int8 layers (DSP MAC units) are not mapped yet",
        "ternary": "ternary layers are not mapped yet",
        "abc": "ABC-Net layers are not mapped yet",
    }.get(precision.weights, "weight-binary layers (binary weights on int8 inputs) are not mapped yet")
    return f"the compiler maps binary linear layers only; {what} (precision {precision.name!r})"


def check_mappable(name: str, kind: str, precision: Precision | None = None) -> None:
    """Raise UnsupportedLayerError naming `name` unless the compiler maps this layer kind (and precision, if given)."""
    if kind not in KINDS:
        raise ValueError(f"layer {name!r}: kind must be one of {', '.join(map(repr, KINDS))}, not {kind!r}")
    if kind == "conv":
        raise _unsupported(name, "the compiler maps binary linear layers only; conv layers are not mapped yet")
    if precision is not None:
        reason = _precision_reason(precision)
        if reason is not None:
            raise _unsupported(name, reason)


def _check_features(name: str, label: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"layer {name!r}: {label} must be a positive integer, not {value!r}")
    return value


def lut_terms(in_features: int, out_features: int, folding: Folding, thresholded: bool = True) -> tuple[float, ...]:
    """The LUT model's terms for one XnorPopcountMVU, in LUT_TERMS order (the calibration script fits on these)."""
    output_bits = out_features * (1 if thresholded else accumulator_width(in_features))
    return (1.0, float(folding.pe * folding.simd), out_features * in_features / 64, float(output_bits))


def estimate_luts(in_features: int, out_features: int, folding: Folding, thresholded: bool = True,
                  coefficients: tuple[float, ...] = LUT_COEFFICIENTS, name: str = "layer") -> int:
    depth = (out_features // folding.pe) * (in_features // folding.simd)
    if depth > MAX_WEIGHT_DEPTH:
        raise ValueError(f"layer {name!r}: its weight memory would be {depth} words deep at PE={folding.pe}, "
                         f"SIMD={folding.simd}; the LUT estimate covers up to {MAX_WEIGHT_DEPTH} words (deeper ones "
                         "may go to block RAM, which it does not count): ask for fewer cycles per layer")
    terms = lut_terms(in_features, out_features, folding, thresholded)
    return round(sum(c * t for c, t in zip(coefficients, terms, strict=True)))


def layer_cost(name: str, kind: str, precision: Precision, in_features: int, out_features: int, *,
               target_cycles: int = DEFAULT_TARGET_CYCLES, thresholded: bool = True) -> HardwareCost:
    """Cost of one layer as the compiler would build it at `target_cycles`.

    thresholded: the layer ends in batch-norm + sign, so its output is one bit per row (every layer but a network's
    last, whose output is the integer accumulators).
    """
    check_mappable(name, kind, precision)
    _check_features(name, "in_features", in_features)
    _check_features(name, "out_features", out_features)
    folding = default_folding(out_features, in_features, target_cycles)
    cycles = LayerCycles(name, out_features // folding.pe, in_features // folding.simd).cycles
    return HardwareCost(luts=estimate_luts(in_features, out_features, folding, thresholded, name=name), dsps=0,
                        cycles=cycles + LAYER_PIPELINE_DEPTH, pe=folding.pe, simd=folding.simd)


def network_cost(layers: Iterable[LayerDescription], *, target_cycles: int = DEFAULT_TARGET_CYCLES) -> HardwareCost:
    """Cost of a chain of layers: LUTs and DSPs add up, cycles are the compiler's latency (the sum of the layers').

    As the compiler builds a binary MLP, every layer but the last is thresholded (batch-norm + sign folded into
    popcount thresholds) and the last outputs its integer accumulators.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("a network needs at least one layer")
    costs = [layer_cost(name, kind, precision, in_features, out_features, target_cycles=target_cycles,
                        thresholded=index < len(layers) - 1)
             for index, (name, kind, precision, in_features, out_features) in enumerate(layers)]
    return HardwareCost(luts=sum(cost.luts for cost in costs), dsps=sum(cost.dsps for cost in costs),
                        cycles=sum(cost.cycles for cost in costs))
