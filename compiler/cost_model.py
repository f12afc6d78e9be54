"""Hardware cost model (read-only analysis): cycles, DSPs, LUTs and block RAM of a network from its description.

A plan is a chain of layers, each (name, kind, precision, in_features, out_features). The compiler maps linear
layers at precision binary and binary+alpha (XNOR-popcount lanes), weight-binary(+alpha) (add/subtract lanes:
binary weights on int8 inputs) and int8 (multiply lanes on DSP slices); alpha folds into the next layer's
thresholds. The cost model does not predict what the compiler builds, it builds it: `network_cost` makes the graph
the compiler's passes would leave for the plan (`dummy_graph`: the same nodes, names, types and shapes, with seeded
random weight codes of each layer's kind and random thresholds), folds it with `set_folding` (the same function,
target and DSP budget), maps it with `map_stages` and reads the answer off the mapped stages:

* cycles: `estimate_cycles(stages).latency`, from an image's first input handshake to its last output handshake,
  and `interval`, the steady cycles per image. The cycle analysis is exact for a mapped design (co-simulation
  measures the same, tests/sim), and of the dummy design only the thresholds can differ from the compiled one's
  in a way that matters for cycles: a threshold unit's compare stages are the bit length of its threshold count T.
  In front of a layer that takes signs T = 1, as the compiler's always is, so a plan whose layers after the first
  all take signs has exact cycles. In front of an int8 layer the dummy has T = 255, the most an int8 requantization
  can need, 8 stages; a trained network after a ReLU reaches only codes 0..127 (127 thresholds, 7 stages), fewer
  where a batch norm leaves levels unreachable. So there the latency is an upper bound: one cycle per missing
  compare stage (tests/compiler/test_cost_model.py checks that difference exactly). The interval is exact.
* DSPs: exact, PE x SIMD per int8 layer: one DSP48E1 per 8 x 8 multiplier, the count the compiler checks against a
  board's DSPs and writes to the build manifest (`dsp_multipliers`), and the count Yosys maps on every design of
  the calibration (table below). Binary and weight-binary lanes use none.
* LUTs: an ESTIMATE of Yosys' logic LUTs (synth_xilinx -family xc7 -flatten, LUT1..LUT6: the "LUT (logic)" row
  of `hbnn report`), a linear model over terms of the mapped stages. It leaves out LUTs used as memory (the FIFOs'
  and input buffers' shallow memories go to LUT RAM) and block RAM.
* bram36: an ESTIMATE of the block RAM (BRAM36 units; a RAMB18 counts 0.5) of the memories deeper than
  hbnn.hw.memory_style.LUT_DEPTH words, from their depths and widths (`memory_block_ram36`: a ROM counted as
  split in depth across block RAM shapes where that is cheaper, as Yosys maps it): equal to Yosys' count on
  every calibration design but one (16.5 for 16). Deep threshold stages in front of int8 layers dominate it, and
  the dummy T = 255 makes it an upper bound there (16.5 for a compiled network's 9.5 in the table below).

The LUT model, summed over the mapped stages (`lut_terms`; fitted by bench/calibrate_cost_model.py, non-negative
least squares on relative error):

    LUT_PER_XNOR_LANE * PE*SIMD          XNOR-popcount lanes: XNOR gates and popcount trees
  + LUT_PER_ADD_SUBTRACT_LANE * PE*SIMD  add/subtract lanes: a 9-bit negation, a mux and an adder each
  + LUT_PER_INPUT_BIT * SIMD*bits        each unit's input chunk register and mux (1 or 8 bits per element)
  + LUT_PER_BINARY_ROM_BIT * bits        binary weight ROMs kept in LUTs (5..64 words): depth x width
  + LUT_PER_ROM_BIT * bits               int8 weight and threshold-stage ROMs kept in LUTs: depth x width
  + LUT_PER_COMPARE_BIT * PE*N*(w+1)     threshold units: N compare stages per lane on keys one bit wider than the
                                         w-bit accumulator
  + LUT_PER_STREAM_UNIT                  per threshold unit, FIFO and width converter

Yosys' ROMs are not one LUT6 per output bit: their LUTs grow with depth x width (about 5.5 per bit of width at 64
words, 1 at 16, none at 4 or fewer, which fold into the logic they feed). Multiply lanes have no term: a constant
per unit, a cost per multiply lane and per accumulator bit were tried, and the fit gives them 0 (Yosys puts the
products, most of the adder tree and the accumulators in the DSP slices), so an int8 layer's LUTs are its input
register and its weight ROM. Measured error (LUT_CALIBRATION): at most 22% on the 23 calibration designs, 31% on
the 11 held out (RMS 8% and 12%); the largest errors are on small designs (a few hundred LUTs) and on layers
with many int8 lanes on shallow weight ROMs. Networks of three or more layers, including ones the compiler compiled
from trained-like models, are within 18%, pairs of layers within 22%. Read it as about +-20% for a network, and as a
way to compare plans rather than a promise of fit.

Sliding windows, channel pads, pools, forks and residual adds (priced through hbnn.compiler.model_cost, which maps
the network itself) add three terms, fitted afterwards with the dense ones held (bench/calibrate_conv_cost.py):

  + LUT_PER_WINDOW_UNIT                  per sliding window and channel pad: its position counters
  + LUT_PER_WINDOW_BIT * bits            their output register and its read mux
  + LUT_PER_REDUCE_BIT * bits            pools' and adds' comparators and adders, per output bit

The fit gives the per-bit terms 0 on the 6 designs it saw (a window's mux and a pool's adders are small beside the
threshold units and lanes of the same designs, and Yosys shares them with those); a window costs about 58 LUTs.
Measured error (CONV_LUT_CALIBRATION): at most 28% on the 6 calibration designs, 37% on the 6 held out (RMS 12%
and 22%), on small designs (112 to 9,152 LUTs). On the whole trained networks of docs/hardware.md (model_cost against Yosys,
2026-12-03): ResNet-14 binary with all shortcuts 67,283 estimated for 54,978 (+22%), BlinkNet binary 80,466 for
67,489 (+19%), CNV at BNN-PYNQ's folding 10,287 for 10,330 (-0.4%); block RAM equal on the first two (124.5,
156.5), 88.5 for 72 on CNV. Read it as +-35% for a conv network, and as a way to compare plans.

`network_cost` prices a chain of dense layers from its description; a conv layer there raises
UnsupportedLayerError naming it (price the model with hbnn.compiler.model_cost instead), as do float layers (the
compiler has no hardware for them), an ABC-Net first layer (its activation bases would be the host's) and a scaled
(+alpha) last layer (the hardware outputs integers). A cost model that priced them at 0 would be wrong silently.
ABC-Net lanes are priced as XNOR lanes, one per (weight base, activation base) pair; their pair accumulators and
coefficient adders are outside the calibration.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..hw.add_join import AddJoin
from ..hw.channel_pad import ChannelPad
from ..hw.fork import Fork
from ..hw.memory_style import LUT_DEPTH, block_ram36, memory_block_ram36
from ..hw.mvau import Mvau
from ..hw.pool import WindowReduce
from ..hw.sliding_window import SlidingWindow
from ..hw.stream_fifo import StreamFifo
from ..hw.threshold import MultiThreshold as ThresholdUnit
from ..hw.width_converter import WidthConverter
from ..quant.precision import Precision
from .cycles import estimate_cycles
from .ir import Bipolar, Dense, Graph, Int, MultiThreshold, Tensor, levels_type
from .lower import INPUT_SUFFIX, UnsupportedLayerError
from .map_to_hardware import Stage, map_stages
from .passes.set_folding import DEFAULT_TARGET_CYCLES, set_folding

__all__ = [
    "HardwareCost", "LayerCost", "LayerDescription", "LUT_TERMS", "SPATIAL_TERMS", "LUT_COEFFICIENTS",
    "LUT_CALIBRATION", "LUT_MAX_ERROR", "LAST_LAYER_REASON", "SIGN_THRESHOLDS", "INT8_THRESHOLDS", "check_mappable", "network_cost",
    "dummy_graph", "lut_terms", "stage_lut_terms", "estimate_luts", "block_ram36", "stage_block_ram36",
    "CONV_LUT_CALIBRATION", "CONV_LUT_MAX_ERROR",
]

KINDS = ("linear", "conv")
FOLDED_ROM_DEPTH = 4  # ROMs of this many words or fewer cost no LUTs of their own (see _rom_bits)
SIGN_THRESHOLDS = 1  # a sign: one threshold, as the compiler's always is
INT8_THRESHOLDS = 255  # an int8 requantization: the most it can need (a trained one after a ReLU needs 127)
LAST_LAYER_REASON = ("hardware outputs integers times a power of two, so the last layer must end in its accumulator "
                     "(no alpha, float bias or batch norm after it)")  # the words of passes/output_integers.py

# LUT model coefficients: bench/calibrate_cost_model.py (Yosys 0.70 via yowasp, synth_xilinx -family xc7 -flatten,
# logic LUTs), least squares on relative error, non-negative, on the "fit" designs of LUT_CALIBRATION.
LUT_TERMS = ("xnor_lanes", "add_subtract_lanes", "input_bits", "binary_rom_bits", "rom_bits", "compare_bits",
             "stream_units", "window_units", "window_bits", "reduce_bits")
SPATIAL_TERMS = ("window_units", "window_bits", "reduce_bits")  # zero on dense designs: fitted on conv ones
# Multiply lanes: no term, see above. Ternary lanes (add/subtract/skip) count as add/subtract lanes, not calibrated on
# their own: alone in Yosys they took 10-14% more LUTs per lane than add/subtract ones with the same folding (4 x 16
# lanes: 1,897 against 1,732 LUTs; 8 x 32: 8,813 against 7,749; 64 x 256 weights on int8 inputs).
LANE_TERMS = {"xnor_popcount": "xnor_lanes", "add_subtract": "add_subtract_lanes",
              "add_subtract_skip": "add_subtract_lanes", "abc_xnor_popcount": "xnor_lanes"}
LUT_PER_XNOR_LANE = 2.144
LUT_PER_ADD_SUBTRACT_LANE = 22.112
LUT_PER_INPUT_BIT = 1.469
LUT_PER_BINARY_ROM_BIT = 0.074
LUT_PER_ROM_BIT = 0.058
LUT_PER_COMPARE_BIT = 0.357
LUT_PER_STREAM_UNIT = 0.844
# The spatial and residual terms, fitted afterwards with the ones above held (bench/calibrate_conv_cost.py).
LUT_PER_WINDOW_UNIT = 58.234
LUT_PER_WINDOW_BIT = 0.0
LUT_PER_REDUCE_BIT = 0.0
# The lane terms alone, by lane kind; an ABC-Net lane is one XNOR-popcount of a (weight base, activation base) pair
# (set_folding.lanes_of counts PE x SIMD x B x N of them), priced as an XNOR lane: its pair accumulators and
# coefficient adders are not in the calibration (docs/hardware.md gives measured ABC designs).
LANE_LUTS = {"xnor_popcount": LUT_PER_XNOR_LANE, "add_subtract": LUT_PER_ADD_SUBTRACT_LANE,
             "add_subtract_skip": LUT_PER_ADD_SUBTRACT_LANE, "multiply": 0.0, "abc_xnor_popcount": LUT_PER_XNOR_LANE}
LUT_COEFFICIENTS = (LUT_PER_XNOR_LANE, LUT_PER_ADD_SUBTRACT_LANE, LUT_PER_INPUT_BIT, LUT_PER_BINARY_ROM_BIT,
                    LUT_PER_ROM_BIT, LUT_PER_COMPARE_BIT, LUT_PER_STREAM_UNIT, LUT_PER_WINDOW_UNIT,
                    LUT_PER_WINDOW_BIT, LUT_PER_REDUCE_BIT)

# The calibration table: (precisions, widths, target cycles, set, measured logic LUTs, estimate). "fit": fitted on;
# "held out": never fitted on; "held out, compiled": a trained-like network (hbnn.sim.fuzz.random_stack, seed 0:
# random batch norms, ReLU in front of int8 layers) compiled by the compiler and synthesized, against the estimate
# network_cost makes from its plan alone. Single layers are one matrix-vector unit each; the errors are
# (estimate - measured) / measured. Foldings (PE x SIMD per layer) are set_folding's at the target.
#   set          design (foldings)                                  measured estimate  error   DSPs  BRAM36 Yosys/est.
#   fit          binary 64-64 @64 (1x64)                                 512      534  +4.3%      0      0 / 0
#   fit          binary 64-64 @16 (4x64)                                 971      946  -2.6%      0      0 / 0
#   fit          binary 64-64 @4 (16x64)                                2216     2289  +3.3%      0      0 / 0
#   fit          binary 64-64 @256 (1x16)                                 57       58  +1.8%      0    0.5 / 0.5
#   fit          binary 256-64 @32 (2x256)                              2517     2686  +6.7%      0      0 / 0
#   fit          binary 128-128 @16 (8x128)                             3912     3596  -8.1%      0      0 / 0
#   fit          weight-binary 64-64 @128 (1x32)                        1061     1084  +2.2%      0    0.5 / 0.5
#   fit          weight-binary 64-64 @32 (2x64)                         3811     3886  +2.0%      0      0 / 0
#   fit          weight-binary 32-32 @8 (4x32)                          3350     3282  -2.0%      0      0 / 0
#   fit          weight-binary 128-16 @128 (1x16)                        535      542  +1.3%      0    0.5 / 0.5
#   fit          int8 64-64 @64 (1x64)                                  2623     2653  +1.1%     64      0 / 0
#   fit          int8 64-64 @512 (1x8)                                    96       94  -2.1%      8      1 / 1
#   fit          int8 32-32 @16 (2x32)                                   926      851  -8.1%     64      0 / 0
#   fit          int8 128-16 @32 (1x64)                                 1591     1702  +7.0%     64      0 / 0
#   fit          bin,bin 64-64-10 @16 (4x64 5x8)                        1230     1143  -7.1%      0      0 / 0
#   fit          bin,wb 64-32-10 @32 (1x64 5x2)                          695      731  +5.2%      0    3.5 / 3.5
#   fit          int8,int8 64-32-10 @64 (1x32 5x1)                      2081     1684 -19.1%     37      7 / 7
#   fit          wb,bin 32-64-10 @64 (1x32 5x2)                         1461     1374  -6.0%      0      0 / 0
#   fit          bin,int8 64-64-10 @16 (4x64 5x8)                       1789     1680  -6.1%     40     10 / 10
#   fit          int8,bin 32-64-10 @8 (8x32 5x16)                       1406     1719 +22.3%    256      0 / 0
#   fit          wb,wb 64-32-10 @16 (2x64 5x4)                          4477     4551  +1.7%      0      6 / 6
#   fit          bin,bin,bin 64-128-128-10 @32 (4x64 4x128 5x8)         4141     4128  -0.3%      0      0 / 0
#   fit          int8,wb,bin,int8 64-64-64-32-10 @64 (1x64 1x64 1x32 5x1)
#                                                                       6408     5858  -8.6%     69     16 / 16.5
#   held out     binary 64-64 @32 (2x64)                                 629      672  +6.8%      0      0 / 0
#   held out     weight-binary 64-64 @64 (1x64)                         2400     2470  +2.9%      0      0 / 0
#   held out     int8 64-64 @128 (1x32)                                  287      376 +31.0%     32      4 / 4
#   held out     int8 64-32 @16 (2x64)                                  1939     1702 -12.2%    128      0 / 0
#   held out     int8,bin 32-64-10 @32 (2x32 5x4)                       1652     1526  -7.6%     64      0 / 0
#   held out     bin,bin,bin 64-128-128-10 @16 (8x64 8x128 5x16)        6589     5899 -10.5%      0      0 / 0
#   compiled     bin,bin,bin 64-128-128-10 @32 (4x64 4x128 5x8)         4144     4128  -0.4%      0      0 / 0
#   compiled     bin,bin,bin 64-128-128-10 @128 (1x64 1x128 5x2)         888      730 -17.8%      0    5.5 / 5.5
#   compiled     int8,wb,bin,int8 64-64-64-32-10 @64 (1x64 1x64 1x32 5x1)
#                                                                       6216     5858  -5.8%     69    9.5 / 16.5
#   compiled     wb+a,bin+a,int8 32-64-32-10 @32 (2x32 1x64 5x2)        2820     2650  -6.0%     10    2.5 / 3.5
#   compiled     int8,int8,int8 64-64-32-10 @128 (1x32 1x16 1x4)         969      967  -0.2%     52   17.5 / 26.5
# DSPs: Yosys' count equals the estimate (PE x SIMD per int8 layer) on every design.
LUT_CALIBRATION = (
    (('binary',), (64, 64), 64, 'fit', 512, 534),
    (('binary',), (64, 64), 16, 'fit', 971, 946),
    (('binary',), (64, 64), 4, 'fit', 2216, 2289),
    (('binary',), (64, 64), 256, 'fit', 57, 58),
    (('binary',), (256, 64), 32, 'fit', 2517, 2686),
    (('binary',), (128, 128), 16, 'fit', 3912, 3596),
    (('weight-binary',), (64, 64), 128, 'fit', 1061, 1084),
    (('weight-binary',), (64, 64), 32, 'fit', 3811, 3886),
    (('weight-binary',), (32, 32), 8, 'fit', 3350, 3282),
    (('weight-binary',), (128, 16), 128, 'fit', 535, 542),
    (('int8',), (64, 64), 64, 'fit', 2623, 2653),
    (('int8',), (64, 64), 512, 'fit', 96, 94),
    (('int8',), (32, 32), 16, 'fit', 926, 851),
    (('int8',), (128, 16), 32, 'fit', 1591, 1702),
    (('binary', 'binary'), (64, 64, 10), 16, 'fit', 1230, 1143),
    (('binary', 'weight-binary'), (64, 32, 10), 32, 'fit', 695, 731),
    (('int8', 'int8'), (64, 32, 10), 64, 'fit', 2081, 1684),
    (('weight-binary', 'binary'), (32, 64, 10), 64, 'fit', 1461, 1374),
    (('binary', 'int8'), (64, 64, 10), 16, 'fit', 1789, 1680),
    (('int8', 'binary'), (32, 64, 10), 8, 'fit', 1406, 1719),
    (('weight-binary', 'weight-binary'), (64, 32, 10), 16, 'fit', 4477, 4551),
    (('binary', 'binary', 'binary'), (64, 128, 128, 10), 32, 'fit', 4141, 4128),
    (('int8', 'weight-binary', 'binary', 'int8'), (64, 64, 64, 32, 10), 64, 'fit', 6408, 5858),
    (('binary',), (64, 64), 32, 'held out', 629, 672),
    (('weight-binary',), (64, 64), 64, 'held out', 2400, 2470),
    (('int8',), (64, 64), 128, 'held out', 287, 376),
    (('int8',), (64, 32), 16, 'held out', 1939, 1702),
    (('int8', 'binary'), (32, 64, 10), 32, 'held out', 1652, 1526),
    (('binary', 'binary', 'binary'), (64, 128, 128, 10), 16, 'held out', 6589, 5899),
    (('binary', 'binary', 'binary'), (64, 128, 128, 10), 32, 'held out, compiled', 4144, 4128),
    (('binary', 'binary', 'binary'), (64, 128, 128, 10), 128, 'held out, compiled', 888, 730),
    (('int8', 'weight-binary', 'binary', 'int8'), (64, 64, 64, 32, 10), 64, 'held out, compiled', 6216, 5858),
    (('weight-binary+alpha', 'binary+alpha', 'int8'), (32, 64, 32, 10), 32, 'held out, compiled', 2820, 2650),
    (('int8', 'int8', 'int8'), (64, 64, 32, 10), 128, 'held out, compiled', 969, 967),
)
LUT_MAX_ERROR = {"fit": 0.223, "held out": 0.310}  # largest |estimate - measured| / measured in LUT_CALIBRATION
# The spatial terms' calibration (bench/calibrate_conv_cost.py --designs 12, 2026-12-03): drawn conv and residual
# networks (hbnn.sim.conv_fuzz / residual_fuzz draws, up to 16 channels) compiled by the compiler and synthesized;
# (design, kind, set, measured logic LUTs, estimate). Even designs fitted on, odd held out.
CONV_LUT_CALIBRATION = (
    (0, "conv", "fit", 1659, 1723),
    (1, "conv", "held out", 1040, 700),
    (2, "residual", "fit", 5119, 4721),
    (3, "residual", "held out", 6898, 6841),
    (4, "conv", "fit", 1832, 2337),
    (5, "conv", "held out", 112, 153),
    (6, "residual", "fit", 5948, 5950),
    (7, "residual", "held out", 9152, 8331),
    (8, "conv", "fit", 741, 714),
    (9, "conv", "held out", 442, 365),
    (10, "residual", "fit", 3259, 3315),
    (11, "residual", "held out", 1687, 1438),
)
CONV_LUT_MAX_ERROR = {"fit": 0.276, "held out": 0.366}  # largest |estimate - measured| / measured above

# (name, kind, precision, in_features, out_features), in forward order
LayerDescription = tuple[str, str, Precision, int, int]


@dataclass(frozen=True)
class LayerCost:
    """One layer of a priced network: its matrix-vector unit, the threshold unit after it and the width converter
    and FIFO in front of it."""
    name: str
    lane: str  # "xnor_popcount" | "add_subtract" | "add_subtract_skip" | "multiply"
    pe: int
    simd: int
    luts: int  # estimate (rounded per layer: the network's total is rounded once)
    dsps: int  # exact
    bram36: float  # estimate
    cycles: int  # the unit's cycles per image at this folding, (MH/PE) * (MW/SIMD)


@dataclass(frozen=True)
class HardwareCost:
    """What the compiler would build for a plan: see the module docstring for which figures are exact."""
    luts: int  # estimate: logic LUTs
    dsps: int  # exact
    cycles: int  # latency: first input handshake to last output handshake of one image, pipeline empty
    interval: int | float  # steady cycles per image (the initiation interval)
    bram36: float  # estimate
    layers: tuple[LayerCost, ...]  # forward order


def _precision_reason(precision: Precision, last: bool, first: bool = False) -> str | None:
    if not isinstance(precision, Precision):
        raise TypeError(f"precision must be a Precision, not {type(precision).__name__}")
    if precision.weights == "float":
        return "float layers have no integer form; train it at int8 (--full-precision int8)"
    if precision.inputs == "abc" and first:
        return ("an ABC-Net layer reading the network input is not mapped (its activation bases would be the "
                "host's); keep the first layer int8, as the zoo's ABC-Net models do")
    if precision.weight_scale and last:
        return (f"it is the network's last layer and a {precision.name} layer, whose alpha is a float32 op after "
                f"its accumulator: {LAST_LAYER_REASON}")
    return None  # binary, weight-binary (alpha folds into the next layer's thresholds) and int8


def check_mappable(name: str, kind: str, precision: Precision | None = None, *, last: bool = False,
                   first: bool = False) -> None:
    """Raise UnsupportedLayerError naming `name` unless the compiler maps this layer kind (and precision, if given;
    `last`: the layer is the network's last, whose output is the raw accumulator; `first`: it reads the network
    input)."""
    if kind not in KINDS:
        raise ValueError(f"layer {name!r}: kind must be one of {', '.join(map(repr, KINDS))}, not {kind!r}")
    if kind == "conv":
        raise UnsupportedLayerError.described(name, "a chain's description cannot price a convolution; price the "
                                                    "network itself (hbnn.compiler.model_cost)")
    if precision is not None:
        reason = _precision_reason(precision, last, first)
        if reason is not None:
            raise UnsupportedLayerError.described(name, reason)


def _check_features(name: str, label: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"layer {name!r}: {label} must be a positive integer, not {value!r}")
    return value


def _input_type(precision: Precision) -> Bipolar | Int:
    if precision.inputs == "abc":
        return levels_type(precision.act_bases)
    return Bipolar() if precision.inputs == "binary" else Int(8, True, 0)


def _weight_kind(precision: Precision) -> str:
    return precision.weights if precision.weights in ("int8", "ternary", "abc") else "binary"


def _check_plan(layers: Sequence[LayerDescription]) -> None:
    if not layers:
        raise ValueError("a network needs at least one layer")
    names = set()
    for index, (name, kind, precision, in_features, out_features) in enumerate(layers):
        check_mappable(name, kind, precision, last=index == len(layers) - 1, first=index == 0)
        _check_features(name, "in_features", in_features)
        _check_features(name, "out_features", out_features)
        if name in names:
            raise ValueError(f"layer {name!r} appears twice in the plan")
        names.add(name)
    for (name, _, _, _, width), (following, _, _, width_in, _) in zip(layers, layers[1:]):
        if width != width_in:
            raise ValueError(f"layer {name!r} has {width} outputs but the next layer {following!r} takes {width_in} "
                             "inputs: a plan is a chain of layers")


def dummy_graph(layers: Sequence[LayerDescription], seed: int = 0) -> Graph:
    """The graph the compiler's passes would leave for this plan before set_folding, with seeded random weight codes
    and thresholds: SIGN_THRESHOLDS per channel in front of a layer that takes signs, INT8_THRESHOLDS in front of
    one that takes int8 codes. Layer names, types and shapes are the compiled network's."""
    layers = list(layers)
    _check_plan(layers)
    rng = np.random.default_rng(seed)
    first_name, _, first_precision, first_width, _ = layers[0]
    value = first_name + INPUT_SUFFIX
    inputs = ((value, Tensor(_input_type(first_precision), (first_width, 1, 1))),)
    nodes = []
    for index, (name, _, precision, in_features, out_features) in enumerate(layers):
        weight_kind = _weight_kind(precision)
        abc = {}
        if weight_kind == "binary":
            weights = np.where(rng.random((out_features, in_features)) < 0.5, 1, -1)
        elif weight_kind == "ternary":
            weights = rng.integers(-1, 2, (out_features, in_features))
        elif weight_kind == "abc":
            weights = np.where(rng.random((precision.weight_bases, out_features, in_features)) < 0.5, 1, -1)
            abc = {"coefficients": rng.integers(-127, 128, (precision.weight_bases, precision.act_bases)),
                   "ranks": tuple(range(1, precision.act_bases + 1))}
        else:
            weights = rng.integers(-127, 128, (out_features, in_features))
        nodes.append(Dense(name=name, inputs=(value,), weights=weights, weight_kind=weight_kind, **abc))
        value = name
        if index + 1 < len(layers):
            following, _, next_precision, _, _ = layers[index + 1]
            bound = nodes[-1].accumulator_bound(_input_type(precision))
            count, base, output = {"binary": (SIGN_THRESHOLDS, 0, Bipolar()),
                                   "abc": (next_precision.act_bases, 0, levels_type(next_precision.act_bases))}.get(
                next_precision.inputs, (INT8_THRESHOLDS, -128, Int(8, True, 0)))
            thresholds = np.sort(rng.integers(-bound, bound + 1, (out_features, count)), axis=1)
            nodes.append(MultiThreshold(name=following + INPUT_SUFFIX, inputs=(name,), thresholds=thresholds,
                                        descending=rng.random(out_features) < 0.5, base=base, dtype=output))
            value = following + INPUT_SUFFIX
    return Graph(inputs, nodes, (value,))


# --- resources of mapped stages ------------------------------------------------------------------------------------

def _stream_layout(component, stream: str):
    return component.signature.members[stream].signature.members["payload"].shape


def _mvau_memories(unit: Mvau) -> tuple[tuple[int, int, bool], ...]:
    """(depth, width, writable) of a matrix-vector unit's weight ROM and input buffer."""
    return ((*unit.weight_memory, False),
            (unit.synapse_folds, unit.simd * unit.input_format.element_bits, True))


def _threshold_memories(unit: ThresholdUnit) -> tuple[tuple[int, int, bool], ...]:
    """(depth, width, writable) of a threshold unit's descending flags and its per-lane stage memories."""
    folds = unit.channels // unit.pe
    stages = tuple((folds << stage, unit.accumulator_bits + 1, False)
                   for stage in range(unit.stages) for _ in range(unit.pe))
    return ((folds, unit.pe, False),) + stages


def _fifo_memories(fifo: StreamFifo) -> tuple[tuple[int, int, bool], ...]:
    layout = _stream_layout(fifo, "i_stream")
    return ((fifo.memory_depth, layout.size, True),) if fifo.memory_depth else ()


def _window_memories(window: SlidingWindow) -> tuple[tuple[int, int, bool], ...]:
    """(depth, width, writable) of a sliding window's line buffer."""
    depth = window.buffer_rows * window.width * window.channels // window.simd
    return ((depth, _stream_layout(window, "i_stream").size, True),)


def _memories(component) -> tuple[tuple[int, int, bool], ...]:
    """(depth, width, writable) of every memory of a mapped component."""
    if isinstance(component, SlidingWindow):
        return _window_memories(component)
    if isinstance(component, Mvau):
        return _mvau_memories(component)
    if isinstance(component, ThresholdUnit):
        return _threshold_memories(component)
    if isinstance(component, StreamFifo):
        return _fifo_memories(component)
    return ()


def stage_block_ram36(component) -> float:
    """Estimated BRAM36 of one mapped component's memories (memory_block_ram36 of each)."""
    return sum(memory_block_ram36(depth, width, writable=writable)
               for depth, width, writable in _memories(component))


def _rom_bits(component) -> int:
    """Bits (depth x width) of the component's ROMs kept in LUTs, but for the smallest: a ROM of up to
    FOLDED_ROM_DEPTH words is a function of two address bits, which folds into the logic it feeds."""
    return sum(depth * width for depth, width, writable in _memories(component)
               if not writable and FOLDED_ROM_DEPTH < depth <= LUT_DEPTH)


def stage_lut_terms(component) -> tuple[float, ...]:
    """The LUT model's terms (LUT_TERMS order) of one mapped component."""
    terms = dict.fromkeys(LUT_TERMS, 0.0)
    if isinstance(component, Mvau):
        if component.lane in LANE_TERMS:
            terms[LANE_TERMS[component.lane]] = component.lanes
        terms["input_bits"] = component.simd * component.input_format.element_bits
        terms["rom_bits" if component.lane == "multiply" else "binary_rom_bits"] = _rom_bits(component)
    elif isinstance(component, ThresholdUnit):
        terms["compare_bits"] = component.pe * component.stages * (component.accumulator_bits + 1)
        terms["rom_bits"] = _rom_bits(component)
        terms["stream_units"] = 1
    elif isinstance(component, (WidthConverter, StreamFifo, Fork)):
        terms["stream_units"] = 1
    elif isinstance(component, (SlidingWindow, ChannelPad)):
        terms["window_units"] = 1  # the position counters
        terms["window_bits"] = _stream_layout(component, "o_stream").size  # output register and its mux
    elif isinstance(component, (WindowReduce, AddJoin)):
        terms["stream_units"] = 1
        terms["reduce_bits"] = _stream_layout(component, "o_stream").size  # a comparator or adder per bit
    else:
        raise TypeError(f"the cost model has no LUT terms for a {type(component).__name__}")
    return tuple(float(terms[name]) for name in LUT_TERMS)


def lut_terms(stages: Iterable[Stage]) -> tuple[float, ...]:
    """The LUT model's terms of mapped stages, summed (the calibration script fits on these)."""
    total = np.zeros(len(LUT_TERMS))
    for stage in stages:
        total += stage_lut_terms(stage.component)
    return tuple(float(value) for value in total)


def estimate_luts(stages: Iterable[Stage], coefficients: Sequence[float] = LUT_COEFFICIENTS) -> int:
    return round(sum(c * t for c, t in zip(coefficients, lut_terms(stages), strict=True)))


# --- the plan's cost -----------------------------------------------------------------------------------------------

def _layer_stages(stages: Sequence[Stage]) -> list[list[Stage]]:
    """The stages grouped per layer: converter and FIFO in front of a unit, the unit, its threshold unit."""
    groups: list[list[Stage]] = []
    pending: list[Stage] = []
    for stage in stages:
        if isinstance(stage.component, Mvau):
            groups.append(pending + [stage])
            pending = []
        elif isinstance(stage.component, ThresholdUnit):
            groups[-1].append(stage)
        else:
            pending.append(stage)
    return groups


def _layer_cost(stages: list[Stage]) -> LayerCost:
    unit = next(stage for stage in stages if isinstance(stage.component, Mvau))
    mvau = unit.component
    return LayerCost(name=unit.node, lane=mvau.lane, pe=mvau.pe, simd=mvau.simd, luts=estimate_luts(stages),
                     dsps=mvau.pe * mvau.simd if mvau.lane == "multiply" else 0,
                     bram36=sum(stage_block_ram36(stage.component) for stage in stages), cycles=mvau.interval)


@functools.lru_cache(maxsize=1024)
def _cost(layers: tuple[LayerDescription, ...], target_cycles: int, dsp_budget: int | None) -> HardwareCost:
    graph = set_folding(dummy_graph(layers), target_cycles=target_cycles, dsp_budget=dsp_budget)
    stages = map_stages(graph)
    try:
        cycles = estimate_cycles(stages)
        costs = tuple(_layer_cost(group) for group in _layer_stages(stages))
    finally:
        for stage in stages:
            stage.component._MustUse__silence = True  # analysed, never elaborated: not a forgotten design
    return HardwareCost(luts=estimate_luts(stages), dsps=sum(cost.dsps for cost in costs),
                        cycles=cycles.latency, interval=cycles.initiation_interval,
                        bram36=sum(cost.bram36 for cost in costs), layers=costs)


def network_cost(layers: Iterable[LayerDescription], target_cycles: int = DEFAULT_TARGET_CYCLES,
                 dsp_budget: int | None = None) -> HardwareCost:
    """The cost of the network the compiler builds for this plan at `target_cycles` (and `dsp_budget`, a board's
    DSP slices: the compiler raises the target until the int8 multipliers fit; None for no limit).

    The last layer outputs its accumulators; every other one ends in a threshold unit that makes the next layer's
    input (signs or int8 codes). Raises UnsupportedLayerError naming the first layer the compiler cannot map, and
    the compiler's GraphError where the int8 layers cannot fit dsp_budget at any folding.
    """
    layers = tuple(tuple(layer) for layer in layers)
    _check_plan(layers)
    if not isinstance(target_cycles, int) or isinstance(target_cycles, bool) or target_cycles < 1:
        raise ValueError(f"target_cycles must be a positive integer, not {target_cycles!r}")
    return _cost(layers, target_cycles, dsp_budget)
