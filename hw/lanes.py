"""The multiply-accumulate lane kinds of a matrix-vector unit, as plain functions from one PE's SIMD weights and the
SIMD input elements to their signed dot product.

- xnor_popcount: binary weights (bit 1 = +1) x bipolar inputs (bit 1 = +1): 2 * popcount(xnor) - SIMD;
- add_subtract: binary weights x int8 inputs (the weight-binarized layers of Hybrid Binary Networks): +-x summed;
- add_subtract_skip: ternary weights (2-bit signed codes -1, 0, +1) x int8 inputs (Ternary Weight Networks): +-x
  or 0 summed, in LUTs like add_subtract;
- multiply: int8 weights x int8 inputs, summed; Yosys maps each 8x8 product to a DSP48 slice;
- abc_xnor_popcount: ABC-Net's M binary weight bases x N bipolar activation bases (levels 0..L in, whose planes
  H_n = level >= rank_n): one xnor_popcount per (weight base, activation base) pair, combined by the layer's integer
  coefficient codes (constant_weighted_sum) once per output.
Sums are balanced adder trees: a chain would be deep, and Amaranth recurses per operand.
"""
from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed

from .popcount import popcount, tree_sum

__all__ = ["LANE_KINDS", "lane_kind", "xnor_popcount", "add_subtract", "add_subtract_skip", "multiply",
           "constant_weighted_sum", "dot_product_bound"]

LANE_KINDS = {("binary", "bipolar"): "xnor_popcount", ("binary", "int8"): "add_subtract",
              ("ternary", "int8"): "add_subtract_skip", ("int8", "int8"): "multiply",
              ("abc", "levels"): "abc_xnor_popcount"}


def lane_kind(weight_kind: str, input_kind: str) -> str:
    try:
        return LANE_KINDS[(weight_kind, input_kind)]
    except KeyError:
        raise ValueError(f"no lane multiplies {weight_kind} weights by {input_kind} inputs; the lanes are "
                         f"{', '.join(f'{w} x {i}' for w, i in LANE_KINDS)}") from None


def dot_product_bound(weight_kind: str, input_kind: str, length: int) -> int:
    """The largest |sum of `length` products| a lane kind can reach (int8 codes are -128..127)."""
    weight = 1 if weight_kind in ("binary", "ternary", "abc") else 128
    element = 1 if input_kind in ("bipolar", "levels") else 128  # an ABC pair's product is +-1
    return weight * element * length


def xnor_popcount(m: Module, name: str, weight_bits: Value, input_bits: Value) -> Value:
    simd = len(weight_bits)
    agreement = Signal(simd, name=f"{name}_xnor")  # a signal: bit selects of an expression repeat it
    m.d.comb += agreement.eq(~(weight_bits ^ input_bits))
    doubled = Cat(Const(0, 1), popcount(agreement), Const(0, 1)).as_signed()  # 2p, with a zero sign bit
    return doubled - simd


def add_subtract(m: Module, name: str, weight_bits: Value, inputs: Sequence[Value]) -> Value:
    terms = []
    for k, element in enumerate(inputs):
        term = Signal(signed(len(element) + 1), name=f"{name}_pm{k}")
        m.d.comb += term.eq(Mux(weight_bits[k], element, -element))
        terms.append(term)
    return tree_sum(terms)


def add_subtract_skip(m: Module, name: str, weight_codes: Value, inputs: Sequence[Value]) -> Value:
    """weight_codes: SIMD 2-bit two's complement codes (+1 = 01, -1 = 11, 0 = 00): bit 0 says "not zero", bit 1
    "negative"."""
    terms = []
    for k, element in enumerate(inputs):
        term = Signal(signed(len(element) + 1), name=f"{name}_pms{k}")
        nonzero, negative = weight_codes[2 * k], weight_codes[2 * k + 1]
        m.d.comb += term.eq(Mux(nonzero, Mux(negative, -element, element), 0))
        terms.append(term)
    return tree_sum(terms)


def multiply(m: Module, name: str, weights: Sequence[Value], inputs: Sequence[Value]) -> Value:
    terms = []
    for k, (weight, element) in enumerate(zip(weights, inputs)):
        product = Signal(signed(len(weight) + len(element)), name=f"{name}_mul{k}")
        m.d.comb += product.eq(weight * element)
        terms.append(product)
    return tree_sum(terms)


def constant_weighted_sum(m: Module, name: str, values: Sequence[Value], constants: Sequence[int]) -> Value:
    """sum_k constants[k] * values[k], the constants fixed at elaboration: shifts and adds of the set bits of each
    |constant| (negated for a negative one), no multiplier, so it stays in LUTs. A zero constant drops its value."""
    terms = []
    for k, (value, constant) in enumerate(zip(values, constants, strict=True)):
        magnitude = abs(int(constant))
        if not magnitude:
            continue
        shifted = tree_sum(value.as_signed() << bit for bit in range(magnitude.bit_length()) if magnitude >> bit & 1)
        term = Signal(signed(len(value) + magnitude.bit_length() + 1), name=f"{name}_c{k}")
        m.d.comb += term.eq(-shifted if constant < 0 else shifted)
        terms.append(term)
    return tree_sum(terms) if terms else Const(0, signed(2))
