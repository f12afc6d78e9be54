"""Training and evaluation: Adam with L1/L2 regularization, learning-rate schedules, augmentation, resumable state."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .data import Dataset

__all__ = ["train", "evaluate", "resolve_device", "SCHEDULES", "DEFAULT_EPOCHS", "DEFAULT_LR", "DEFAULT_BATCH_SIZE"]

DEFAULT_EPOCHS = 40
DEFAULT_LR = 1e-2
DEFAULT_BATCH_SIZE = 64
# Bounds memory when evaluating: the eval forward is float64, and a NIN's 192 channels of 28x28 take 1.2 MB per
# image and layer (4096 images at once ran a 24 GiB machine out of memory).
EVAL_BATCH_SIZE = 256


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """Fraction of rows of x whose argmax of model(x), computed in eval mode without gradients, equals y.

    preprocess: the deterministic input transform training used (e.g. the augmentation's normalization)."""
    if len(x) != len(y):
        raise ValueError(f"evaluate: {len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise ValueError("evaluate: no samples")
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with torch.no_grad():
            for start in range(0, len(x), EVAL_BATCH_SIZE):
                device = next(model.parameters()).device
                batch = x[start:start + EVAL_BATCH_SIZE]
                if preprocess is not None:
                    batch = preprocess(batch)
                logits = model(batch.to(device)).cpu()
                correct += int((logits.argmax(dim=1) == y[start:start + EVAL_BATCH_SIZE]).sum())
    finally:
        model.train(was_training)
    return correct / len(x)


SCHEDULES = ("cosine", "step", "constant")


def _schedule(name: str, optimizer, epochs: int, steps_per_epoch: int):
    total = epochs * steps_per_epoch
    if name == "cosine":  # per step, to zero at the end
        factor = lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))  # noqa: E731
    elif name == "step":  # x0.1 at 50% and 75% of the epochs, the usual ResNet recipe
        milestones = (epochs * steps_per_epoch // 2, epochs * steps_per_epoch * 3 // 4)
        factor = lambda step: 0.1 ** sum(step >= m for m in milestones)  # noqa: E731
    elif name == "constant":
        factor = lambda step: 1.0  # noqa: E731
    else:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {name!r}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def train(model: torch.nn.Module, dataset: Dataset, *, epochs: int = DEFAULT_EPOCHS, lr: float = DEFAULT_LR,
          batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0, progress: bool = True,
          log: Callable[[dict], None] | None = None, weight_decay: float = 0.0, l1: float = 0.0,
          schedule: str = "cosine", augmentation: Callable | None = None, device: str = "cpu",
          state_path: str | Path | None = None, resume: bool = False,
          time_budget: float | None = None) -> list[dict]:
    """Train model on the dataset's training split in place; return one record per epoch.

    Each record is {"epoch", "loss", "train_acc", "test_acc", "seconds"}: loss and train_acc are averaged over the
    epoch's training batches (train mode, as seen while learning), test_acc is evaluate() on the test set after the
    epoch, seconds is the epoch's wall time including that evaluation. log, if given, is called with each record.

    Models with `input_layout == "flat"` (the MLP) get flattened pixels, others (N, C, H, W) images, to which
    `augmentation(x, generator)` is applied when given. The loss is cross-entropy, on logits * |model.logit_scale|
    where the model has one (logits that are sums of +-1 weights, too large for softmax), plus l1 * sum|w| over
    weight matrices and kernels; weight_decay is Adam's L2 term. Learning rate: `schedule` (cosine per step, step
    decay, or constant).

    With `state_path`, the full training state (weights, optimizer, schedule, random generators, history) is
    written there after every epoch; `resume=True` continues from it, giving the same result as an uninterrupted
    run. Deterministic for a given seed and model initialisation.

    With `time_budget` (seconds of training, evaluations excluded), the budget replaces the step count: the
    cosine schedule follows the elapsed fraction of the budget, and training stops when it is spent (so at most
    `epochs` epochs, the last one possibly partial). This gives every network the same compute, at the price of
    run-to-run determinism; it cannot be combined with resume.
    """
    _check_arguments(model, dataset, epochs, lr, batch_size)
    if l1 < 0 or weight_decay < 0:
        raise ValueError(f"l1 and weight_decay must be >= 0, got l1={l1!r}, weight_decay={weight_decay!r}")
    device = resolve_device(device)
    model.to(device)
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    augment_generator = torch.Generator().manual_seed(seed + 1)
    images = getattr(model, "input_layout", "images") == "images"
    train_x = dataset.train_images if images else dataset.train_x
    test_x = dataset.test_images if images else dataset.test_x

    n = len(train_x)
    steps_per_epoch = len(_batches(torch.arange(n), batch_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = _schedule(schedule, optimizer, epochs, steps_per_epoch)
    settings = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed, "weight_decay": weight_decay,
                "l1": l1, "schedule": schedule}
    history: list[dict] = []
    if time_budget is not None:
        if not time_budget > 0:
            raise ValueError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
        if resume or schedule != "cosine":
            raise ValueError("time_budget works with the cosine schedule and without resume")
    spent = 0.0  # training seconds so far, for time_budget
    if resume:
        if state_path is None:
            raise ValueError("resume=True needs state_path")
        history = _load_state(state_path, model, optimizer, scheduler, shuffle, augment_generator, settings)
    penalized = [p for p in model.parameters() if p.dim() > 1] if l1 else []
    # Augmentations have a deterministic part (normalization) that the test images need as well.
    preprocess = getattr(augmentation, "preprocess", None) if images else None
    scale = getattr(model, "logit_scale", None)

    shown_test: dict[str, str] = {}  # the last epoch's test accuracy stays on the bar during the next epoch
    bar = tqdm(total=epochs * steps_per_epoch, initial=len(history) * steps_per_epoch, disable=not progress,
               unit="batch", dynamic_ncols=True)
    try:
        for epoch in range(len(history) + 1, epochs + 1):
            started = time.perf_counter()
            bar.set_description(f"epoch {epoch}/{epochs}")
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            out_of_time = False
            for batch in _batches(torch.randperm(n, generator=shuffle), batch_size):
                step_started = time.perf_counter()
                if time_budget is not None:
                    for group in optimizer.param_groups:
                        group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * min(spent / time_budget, 1.0)))
                x, y = train_x[batch], dataset.train_y[batch]
                if augmentation is not None and images:
                    x = augmentation(x, augment_generator)
                x, y = x.to(device), y.to(device)
                logits = model(x)
                loss = F.cross_entropy(logits * scale.abs() if scale is not None else logits, y)
                if penalized:
                    loss = loss + l1 * sum(p.abs().sum() for p in penalized)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if time_budget is None:
                    scheduler.step()

                loss_sum += loss.item() * len(batch)
                correct += int((logits.detach().argmax(dim=1) == y).sum())
                seen += len(batch)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", **shown_test,
                                refresh=False)
                spent += time.perf_counter() - step_started
                if time_budget is not None and spent >= time_budget:
                    out_of_time = True
                    break

            record = {
                "epoch": epoch,
                "loss": loss_sum / seen,
                "train_acc": correct / seen,
                "test_acc": evaluate(model, test_x, dataset.test_y, preprocess),
                "seconds": time.perf_counter() - started,
            }
            if time_budget is not None:
                record["train_seconds_total"] = round(spent, 2)
            history.append(record)
            shown_test = {"test": f"{record['test_acc']:.3f}"}
            bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['train_acc']:.3f}", **shown_test)
            if state_path is not None:
                _save_state(state_path, model, optimizer, scheduler, shuffle, augment_generator, settings, history)
            if log is not None:
                log(record)
            if out_of_time:
                break
    finally:
        bar.close()
    model.eval()
    return history


def _save_state(path, model, optimizer, scheduler, shuffle, augment_generator, settings, history) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": "hbnn-training-state", "settings": settings, "history": history,
             "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "torch_rng": torch.get_rng_state(), "shuffle_rng": shuffle.get_state(),
             "augment_rng": augment_generator.get_state()}
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)  # an interrupted save never leaves a half-written state


def _load_state(path, model, optimizer, scheduler, shuffle, augment_generator, settings) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: no training state at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot resume from {path}: not a readable training state ({type(exc).__name__})") \
            from exc
    if not isinstance(state, dict) or state.get("format") != "hbnn-training-state":
        raise ValueError(f"cannot resume from {path}: not an hbnn training state")
    changed = {k: (state["settings"].get(k), v) for k, v in settings.items() if state["settings"].get(k) != v}
    if changed:
        raise ValueError(f"cannot resume from {path}: settings differ (saved, now): {changed}")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    shuffle.set_state(state["shuffle_rng"])
    augment_generator.set_state(state["augment_rng"])
    return list(state["history"])


def _batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    batches = list(torch.split(order, batch_size))
    # Training-mode batch-norm cannot normalise a single sample; drop such a remainder (a different one each epoch).
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


def _check_arguments(model: torch.nn.Module, dataset: Dataset, epochs: int, lr: float, batch_size: int) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2 (batch-norm needs 2 samples), got {batch_size!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if len(dataset.train_x) < 2:
        raise ValueError(f"dataset {dataset.name!r} has {len(dataset.train_x)} training samples; need at least 2")
    # Zoo models know their sizes; a mismatch would otherwise surface as a shape error deep in the forward pass
    # (or, for classes, not at all until the loss indexes out of range).
    classes = getattr(model, "num_classes", None)
    if classes is not None and dataset.classes != classes:
        raise ValueError(f"dataset {dataset.name!r} has {dataset.classes} classes but the model's num_classes is "
                         f"{classes}")
    features = getattr(model, "features", None) if getattr(model, "input_layout", "images") == "flat" else None
    if isinstance(features, int) and dataset.train_x.shape[1] != features:
        raise ValueError(f"dataset {dataset.name!r} has {dataset.train_x.shape[1]} features but the model's input "
                         f"width (in_channels x image_size^2) is {features}")
