"""Population count as 6:3 compressors plus a balanced adder tree.

Each group of six bits is counted by a 64-entry table, which is exactly three LUT6s on a Xilinx part, and which
Verilator compiles to a table lookup on a native integer; only the group counts go through adders. A linear chain
of single-bit additions would be deep, slow to simulate, and hits Python's recursion limit in Amaranth.
"""
from amaranth.hdl import Array, Const, Module, Signal, Value

__all__ = ["popcount", "GROUP_BITS"]

GROUP_BITS = 6


def _adder_tree(terms: list[Value]) -> Value:
    while len(terms) > 1:
        paired = [a + b for a, b in zip(terms[0::2], terms[1::2])]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]


def popcount(m: Module, bits: Value, name: str = "popcount") -> Value:
    """Number of set bits of `bits`, as an unsigned value wide enough for len(bits)."""
    width = len(bits)
    if width == 0:
        raise ValueError("popcount of an empty value")
    counts = []
    for index, start in enumerate(range(0, width, GROUP_BITS)):
        size = min(GROUP_BITS, width - start)
        group = Signal(size, name=f"{name}_g{index}")
        m.d.comb += group.eq(bits[start:start + size])
        if size == 1:
            counts.append(group)
            continue
        table = Array(Const(bin(value).count("1"), size.bit_length()) for value in range(1 << size))
        count = Signal(size.bit_length(), name=f"{name}_c{index}")
        m.d.comb += count.eq(table[group])
        counts.append(count)
    return _adder_tree(counts)
