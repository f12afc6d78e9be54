"""A sweep: selection methods x FLOPs budgets on one network and dataset, each plan fine-tuned the same way.

    OUT/sweep.json         the SweepSpec (a resumed sweep must be given the same one)
    OUT/base.pt            the full-precision network every method starts from (trained here unless given)
    OUT/plans/ID.json      each point's precision plan, with how it was selected
    OUT/points/ID.json     each point's result: accuracy after fine-tuning, FLOPs, selection and training time
    OUT/results.csv, results.md, accuracy_vs_budget.png

A point whose result file exists is not redone, so an interrupted sweep resumes where it stopped. Points run in
parallel processes (`jobs`), each with `threads` torch threads.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

__all__ = ["PRUNING_METHOD", "SweepSpec", "point_id", "run_sweep", "plot_sweep", "markdown_table"]

PRUNING_METHOD = "slimming"  # network slimming: prunes channels instead of binarizing layers


@dataclass(frozen=True)
class SweepSpec:
    model: str = "cresnet20"
    dataset: str = "fashion-mnist"
    data_root: str | None = None
    methods: tuple[str, ...] = ("mixbin-grad", "mixbin-loss", "random", "front", "rear")
    budgets: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)  # values of budget_kind: FLOPs fractions by default
    budget_kind: str = "flops"  # or a hardware kind: luts, dsps, cycles, bram (hbnn.quant.selection.budgets)
    board: str | None = None  # hardware budgets on a conv network: priced as compiled for this board
    target_cycles: int | None = None  # hardware budgets: the compiler's folding target
    synthesize: bool = False  # hardware budgets: synthesize each fine-tuned plan with Yosys beside its estimate
    full_precision: str = "int8"
    options: dict[str, Any] = field(default_factory=dict)
    pretrain_epochs: int = 5  # ignored when a base checkpoint is given
    finetune_epochs: int = 2
    train_subset: int | None = None  # train (and fine-tune) on this many training images; None: all
    test_subset: int | None = None  # report accuracy on this many test images (a fixed random draw); None: all
    calibration: int = 512  # training images the selection methods may look at
    lr: float = 1e-2
    finetune_lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        from .methods import METHODS

        unknown = [method for method in self.methods if method not in METHODS and method != PRUNING_METHOD]
        if unknown:
            raise ValueError(f"unknown method {unknown[0]!r}; methods: {', '.join([*METHODS, PRUNING_METHOD])}")
        from .budgets import BUDGET_KINDS, HARDWARE_KINDS

        if not self.methods or not self.budgets:
            raise ValueError("a sweep needs at least one method and one budget")
        if self.budget_kind not in BUDGET_KINDS:
            raise ValueError(f"unknown budget kind {self.budget_kind!r}; kinds: {', '.join(BUDGET_KINDS)}")
        hardware = self.budget_kind in HARDWARE_KINDS
        for budget in self.budgets:
            if not hardware and not 0 < budget <= 1:
                raise ValueError(f"budget {budget!r}: a FLOPs budget is a fraction in (0, 1]")
            if hardware and not 0 <= budget < float("inf"):
                raise ValueError(f"budget {budget!r}: a {self.budget_kind} budget is a finite number >= 0")
        if not hardware and (self.board, self.target_cycles, self.synthesize) != (None, None, False):
            raise ValueError(f"board, target_cycles and synthesize apply to hardware budgets "
                             f"({', '.join(HARDWARE_KINDS)}), not to {self.budget_kind}")
        if hardware and PRUNING_METHOD in self.methods:
            raise ValueError(f"{PRUNING_METHOD} prunes to a FLOPs budget; it has no {self.budget_kind} budget")
        if PRUNING_METHOD in self.methods and self.finetune_epochs < 2:
            raise ValueError("slimming trains with its sparsity penalty, then fine-tunes: it needs finetune_epochs >= 2")

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # tuples -> lists, as the JSON file holds them

    def budget_for(self, model, input_shape: tuple[int, ...], value: float):
        """The Budget of one point for `model`."""
        from .budgets import HARDWARE_KINDS, BudgetSpec

        hardware = {}
        if self.budget_kind in HARDWARE_KINDS:
            hardware = {key: value for key, value in (("board", self.board), ("target_cycles", self.target_cycles))
                        if value is not None}
        return BudgetSpec(self.budget_kind, value).for_model(model, input_shape, **hardware)


def point_id(method: str, budget: float) -> str:
    return f"{method}-{budget:g}"


# -- data and base network -----------------------------------------------------------------------------------------
def _dataset(spec: SweepSpec):
    from ..data import Dataset, load_dataset

    dataset = load_dataset(spec.dataset, spec.data_root)
    train = _subset(len(dataset.train_x), spec.train_subset, spec.seed)
    test = _subset(len(dataset.test_x), spec.test_subset, spec.seed + 2)
    return Dataset(dataset.name, dataset.train_x[train], dataset.train_y[train], dataset.test_x[test],
                   dataset.test_y[test], classes=dataset.classes, image_shape=dataset.image_shape)


def _subset(size: int, wanted: int | None, seed: int) -> torch.Tensor:
    """Indices of a fixed random subset of `wanted` items (in their original order), or all of them."""
    if wanted is None or wanted >= size:
        return torch.arange(size)
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:wanted].sort().values


def _augmentation(dataset, model):
    """The dataset's standard augmentation, or None for a model that reads flat pixels (the mlp): training gives
    those neither augmentation nor normalization, so selection and evaluation must not either."""
    from ..augment import standard_augmentation

    if getattr(model, "input_layout", "images") == "flat":
        return None
    return standard_augmentation(dataset.name)


def _preprocess(augmentation):
    return None if augmentation is None else augmentation.preprocess


def _base_model(spec: SweepSpec, out_dir: Path, dataset, progress: bool):
    """The trained full-precision network: OUT/base.pt, trained here if it is not there yet."""
    from ..checkpoint import load_checkpoint
    from ..experiment import TrainingSpec, run_training

    path = out_dir / "base.pt"
    if not path.exists():
        training = TrainingSpec(model=spec.model, precision="fp", full_precision=spec.full_precision,
                                options=dict(spec.options), dataset=spec.dataset, data_root=spec.data_root,
                                epochs=spec.pretrain_epochs, lr=spec.lr, batch_size=spec.batch_size, seed=spec.seed,
                                device="cpu")
        run_training(training, path, progress=progress, dataset=dataset)
    model, meta = load_checkpoint(path)
    layers = model.binarizable_layers()
    not_full = [name for name in layers if model.precision_of(name) != model.full_precision]
    if not_full:
        raise ValueError(f"{path}: the base network must be at full precision everywhere; {not_full[0]!r} is "
                         f"{model.precision_of(not_full[0]).name}")
    return model, meta


def _context(spec: SweepSpec, model, dataset):
    from .context import SelectionContext

    generator = torch.Generator().manual_seed(spec.seed + 1)
    chosen = torch.randperm(len(dataset.train_x), generator=generator)[:spec.calibration]
    images = dataset.train_images[chosen]
    augmentation = _augmentation(dataset, model)
    if augmentation is not None:
        images = augmentation.preprocess(images)
    return SelectionContext(model, images, dataset.train_y[chosen])


# -- one point -----------------------------------------------------------------------------------------------------
def _run_point(arguments) -> dict:
    spec, out_dir, method, budget, threads = arguments
    torch.set_num_threads(threads)
    from ..checkpoint import load_checkpoint

    dataset = _dataset(spec)
    base, _ = load_checkpoint(out_dir / "base.pt")
    row = {"point": point_id(method, budget), "method": method, "budget": budget}
    try:
        if method == PRUNING_METHOD:
            row.update(_pruning_point(spec, base, dataset, budget))
        else:
            row.update(_selection_point(spec, out_dir, base, dataset, method, budget))
    except ValueError as error:
        from .result import BudgetUnreachableError

        if not isinstance(error, BudgetUnreachableError):
            raise
        row.update(status="unreachable", message=str(error))
    _write_json(out_dir / "points" / f"{point_id(method, budget)}.json", row)
    return row


def _selection_point(spec, out_dir, base, dataset, method, budget) -> dict:
    from ..metrics import measure
    from ..train import evaluate, train
    from .budgets import FlopsBudget
    from .methods import plan_of, select

    context = _context(spec, base, dataset)
    chosen_budget = spec.budget_for(base, context.input_shape, budget)
    selection = select(method, context, chosen_budget, seed=spec.seed)
    plan = plan_of(context, selection, chosen_budget, f"{spec.budget_kind}:{budget:g}")
    plan.save(out_dir / "plans" / f"{point_id(method, budget)}.json")
    reference_flops = FlopsBudget.for_model(base, context.input_shape, 1.0).reference_flops

    model = context.model_with(selection.layers)
    augmentation = _augmentation(dataset, model)
    started = time.monotonic()
    train(model, dataset, epochs=spec.finetune_epochs, lr=spec.finetune_lr, batch_size=spec.batch_size,
          seed=spec.seed, progress=False, augmentation=augmentation, device="cpu")
    finetune_seconds = time.monotonic() - started
    accuracy = evaluate(model, dataset.test_images, dataset.test_y, _preprocess(augmentation))
    metrics = measure(model, dataset.image_shape)
    row = {"status": "ok", "test_accuracy": round(accuracy, 4), "flops": metrics.flops,
           "flops_fraction": round(metrics.flops / reference_flops, 4), "bops": metrics.bops,
           "memory_bits": metrics.memory_bits, "binarized": len(selection.binarized()),
           "selection_seconds": round(selection.seconds, 2), "finetune_seconds": round(finetune_seconds, 1),
           "cost": chosen_budget.cost(selection.layers)}
    if hasattr(chosen_budget, "hardware_cost"):
        priced = chosen_budget.hardware_cost(selection.layers)
        row.update(luts_estimate=priced.luts, dsps=priced.dsps, cycles=priced.cycles, bram36=priced.bram36)
        if spec.synthesize:
            row["luts_synthesized"] = _synthesized_luts(chosen_budget, model)
    return row


def _synthesized_luts(budget, model) -> int:
    """Yosys' logic LUTs of what the budget priced, built from the fine-tuned network."""
    import tempfile

    from ...compiler.map_to_hardware import TOP_NAME, emit_verilog, map_design
    from ...hw.synthesis import synthesize

    with tempfile.TemporaryDirectory(prefix="hbnn-sweep-") as work:
        path = Path(work) / f"{TOP_NAME}.v"
        path.write_text(emit_verilog(map_design(budget.compiled(model)).accelerator()))
        return synthesize(path, TOP_NAME).luts


def _pruning_point(spec, base, dataset, budget) -> dict:
    from ..models import model_from_config
    from ..train import evaluate
    from .context import transfer_weights
    from .slimming import train_slimmed

    model = model_from_config(base.config())
    transfer_weights(base, model)
    augmentation = _augmentation(dataset, model)
    started = time.monotonic()
    _, pruning = train_slimmed(model, dataset, budget, epochs=spec.finetune_epochs, augmentation=augmentation,
                               seed=spec.seed, progress=False, lr=spec.finetune_lr, batch_size=spec.batch_size,
                               device="cpu")
    finetune_seconds = time.monotonic() - started
    accuracy = evaluate(model, dataset.test_images, dataset.test_y, _preprocess(augmentation))
    return {"status": "ok", "test_accuracy": round(accuracy, 4), "flops": pruning.flops,
            "flops_fraction": round(pruning.flops / pruning.reference_flops, 4), "bops": 0,
            "memory_bits": None, "binarized": 0, "selection_seconds": 0.0,
            "finetune_seconds": round(finetune_seconds, 1)}


# -- the sweep -----------------------------------------------------------------------------------------------------
def run_sweep(spec: SweepSpec, out_dir: str | Path, *, jobs: int = 1, threads: int | None = None,
              progress: bool = True) -> list[dict]:
    """Run every (method, budget) point not finished yet; write results.csv/.md and the plot; return the rows
    in (method, budget) order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_same_spec(spec, out_dir / "sweep.json")
    dataset = _dataset(spec)
    base, base_meta = _base_model(spec, out_dir, dataset, progress)
    threads = threads or max(1, (os.cpu_count() or 1) // max(jobs, 1))

    points = [(method, budget) for method in spec.methods for budget in spec.budgets]
    rows: dict[str, dict] = {}
    todo = []
    for method, budget in points:
        path = out_dir / "points" / f"{point_id(method, budget)}.json"
        if path.exists():
            rows[point_id(method, budget)] = json.loads(path.read_text())
        else:
            todo.append((spec, out_dir, method, budget, threads))
    with tqdm(total=len(points), initial=len(rows), desc="sweep", unit="point", disable=not progress) as bar:
        for row in _imap(_run_point, todo, jobs):
            rows[row["point"]] = row
            bar.update(1)
            done = (f"accuracy {row['test_accuracy']:.4f}, selection {row['selection_seconds']} s"
                    if row["status"] == "ok" else "budget unreachable")
            bar.write(f"{row['point']}: {done}")
    ordered = [rows[point_id(method, budget)] for method, budget in points]
    base_accuracy = base_meta.get("test_accuracy")
    _write_results(out_dir, ordered, base_accuracy, spec)
    return ordered


def _imap(function, items, jobs):
    if not items:
        return
    if jobs <= 1:
        yield from map(function, items)
        return
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no torch state shared by fork
    with context.Pool(min(jobs, len(items))) as pool:
        yield from pool.imap_unordered(function, items)


def _check_same_spec(spec: SweepSpec, path: Path) -> None:
    wanted = spec.as_dict()
    if path.exists():
        saved = {**SweepSpec().as_dict(), **json.loads(path.read_text())}  # older sweeps lack the newer keys
        changed = {key: (saved.get(key), value) for key, value in wanted.items() if saved.get(key) != value}
        # Adding methods or budgets extends a sweep; everything else changes what finished points mean.
        changed.pop("methods", None), changed.pop("budgets", None)
        if changed:
            raise ValueError(f"{path.parent} holds a sweep with other settings (saved, now): {changed}; "
                             "use another output folder")
    _write_json(path, wanted)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)  # a killed sweep never leaves a half-written point that resume would trust


COLUMNS = ("point", "method", "budget", "status", "test_accuracy", "cost", "flops", "flops_fraction", "bops",
           "memory_bits", "binarized", "luts_estimate", "luts_synthesized", "dsps", "cycles", "bram36",
           "selection_seconds", "finetune_seconds", "message")


def _write_results(out_dir: Path, rows: list[dict], base_accuracy: float | None, spec: SweepSpec) -> None:
    with (out_dir / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({column: row.get(column, "") for column in COLUMNS} for row in rows)
    (out_dir / "results.md").write_text(markdown_table(rows, base_accuracy, spec.budget_kind))
    plot_sweep(rows, out_dir / "accuracy_vs_budget.png", base_accuracy=base_accuracy, kind=spec.budget_kind,
               title=f"{spec.model} on {spec.dataset}: accuracy after {spec.finetune_epochs} fine-tuning epoch(s)")


def _budget_label(budget: float, kind: str) -> str:
    from .hardware_budget import HARDWARE_METRICS

    return f"{budget:.0%} FLOPs" if kind == "flops" else f"{budget:,.0f} {HARDWARE_METRICS[kind]}"


def markdown_table(rows: list[dict], base_accuracy: float | None = None, kind: str = "flops") -> str:
    """Accuracy per method (rows) and budget (columns), then selection times; for hardware budgets, each point's
    estimated and (if synthesized) Yosys' LUTs."""
    methods = list(dict.fromkeys(row["method"] for row in rows))
    budgets = sorted({row["budget"] for row in rows})
    cell = {(row["method"], row["budget"]): row for row in rows}

    def accuracy(method, budget):
        row = cell.get((method, budget))
        if row is None:
            return ""
        return f"{row['test_accuracy']:.4f}" if row["status"] == "ok" else "unreachable"

    def seconds(method):
        times = [cell[(method, b)]["selection_seconds"] for b in budgets
                 if (method, b) in cell and cell[(method, b)]["status"] == "ok"]
        return f"{sum(times) / len(times):.2f}" if times else ""

    header = ("| method | " + " | ".join(_budget_label(budget, kind) for budget in budgets) +
              " | mean selection s |")
    rule = "|---|" + "---:|" * (len(budgets) + 1)
    lines = [header, rule]
    lines += [f"| {method} | " + " | ".join(accuracy(method, b) for b in budgets) + f" | {seconds(method)} |"
              for method in methods]
    if base_accuracy is not None:
        lines.append(f"\nFull-precision network (the starting point of every method): {base_accuracy:.4f}")
    priced = [row for row in rows if row.get("status") == "ok" and "luts_estimate" in row]
    if priced:
        lines += ["", "| point | layers binarized | LUTs estimated | LUTs in Yosys | DSPs | cycles | BRAM36 |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for row in priced:
            synthesized = row.get("luts_synthesized")
            lines.append(f"| {row['point']} | {row['binarized']} | {row['luts_estimate']:,} | "
                         f"{'' if synthesized is None else f'{synthesized:,}'} | {row['dsps']:,} | "
                         f"{row['cycles']:,} | {row['bram36']:g} |")
    return "\n".join(lines) + "\n"


def plot_sweep(rows: list[dict], path: str | Path, *, base_accuracy: float | None = None, title: str = "",
               kind: str = "flops") -> Path:
    """Accuracy vs budget (FLOPs, or a hardware kind), one curve per method (MixBin's Figure 2 layout), as a PNG.
    A hardware sweep gets a second panel: accuracy against each point's LUTs (Yosys' where synthesized, else the
    cost model's estimate), the co-design view of the same points."""
    import matplotlib

    matplotlib.use("Agg")  # no display; the same file on every machine
    import matplotlib.pyplot as plt

    priced = [row for row in rows if row.get("status") == "ok" and "luts_estimate" in row]
    panels = 2 if kind != "flops" and priced else 1
    figure, axes_list = plt.subplots(1, panels, figsize=(7 * panels, 4.5), dpi=120, squeeze=False)
    axes = axes_list[0][0]
    colors = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]  # 20 distinct, strong first
    markers = "os^vD<>pXh*"
    methods = list(dict.fromkeys(row["method"] for row in rows))
    for index, method in enumerate(methods):
        points = sorted((row["budget"], row["test_accuracy"]) for row in rows
                        if row["method"] == method and row["status"] == "ok")
        if points:
            xs, ys = zip(*points)
            axes.plot([100 * x if kind == "flops" else x for x in xs], ys, marker=markers[index % len(markers)],
                      color=colors[index % len(colors)], label=method)
    if base_accuracy is not None:
        axes.axhline(base_accuracy, color="black", linestyle="--", linewidth=1, label="full precision")
    if kind == "flops":
        axes.set_xlabel("FLOPs budget (% of the full-precision network)")
    else:
        from .hardware_budget import HARDWARE_METRICS

        axes.set_xlabel(f"{kind} budget ({HARDWARE_METRICS[kind]})")
    axes.set_ylabel("test accuracy")
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    if panels == 2:
        _plot_accuracy_vs_luts(axes_list[0][1], priced, kind, methods, colors, markers, base_accuracy)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, metadata={"Software": None})  # no version stamp: same sweep, same bytes
    plt.close(figure)
    return path


def _plot_accuracy_vs_luts(axes, priced: list[dict], kind: str, methods: list[str], colors, markers,
                           base_accuracy: float | None) -> None:
    """Each priced point at its LUTs: filled markers Yosys' count, hollow ones the cost model's estimate."""
    for index, method in enumerate(methods):
        color, marker = colors[index % len(colors)], markers[index % len(markers)]
        for row in (row for row in priced if row["method"] == method):
            synthesized = row.get("luts_synthesized")
            luts = row["luts_estimate"] if synthesized is None else synthesized
            axes.plot([luts], [row["test_accuracy"]], marker=marker, color=color, linestyle="none",
                      markerfacecolor=color if synthesized is not None else "none")
            axes.annotate(_budget_label(row["budget"], kind), (luts, row["test_accuracy"]), fontsize=6,
                          xytext=(3, 3), textcoords="offset points", color=color)
    if base_accuracy is not None:
        axes.axhline(base_accuracy, color="black", linestyle="--", linewidth=1)
    everything_synthesized = all(row.get("luts_synthesized") is not None for row in priced)
    axes.set_xlabel("LUTs (Yosys synth_xilinx)" if everything_synthesized
                    else "LUTs (filled: Yosys synth_xilinx; hollow: cost model estimate)")
    axes.set_ylabel("test accuracy")
    axes.set_title("the same points against their LUTs", fontsize=10)
    axes.grid(True, alpha=0.3)
