"""Training and evaluation of a BinaryMLP: Adam, cosine learning-rate decay, cross-entropy on scaled integer logits."""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .data import Dataset
from .mlp import BinaryMLP

__all__ = ["train", "evaluate", "DEFAULT_EPOCHS", "DEFAULT_LR", "DEFAULT_BATCH_SIZE"]

DEFAULT_EPOCHS = 40
DEFAULT_LR = 1e-2
DEFAULT_BATCH_SIZE = 64
EVAL_BATCH_SIZE = 4096  # bounds memory when evaluating on e.g. 60000 Fashion-MNIST images


def evaluate(model: BinaryMLP, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of x whose argmax of model(x), computed in eval mode without gradients, equals y."""
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
                logits = model(x[start:start + EVAL_BATCH_SIZE])
                correct += int((logits.argmax(dim=1) == y[start:start + EVAL_BATCH_SIZE]).sum())
    finally:
        model.train(was_training)
    return correct / len(x)


def train(model: BinaryMLP, dataset: Dataset, *, epochs: int = DEFAULT_EPOCHS, lr: float = DEFAULT_LR,
          batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0, progress: bool = True,
          log: Callable[[dict], None] | None = None) -> list[dict]:
    """Train model on dataset.train_x/train_y in place; return one record per epoch.

    Each record is {"epoch", "loss", "train_acc", "test_acc", "seconds"}: loss and train_acc are averaged over the
    epoch's training batches (train mode, as seen while learning), test_acc is evaluate() on the test set after the
    epoch, seconds is the epoch's wall time including that evaluation. log, if given, is called with each record.

    The loss is cross-entropy on model(x) * |model.logit_scale|. Adam with a cosine learning-rate decay to zero over
    all steps. Deterministic for a given seed and model initialisation: the seed drives torch's global RNG and the
    shuffling generator; the number of torch threads is left as it is.
    """
    _check_arguments(model, dataset, epochs, lr, batch_size)
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)

    n = len(dataset.train_x)
    steps_per_epoch = len(_batches(torch.arange(n), batch_size))
    total_steps = epochs * steps_per_epoch
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps)))

    history: list[dict] = []
    shown_test: dict[str, str] = {}  # the last epoch's test accuracy stays on the bar during the next epoch
    bar = tqdm(total=total_steps, disable=not progress, unit="batch", dynamic_ncols=True)
    try:
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            bar.set_description(f"epoch {epoch}/{epochs}")
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            for batch in _batches(torch.randperm(n, generator=shuffle), batch_size):
                x, y = dataset.train_x[batch], dataset.train_y[batch]
                logits = model(x)
                loss = F.cross_entropy(logits * model.logit_scale.abs(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()

                loss_sum += loss.item() * len(batch)
                correct += int((logits.detach().argmax(dim=1) == y).sum())
                seen += len(batch)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", **shown_test,
                                refresh=False)

            record = {
                "epoch": epoch,
                "loss": loss_sum / seen,
                "train_acc": correct / seen,
                "test_acc": evaluate(model, dataset.test_x, dataset.test_y),
                "seconds": time.perf_counter() - started,
            }
            history.append(record)
            shown_test = {"test": f"{record['test_acc']:.3f}"}
            bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['train_acc']:.3f}", **shown_test)
            if log is not None:
                log(record)
    finally:
        bar.close()
    model.eval()
    return history


def _batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    batches = list(torch.split(order, batch_size))
    # Training-mode batch-norm cannot normalise a single sample; drop such a remainder (a different one each epoch).
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


def _check_arguments(model: BinaryMLP, dataset: Dataset, epochs: int, lr: float, batch_size: int) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2 (batch-norm needs 2 samples), got {batch_size!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if len(dataset.train_x) < 2:
        raise ValueError(f"dataset {dataset.name!r} has {len(dataset.train_x)} training samples; need at least 2")
    features = dataset.train_x.shape[1]
    if features != model.sizes[0]:
        raise ValueError(f"dataset {dataset.name!r} has {features} features but the model's input width "
                         f"(sizes[0]) is {model.sizes[0]}")
    if dataset.classes != model.sizes[-1]:
        raise ValueError(f"dataset {dataset.name!r} has {dataset.classes} classes but the model's output width "
                         f"(sizes[-1]) is {model.sizes[-1]}")
