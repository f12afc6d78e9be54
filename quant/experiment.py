"""One training run from a plain spec: build the model, train it, write checkpoint, logs and metrics.

Files written next to the checkpoint OUT (e.g. runs/model.pt): OUT itself, OUT.history.json and .csv (one row per
epoch), OUT.metrics.json (per-layer memory bits, effective parameters, FLOPs/BOPs) and OUT.state.pt (the training
state after the last finished epoch, from which `resume` continues).
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .augment import standard_augmentation
from .checkpoint import save_checkpoint
from .data import Dataset, load_dataset
from .metrics import NetworkMetrics, measure
from .train import DEFAULT_BATCH_SIZE, DEFAULT_LR, evaluate, train

__all__ = ["TrainingSpec", "TrainingResult", "build_model_for", "run_training"]


@dataclass(frozen=True)
class TrainingSpec:
    model: str = "mlp"  # a zoo model name (hbnn.quant.models.MODELS); "mlp" is the one the compiler maps today
    precision: str = "fp"  # the model's variant: fp, hybrid, binary, ternary, abc
    full_precision: str = "int8"  # what "fp" layers are: int8 (the hardware's) or float (paper baselines)
    options: dict[str, Any] = field(default_factory=dict)  # model options (shortcuts, dropout, weight_bases, ...)
    hidden: tuple[int, ...] = (128, 128)  # the mlp's hidden widths (its option "hidden")
    dataset: str = "digits"
    data_root: str | None = None
    epochs: int = 10
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0
    weight_decay: float = 0.0
    l1: float = 0.0
    schedule: str = "cosine"
    augment: bool = True  # the dataset's standard augmentation, for image models
    device: str = "auto"
    time_budget: float | None = None  # seconds of training; replaces epochs as the stopping rule (max `epochs`)

    def as_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}


@dataclass(frozen=True)
class TrainingResult:
    model: torch.nn.Module
    history: list[dict]
    metrics: NetworkMetrics
    test_accuracy: float
    checkpoint: Path
    meta: dict


def build_model_for(spec: TrainingSpec, dataset: Dataset) -> torch.nn.Module:
    from .models import build_model

    torch.manual_seed(spec.seed)
    options = dict(spec.options)
    if spec.model == "mlp":
        # spec.hidden is the mlp's width option, kept as a field of its own (--hidden); options may not repeat it.
        if "hidden" in options:
            raise ValueError("give the mlp's hidden widths as hidden (--hidden), not as the model option 'hidden'")
        options["hidden"] = list(spec.hidden)
    channels, height, _ = dataset.image_shape
    return build_model(spec.model, precision=spec.precision, in_channels=channels, num_classes=dataset.classes,
                       image_size=height, full_precision=spec.full_precision, options=options)


def _write_logs(out: Path, history: list[dict]) -> None:
    out.with_suffix(".history.json").write_text(json.dumps(history, indent=2) + "\n")
    with out.with_suffix(".history.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(history[0]) if history else ["epoch"])
        writer.writeheader()
        writer.writerows(history)


def _normalization(augmentation) -> dict | None:
    if augmentation is None or augmentation.mean is None:
        return None
    return {"mean": list(augmentation.mean), "std": list(augmentation.std)}


def run_training(spec: TrainingSpec, out: str | Path, *, progress: bool = True, resume: bool = False,
                 dataset: Dataset | None = None) -> TrainingResult:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dataset = dataset or load_dataset(spec.dataset, spec.data_root)
    model = build_model_for(spec, dataset)
    images = getattr(model, "input_layout", "images") == "images"
    augmentation = standard_augmentation(dataset.name) if spec.augment and images else None
    started = time.monotonic()
    history = train(model, dataset, epochs=spec.epochs, lr=spec.lr, batch_size=spec.batch_size, seed=spec.seed,
                    progress=progress, weight_decay=spec.weight_decay, l1=spec.l1, schedule=spec.schedule,
                    augmentation=augmentation, device=spec.device, state_path=out.with_suffix(".state.pt"),
                    resume=resume, time_budget=spec.time_budget)
    model.cpu()
    _write_logs(out, history)
    accuracy = evaluate(model, dataset.test_images if images else dataset.test_x, dataset.test_y,
                        getattr(augmentation, "preprocess", None))
    metrics = measure(model, dataset.image_shape if images else (dataset.features,))
    metrics.to_json(out.with_suffix(".metrics.json"))
    meta = {"dataset": dataset.name, "input_normalization": _normalization(augmentation), "data_root": spec.data_root, "epochs": spec.epochs, "seed": spec.seed,
            "test_accuracy": accuracy, "train_seconds": round(time.monotonic() - started, 1),
            "spec": spec.as_dict()}
    save_checkpoint(out, model, meta)
    return TrainingResult(model, history, metrics, accuracy, out, meta)
