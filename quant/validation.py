"""Argument checks shared by layers and models, with messages that name the argument."""
from __future__ import annotations

import operator
from typing import Any

__all__ = ["check_positive_int"]


def check_positive_int(name: str, value: Any) -> int:
    try:
        if isinstance(value, bool):  # True is an int to Python, never a width or a count to us
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive integer, not {value!r}") from None
    if number <= 0:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return number
