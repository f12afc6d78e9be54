"""PrecisionPlan: which precision each conv/linear layer of a zoo network gets, saved as JSON.

A plan names a zoo architecture (model, input and output sizes, its options) and gives every one of its
conv/linear layers a precision by name: the full precision ("int8", the hardware's 8-bit fixed point, or "float"),
"weight-binary" (binary weights on 8-bit inputs: Hybrid Binary Networks' weight-binarized layer), "binary" (fully
binarized: XNOR-popcount), or "abcMxN" (ABC-Net). `plan.build_model()` gives the hybrid network (fresh weights);
the same file is what a selection method writes and what the compiler reads.

    {"format": "hbnn-precision-plan", "version": 1,
     "model": {"name": "cresnet20", "in_channels": 1, "num_classes": 10, "image_size": 28,
               "full_precision": "int8", "options": {}},
     "layers": {"stem.conv": "int8", "stage1.0.conv1": "binary", ...},
     "selection": {"method": "mixbin-grad", "budget": "flops:0.3", ...}}

"selection" is provenance (method, budget, per-layer scores, selection time); it does not change the network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .precision import Precision

__all__ = ["PLAN_FORMAT", "PLAN_VERSION", "PlanError", "PrecisionPlan", "role_of"]

PLAN_FORMAT = "hbnn-precision-plan"
PLAN_VERSION = 1
MODEL_KEYS = ("name", "in_channels", "num_classes", "image_size", "full_precision", "options")
# A plan is the "fp" variant with every layer overridden, so that the plan alone decides each layer.
BASE_VARIANT = "fp"


class PlanError(ValueError):
    """A plan file or plan object is not valid; the message names the file, key or layer at fault."""


def role_of(precision: Precision) -> str:
    """The layer's role in a hybrid network, in the words of the papers."""
    if precision.weights in ("float", "int8"):
        return "full precision"
    if precision.weights == "binary":
        return "fully binarized" if precision.inputs == "binary" else "weight-binarized"
    if precision.weights == "abc":
        return f"ABC({precision.weight_bases},{precision.act_bases})"
    return precision.weights


@dataclass(frozen=True)
class PrecisionPlan:
    model: Mapping[str, Any]  # a zoo config without "precision" and without options["layer_precisions"]
    layers: Mapping[str, str]  # every conv/linear layer, in forward order -> Precision.name
    selection: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, Mapping) or set(self.model) != set(MODEL_KEYS):
            raise PlanError(f"plan 'model' must have exactly the keys {', '.join(MODEL_KEYS)}, not {self.model!r}")
        if "layer_precisions" in self.model["options"]:
            raise PlanError("plan 'model.options' must not hold layer_precisions: the plan's 'layers' say them")
        if not isinstance(self.layers, Mapping) or not self.layers:
            raise PlanError(f"plan 'layers' must map every conv/linear layer to a precision name, not {self.layers!r}")
        for layer, name in self.layers.items():
            try:
                canonical = Precision.parse(name).name
            except ValueError as error:
                raise PlanError(f"plan layer {layer!r}: {error}") from None
            if canonical != name:
                raise PlanError(f"plan layer {layer!r}: write the precision as {canonical!r}, not {name!r}")
        if not isinstance(self.selection, Mapping):
            raise PlanError(f"plan 'selection' must be a mapping, not {self.selection!r}")

    # -- building -------------------------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, selection: Mapping[str, Any] | None = None) -> PrecisionPlan:
        """The plan of a built zoo model (whatever variant and overrides it was built with)."""
        config = model.config()
        options = {key: value for key, value in config["options"].items() if key != "layer_precisions"}
        described = {key: config[key] for key in MODEL_KEYS if key != "options"} | {"options": options}
        layers = {name: model.precision_of(name).name for name in model.binarizable_layers()}
        return cls(model=described, layers=layers, selection=dict(selection or {}))

    def with_layers(self, layers: Mapping[str, Precision | str],
                    selection: Mapping[str, Any] | None = None) -> PrecisionPlan:
        """The same architecture with some layers' precisions replaced (names must be layers of the plan)."""
        unknown = [name for name in layers if name not in self.layers]
        if unknown:
            raise PlanError(f"layer {unknown[0]!r} is not in the plan of {self.model['name']}; "
                            f"layers: {', '.join(self.layers)}")
        merged = {name: _precision_name(layers.get(name, precision)) for name, precision in self.layers.items()}
        return PrecisionPlan(self.model, merged, dict(self.selection if selection is None else selection))

    def precisions(self) -> dict[str, Precision]:
        return {name: Precision.parse(precision) for name, precision in self.layers.items()}

    def build_model(self):
        """The hybrid network this plan describes, with fresh weights. Raises PlanError if the plan does not
        name exactly the model's conv/linear layers."""
        from .models import build_model

        config = dict(self.model)
        options = {**config.pop("options"), "layer_precisions": dict(self.layers)}
        try:
            model = build_model(precision=BASE_VARIANT, options=options, **config)
        except ValueError as error:
            raise PlanError(f"plan for {self.model.get('name')!r}: {error}") from None
        missing = [name for name in model.binarizable_layers() if name not in self.layers]
        if missing:
            raise PlanError(f"plan for {self.model['name']} gives no precision for layer(s) {', '.join(missing)}")
        return model

    def binarized(self) -> list[str]:
        """Layers whose weights are binary (weight-binarized or fully binarized), in forward order."""
        return [name for name, precision in self.precisions().items() if precision.weights == "binary"]

    # -- files ----------------------------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "version": PLAN_VERSION, "model": _plain(self.model),
                "layers": dict(self.layers), "selection": _plain(self.selection)}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write the plan as JSON (written whole, then renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(self.to_json())
        os.replace(partial, path)
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = "plan") -> PrecisionPlan:
        if not isinstance(data, Mapping) or data.get("format") != PLAN_FORMAT:
            raise PlanError(f"{source}: not an hbnn precision plan (no \"format\": \"{PLAN_FORMAT}\")")
        if data.get("version") != PLAN_VERSION:
            raise PlanError(f"{source}: plan version {data.get('version')!r}; this hbnn reads version {PLAN_VERSION}")
        unknown = sorted(set(data) - {"format", "version", "model", "layers", "selection"})
        if unknown:
            raise PlanError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}")
        try:
            return cls(model=data.get("model"), layers=data.get("layers"), selection=data.get("selection", {}))
        except PlanError as error:
            raise PlanError(f"{source}: {error}") from None

    @classmethod
    def load(cls, path: str | Path) -> PrecisionPlan:
        path = Path(path)
        if not path.is_file():
            raise PlanError(f"plan {path}: no such file")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise PlanError(f"plan {path}: not JSON ({error})") from None
        plan = cls.from_dict(data, source=f"plan {path}")
        try:
            plan.build_model()  # the layers must be exactly the model's
        except PlanError as error:
            raise PlanError(f"plan {path}: {error}") from None
        return plan

    # -- reading --------------------------------------------------------------------------------------------------
    def table(self) -> str:
        """Per-layer table: role, precision, memory bits, MACs, FLOPs and BOPs (metrics.measure of the network)."""
        from .metrics import measure

        model = self.build_model()
        shape = (self.model["in_channels"], self.model["image_size"], self.model["image_size"])
        metrics = measure(model, shape)
        precisions = self.precisions()
        headers = ["layer", "role", "precision", "memory bits", "MACs", "FLOPs", "BOPs"]
        rows = [[layer.name, role_of(precisions[layer.name]), precisions[layer.name].name, f"{layer.memory_bits:,}",
                 f"{layer.macs:,}", f"{layer.flops:,.0f}", f"{layer.bops:,}"]
                for layer in metrics.layers if layer.name in precisions]
        others = [layer for layer in metrics.layers if layer.name not in precisions]
        rows.append(["(batch-norm and other)", "", "float", f"{sum(m.memory_bits for m in others):,}", "0", "0", "0"])
        total = ["total", "", "", f"{metrics.memory_bits:,}", f"{metrics.macs:,}", f"{metrics.flops:,.0f}",
                 f"{metrics.bops:,}"]
        widths = [max(len(row[i]) for row in [headers, *rows, total]) for i in range(len(headers))]

        def line(cells: list[str]) -> str:
            return "  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(headers), rule, *map(line, rows), rule, line(total)])


def _precision_name(precision: Precision | str) -> str:
    return (precision if isinstance(precision, Precision) else Precision.parse(precision)).name


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
