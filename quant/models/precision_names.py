"""The names under which the zoo accepts precisions: full-precision baselines, per-layer overrides, variants.

Configs are JSON, so a model stores precisions by name and maps them back to `Precision` objects here.
"""

from __future__ import annotations

from typing import Mapping

from ..precision import BINARY, FLOAT, INT8, TERNARY, Precision, abc

__all__ = [
    "FULL_PRECISIONS", "FULL_PRECISION_ALIAS", "SIGN_INPUTS", "canonical_layer_precision_name",
    "full_precision_name", "resolve_full_precision", "resolve_layer_precision", "study_precision", "takes_signs",
]

# What "full precision" means for a model: INT8 is the hardware's 8-bit fixed point, FLOAT the float paper baseline.
FULL_PRECISIONS: Mapping[str, Precision] = {precision.name: precision for precision in (INT8, FLOAT)}

# A per-layer precision plan names precisions as Precision.name writes them ("binary", "weight-binary",
# "ternary", "binary+alpha", "abc3x1", "int8", ...) or "fp": whatever full precision the model was built with.
FULL_PRECISION_ALIAS = "fp"

# Input kinds a layer turns into signs (+-1 bases). A ReLU in front of such a layer would make every sign +1.
SIGN_INPUTS = frozenset({"binary", "abc"})


def takes_signs(precision: Precision) -> bool:
    """Whether a layer at `precision` binarizes its own input, so its producer must not apply a ReLU."""
    return precision.inputs in SIGN_INPUTS


def resolve_full_precision(full_precision: Precision | str) -> Precision:
    """A full-precision choice given as a Precision or as its name ("int8", "float") -> the Precision."""
    if isinstance(full_precision, str):
        if full_precision not in FULL_PRECISIONS:
            raise ValueError(f"full_precision must be one of {', '.join(FULL_PRECISIONS)}, not {full_precision!r}")
        return FULL_PRECISIONS[full_precision]
    full_precision_name(full_precision)  # validates
    return full_precision


def full_precision_name(full_precision: Precision) -> str:
    """The name a config stores for a full precision; only the named ones can be written to JSON."""
    for name, known in FULL_PRECISIONS.items():
        if full_precision == known:
            return name
    raise ValueError(f"full_precision must be one of {', '.join(FULL_PRECISIONS)} "
                     f"(INT8 or FLOAT), not {full_precision!r}")


def resolve_layer_precision(name: str, full_precision: Precision, *, layer: str) -> Precision:
    """A per-layer precision name ("fp" or a Precision name) -> Precision; `layer` names the culprit on error."""
    if name == FULL_PRECISION_ALIAS:
        return full_precision
    try:
        return Precision.parse(name)
    except ValueError as error:
        raise ValueError(f"layer_precisions[{layer!r}]: {error}; or {FULL_PRECISION_ALIAS!r} for the model's "
                         f"full precision") from None


def canonical_layer_precision_name(name: str, *, layer: str) -> str:
    """The spelling a config stores: "fp" or Precision.name (so "Binary" and "binary" compare equal)."""
    if name == FULL_PRECISION_ALIAS:
        return name
    return resolve_layer_precision(name, FLOAT, layer=layer).name


def study_precision(variant: str, full_precision: Precision, *, weight_bases: int = 1,
                    act_bases: int = 1) -> Precision:
    """The precision of the quantized (middle) layers of an ABC-Net study network for one variant name."""
    if variant == "fp":
        return full_precision
    if variant == "binary":
        return BINARY
    if variant == "ternary":
        return TERNARY
    if variant == "abc":
        return abc(weight_bases, act_bases)
    raise ValueError(f"precision must be one of fp, binary, ternary, abc, not {variant!r}")
