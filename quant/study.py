"""A study: many training runs under one compute budget each, run in parallel processes, tabulated.

Each run is a TrainingSpec; finished runs (checkpoint and result file present) are not redone, so an interrupted
study continues where it stopped. Results go to OUT/results.csv (one row per run) and OUT/results.md (a markdown
table, one row per network with the seeds' accuracies and their mean).
"""
from __future__ import annotations

import csv
import json
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from .experiment import TrainingSpec

__all__ = ["PRESETS", "run_name", "run_study", "markdown_table", "with_seeds"]


def _paper_resnets(dataset: str) -> list[TrainingSpec]:
    """BlinkNet's three variants and ResNet-14's nine (precision x shortcuts), as in the two Amani papers."""
    specs = [TrainingSpec(model="blinknet", precision=p, dataset=dataset) for p in ("fp", "hybrid", "binary")]
    specs += [TrainingSpec(model="resnet14", precision=p, options={"shortcuts": s}, dataset=dataset)
              for p in ("fp", "hybrid", "binary") for s in ("all", "hybrid", "none")]
    return specs


PRESETS = {"paper-resnets": _paper_resnets}


def run_name(spec: TrainingSpec) -> str:
    options = "".join(f"-{key}-{value}" for key, value in sorted(spec.options.items()))
    return f"{spec.model}-{spec.precision}{options}-{spec.full_precision}-{spec.dataset}-seed{spec.seed}"


def _run_one(arguments) -> dict:
    spec, out_dir, threads = arguments
    import torch

    from .experiment import run_training

    torch.set_num_threads(threads)  # several runs share the machine's cores
    started = time.monotonic()
    result = run_training(spec, out_dir / f"{run_name(spec)}.pt", progress=False)
    totals = result.metrics.as_dict()["totals"]
    row = {"run": run_name(spec), "model": spec.model, "precision": spec.precision,
           "options": json.dumps(spec.options, sort_keys=True), "full_precision": spec.full_precision,
           "dataset": spec.dataset, "seed": spec.seed, "test_accuracy": round(result.test_accuracy, 4),
           "epochs_run": len(result.history),
           "train_seconds": result.history[-1].get("train_seconds_total") if result.history else 0,
           "wall_seconds": round(time.monotonic() - started, 1), "memory_bits": totals["memory_bits"],
           "effective_params_32": totals["effective_params_32"], "flops": totals["flops"], "bops": totals["bops"]}
    (out_dir / f"{run_name(spec)}.result.json").write_text(json.dumps(row, indent=2) + "\n")
    return row


def run_study(specs: list[TrainingSpec], out_dir: str | Path, *, jobs: int = 2, threads_per_job: int = 1,
              progress: bool = True) -> list[dict]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, todo = {}, []
    for spec in specs:
        result_path = out_dir / f"{run_name(spec)}.result.json"
        if result_path.exists():
            rows[run_name(spec)] = json.loads(result_path.read_text())
        else:
            todo.append(spec)
    with tqdm(total=len(specs), initial=len(rows), desc="study", unit="run", disable=not progress) as bar:
        if todo:
            context = multiprocessing.get_context("spawn")  # fresh interpreters: no torch state shared by fork
            with context.Pool(min(jobs, len(todo))) as pool:
                for row in pool.imap_unordered(_run_one, [(spec, out_dir, threads_per_job) for spec in todo]):
                    rows[row["run"]] = row
                    bar.update(1)
                    bar.write(f"{row['run']}: accuracy {row['test_accuracy']:.4f} after {row['epochs_run']} "
                              f"epoch(s), {row['train_seconds']} s of training")
    ordered = [rows[run_name(spec)] for spec in specs]
    with (out_dir / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(ordered[0]))
        writer.writeheader()
        writer.writerows(ordered)
    (out_dir / "results.md").write_text(markdown_table(ordered))
    return ordered


def markdown_table(rows: list[dict]) -> str:
    """One line per network (model, precision, options): each seed's test accuracy, their mean, and the seeds'
    epochs and training seconds. Rows of one network share the cost columns (memory, FLOPs, BOPs)."""
    networks: dict[tuple, list[dict]] = {}
    for row in rows:
        networks.setdefault((row["model"], row["precision"], row["options"], row["full_precision"],
                             row["dataset"]), []).append(row)
    lines = ["| model | precision | options | test accuracy (mean) | per seed | memory (bits) | effective 32-bit "
             "params | FLOPs | BOPs | epochs | training s |", "|---|---|---|---:|---|---:|---:|---:|---:|---|---:|"]
    for (model, precision, options, _, _), runs in networks.items():
        runs = sorted(runs, key=lambda run: run.get("seed", 0))
        first = runs[0]
        options = ", ".join(f"{k}={v}" for k, v in json.loads(options).items()) or "-"
        mean = sum(run["test_accuracy"] for run in runs) / len(runs)
        per_seed = " / ".join(f"{run['test_accuracy']:.4f}" for run in runs)
        epochs = " / ".join(str(run["epochs_run"]) for run in runs)
        seconds = max(float(run["train_seconds"] or 0) for run in runs)
        lines.append(f"| {model} | {precision} | {options} | {mean:.4f} | {per_seed} | {first['memory_bits']:,} | "
                     f"{first['effective_params_32']:,.0f} | {first['flops']:,.0f} | {first['bops']:,} | {epochs} | "
                     f"{seconds:.0f} |")
    return "\n".join(lines) + "\n"


def with_seeds(specs: list[TrainingSpec], seeds: list[int]) -> list[TrainingSpec]:
    """Each spec once per seed, seed-major within a network so that a network's runs sit together."""
    return [replace(spec, seed=seed) for spec in specs for seed in seeds]


def with_budget(specs: list[TrainingSpec], seconds: float, max_epochs: int = 1000) -> list[TrainingSpec]:
    return [replace(spec, time_budget=seconds, epochs=max_epochs, device="cpu") for spec in specs]
