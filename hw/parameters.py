"""Checks of component parameters, shared by the hw components: TypeError for a wrong kind of value, ValueError
for a wrong value, each message naming the parameter (amaranth.lib's convention)."""
from __future__ import annotations

__all__ = ["check_positive_int", "check_divides"]


def check_positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    return value


def check_divides(name: str, value: int, size: int, what: str) -> None:
    """`value` (a PE or SIMD count) must divide `size`; `what` names the size in the message."""
    if size % value:
        divisors = [d for d in range(1, size + 1) if size % d == 0]
        raise ValueError(f"{name}={value} does not divide {what} (divisors: {divisors})")
