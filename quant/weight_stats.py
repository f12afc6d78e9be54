"""Weight statistics (means, std, least-squares coefficients) that come out as the same bits on every run.

Quantized weights and their float scales depend on these statistics, and hardware compiled later in another
process must see the very values the PyTorch eval forward used. torch's float reductions do not promise that: a
whole-tensor mean is split across threads, so its last bit changes with torch.get_num_threads(), and LAPACK's lstsq
returned different last bits for identical calls in testing. So every sum here is taken on a fixed-point grid in
int64, where addition is exact and therefore independent of order and thread count, and the small least-squares
system is solved in exact rational arithmetic.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from .exact_ops import straight_through

__all__ = ["deterministic_mean", "deterministic_std", "deterministic_sum", "least_squares_coefficients"]

INT64_BITS = 62  # headroom below int64's 63 magnitude bits


def deterministic_sum(values: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """float64 sum of values (over everything, or along dim), identical whatever the order of addition.

    Each value is rounded (half to even) to multiples of a power-of-two unit chosen so that all of them together
    fit in int64: about 62 - log2(count) bits below the largest magnitude, far finer than a float32 result needs.
    The int64 sum is exact; its one conversion to float64 is correctly rounded.
    """
    values = values.detach().double()
    count = values.numel() if dim is None else values.shape[dim]
    peak = float(values.abs().max()) if values.numel() else 0.0
    if peak == 0.0:
        return values.sum() if dim is None else values.sum(dim)
    _, top_exponent = math.frexp(peak)  # peak < 2^top_exponent
    unit = math.ldexp(1.0, top_exponent - (INT64_BITS - max(count, 1).bit_length()))
    fixed = torch.round(values / unit).to(torch.int64)  # exact division by a power of two
    total = fixed.sum() if dim is None else fixed.sum(dim)
    return total.double() * unit


def deterministic_mean(values: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """float32 mean via deterministic_sum; the gradient is that of values.mean(dim)."""
    count = values.numel() if dim is None else values.shape[dim]
    mean = (deterministic_sum(values, dim) / count).to(torch.float32)
    return straight_through(mean, values.mean() if dim is None else values.mean(dim))


def deterministic_std(values: torch.Tensor) -> torch.Tensor:
    """float32 population standard deviation of all values (no gradient), via deterministic sums."""
    values = values.detach().double()
    mean = deterministic_sum(values) / values.numel()
    variance = float(deterministic_sum((values - mean) ** 2)) / values.numel()
    return torch.tensor(math.sqrt(variance), dtype=torch.float32)  # math.sqrt is correctly rounded


def least_squares_coefficients(bases: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """float32 alpha (M,) minimising ||target - sum_i alpha_i bases_i|| for +-1 bases (M, ...); no gradient.

    Normal equations G alpha = r: G_ij = <B_i, B_j> are exact integers, r_i = <B_i, target> deterministic sums,
    solved by exact Gaussian elimination over the rationals. A basis dependent on earlier ones (e.g. a repeat of
    one) gets alpha 0, which leaves the fit unchanged.
    """
    flat = bases.detach().reshape(len(bases), -1)
    gram = (flat.to(torch.int64) @ flat.to(torch.int64).T).tolist()
    products = [deterministic_sum(basis.double() * target.detach().reshape(-1).double()) for basis in flat]
    rows = [[Fraction(g) for g in gram_row] + [Fraction(float(r))] for gram_row, r in zip(gram, products)]
    solution = _solve_exactly(rows, len(flat))
    return torch.tensor([float(value) for value in solution], dtype=torch.float64).to(torch.float32)


def _solve_exactly(rows: list[list[Fraction]], size: int) -> list[Fraction]:
    """Gauss-Jordan elimination on the augmented symmetric PSD system; free variables (zero pivots) are 0."""
    pivot_rows: dict[int, int] = {}
    next_row = 0
    for column in range(size):
        pivot = next((r for r in range(next_row, size) if rows[r][column] != 0), None)
        if pivot is None:
            continue
        rows[next_row], rows[pivot] = rows[pivot], rows[next_row]
        lead = rows[next_row][column]
        rows[next_row] = [value / lead for value in rows[next_row]]
        for r in range(size):
            if r != next_row and rows[r][column] != 0:
                factor = rows[r][column]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[next_row])]
        pivot_rows[column] = next_row
        next_row += 1
    return [rows[pivot_rows[c]][size] if c in pivot_rows else Fraction(0) for c in range(size)]
