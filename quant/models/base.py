"""ZooModel: what every zoo network shares -- argument checks, its per-layer precision plan, config() and the
list of layers a layer-selection study may binarize."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

from torch import nn

from ..validation import check_positive_int
from ..precision import INT8, Precision
from .precision_names import canonical_layer_precision_name, full_precision_name, resolve_full_precision, \
    resolve_layer_precision

__all__ = ["COMMON_OPTIONS", "Option", "ZooModel", "check_positive_int", "check_probability", "one_of"]


@dataclass(frozen=True)
class Option:
    """A model option: its default, a check that returns the normalized value (or raises ValueError naming the
    option), and the variants it applies to (None: all)."""

    default: Any
    check: Callable[[str, Any], Any]
    variants: tuple[str, ...] | None = None


def check_probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:  # rejects NaN
        raise ValueError(f"{name} must be a dropout probability in [0, 1), not {value!r}")
    return float(value)


def check_layer_precision_names(name: str, value: Any) -> dict[str, str]:
    """{layer: precision name} with each name in its canonical spelling; layer names are checked by _set_plan,
    which knows the model's layers."""
    if not isinstance(value, Mapping) or not all(isinstance(layer, str) for layer in value):
        raise ValueError(f"{name} must map layer names to precision names ('fp', 'binary', 'int8', "
                         f"'weight-binary', ...), not {value!r}")
    return {layer: canonical_layer_precision_name(precision, layer=layer) for layer, precision in value.items()}


# Options every zoo model takes. layer_precisions overrides single conv/linear layers of the variant's plan: a
# precision plan (hbnn.quant.plan) is a variant plus one such mapping.
COMMON_OPTIONS: Mapping[str, Option] = {"layer_precisions": Option({}, check_layer_precision_names)}


def one_of(*choices: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value
    return check


class ZooModel(nn.Module):
    """Base of the zoo's networks. A subclass sets NAME, VARIANTS and OPTIONS, calls super().__init__ with the
    constructor's arguments, then `_set_plan` with {layer name: Precision} in forward order before building
    its layers from the plan that call returns (the variant's, with the layer_precisions option applied)."""

    NAME: ClassVar[str]
    VARIANTS: ClassVar[tuple[str, ...]]
    OPTIONS: ClassVar[Mapping[str, Option]] = {}

    def __init__(self, *, precision: str, in_channels: int, num_classes: int, image_size: int,
                 full_precision: Precision | str = INT8, **options: Any) -> None:
        super().__init__()
        if not isinstance(precision, str) or precision not in self.VARIANTS:
            raise ValueError(f"precision of {self.NAME} must be one of {', '.join(self.VARIANTS)}, "
                             f"not {precision!r}")
        self._variant = precision
        self._in_channels = check_positive_int("in_channels", in_channels)
        self._num_classes = check_positive_int("num_classes", num_classes)
        self._image_size = check_positive_int("image_size", image_size)
        self._full_precision = resolve_full_precision(full_precision)
        self._options = self._resolve_options(options)
        self._plan: dict[str, Precision] = {}

    def _resolve_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        options = {**self.OPTIONS, **COMMON_OPTIONS}
        applicable = {name: option for name, option in options.items()
                      if option.variants is None or self._variant in option.variants}
        for name in given:
            if name in applicable:
                continue
            if name in self.OPTIONS:
                variants = ", ".join(self.OPTIONS[name].variants or ())
                raise ValueError(f"option {name!r} of {self.NAME} applies only to precision {variants}, "
                                 f"not {self._variant!r}")
            valid = ", ".join(options)
            raise ValueError(f"unknown option {name!r} for {self.NAME}; valid options: {valid}")
        return {name: option.check(name, given.get(name, option.default)) for name, option in applicable.items()}

    def _set_plan(self, plan: Mapping[str, Precision]) -> dict[str, Precision]:
        """Store the variant's plan with the layer_precisions overrides applied; return it (a copy) for building."""
        overrides = self._options["layer_precisions"]
        unknown = [layer for layer in overrides if layer not in plan]
        if unknown:
            raise ValueError(f"layer_precisions names unknown layer {unknown[0]!r}; layers of {self.NAME}: "
                             f"{', '.join(plan)}")
        self._plan = dict(plan)
        for layer, name in overrides.items():
            self._plan[layer] = resolve_layer_precision(name, self._full_precision, layer=layer)
        # Forward order, so that equal plans give equal configs.
        self._options["layer_precisions"] = {layer: overrides[layer] for layer in plan if layer in overrides}
        return dict(self._plan)

    # Read-only views of what the model was built from.
    @property
    def variant(self) -> str:
        return self._variant

    @property
    def in_channels(self) -> int:
        return self._in_channels

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def image_size(self) -> int:
        return self._image_size

    @property
    def full_precision(self) -> Precision:
        return self._full_precision

    @property
    def options(self) -> dict[str, Any]:
        """Every option that applies to the variant, defaults filled in (a copy)."""
        return _json_copy(self._options)

    def precision_of(self, layer: str) -> Precision:
        """The precision planned for one conv/linear layer, by module name."""
        if layer not in self._plan:
            raise ValueError(f"{layer!r} is not a conv/linear layer of {self.NAME}; "
                             f"layers: {', '.join(self._plan)}")
        return self._plan[layer]

    def binarizable_layers(self) -> list[str]:
        """Module names of the conv/linear layers, in the order forward() runs them."""
        return list(self._plan)

    def config(self) -> dict[str, Any]:
        """A JSON-able description; `model_from_config(model.config())` rebuilds the same architecture."""
        return {
            "name": self.NAME,
            "precision": self._variant,
            "in_channels": self._in_channels,
            "num_classes": self._num_classes,
            "image_size": self._image_size,
            "full_precision": full_precision_name(self._full_precision),
            "options": _json_copy(self._options),
        }


def _json_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):  # e.g. the mlp's hidden widths: a caller must not change the model's own list
        return [_json_copy(item) for item in value]
    return value
