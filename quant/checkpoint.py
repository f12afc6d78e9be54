"""Saving and loading trained zoo models as torch.save files that load with weights_only=True (no arbitrary
pickles)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION"]

CHECKPOINT_FORMAT = "hbnn-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or is not a valid hbnn checkpoint; the message names the file."""


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: dict) -> None:
    """Write model (architecture + state_dict) and meta to path; meta must hold only JSON-able plain types."""
    path = Path(path)
    if not callable(getattr(model, "config", None)):
        raise TypeError(f"save_checkpoint({path}): model must be a zoo model (with config()), "
                        f"got {type(model).__name__}")
    if not isinstance(meta, dict):
        raise TypeError(f"save_checkpoint({path}): meta must be a dict, got {type(meta).__name__}")
    _check_json_able(meta, "meta")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": model.config(),
        "state_dict": {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()},
        "meta": meta,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so an interrupted save never leaves a half-written checkpoint under the real name.
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Read a checkpoint written by save_checkpoint; return (model in eval mode, meta). Raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for bad zips, bad pickles and forbidden globals
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path}: cannot be read as a weights-only torch file "
                              f"({type(exc).__name__}: {first_line})") from exc

    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"checkpoint {path}: not an {CHECKPOINT_FORMAT} file "
                              f"(format key is {found!r}, expected {CHECKPOINT_FORMAT!r})")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path}: unsupported version {payload.get('version')!r} "
                              f"(this hbnn reads version {CHECKPOINT_VERSION})")
    for key in ("model", "state_dict", "meta"):
        if not isinstance(payload.get(key), dict):
            raise CheckpointError(f"checkpoint {path}: {key!r} is missing or not a dict")

    try:
        model = model_from_any_config(payload["model"])
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from exc
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path}: bad model config: {exc}") from exc
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except Exception as exc:  # RuntimeError for missing/unexpected keys and shape mismatches, others for junk values
        detail = " ".join(str(exc).split())  # torch's message spans several indented lines
        raise CheckpointError(f"checkpoint {path}: weights do not fit model {payload['model']}: {detail}") from exc
    model.eval()
    return model, payload["meta"]


# The model config of checkpoints written by hbnn before the MLP joined the zoo (class BinaryMLP).
RETIRED_KIND = "binary_mlp"


def model_from_any_config(config: dict) -> torch.nn.Module:
    """The zoo model a checkpoint's config describes; raises CheckpointError for the retired BinaryMLP's."""
    if config.get("kind") == RETIRED_KIND:
        sizes = config.get("sizes")
        hidden = ",".join(map(str, sizes[1:-1])) if isinstance(sizes, list) and len(sizes) > 2 else "WIDTHS"
        raise CheckpointError(f"model kind {RETIRED_KIND!r} (the old BinaryMLP) is no longer supported; retrain it "
                              f"as the zoo's mlp: hbnn train --model mlp --precision binary --hidden {hidden}")
    from .models import model_from_config  # imported here: the zoo is large and checkpoint readers may not need it
    return model_from_config(config)


def _check_json_able(value: Any, where: str) -> None:
    """Raise TypeError naming the first value in meta that is not a plain JSON type (str keys, finite floats)."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{where} is {value!r}; checkpoint meta must be JSON-able (no NaN/inf)")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json_able(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has key {key!r}; checkpoint meta keys must be strings")
            _check_json_able(item, f"{where}[{key!r}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__}; checkpoint meta must hold only "
                    "dict/list/str/int/float/bool/None")
