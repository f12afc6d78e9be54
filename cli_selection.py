"""The `hbnn plan`, `hbnn select` and `hbnn sweep` commands: which layers of a network to binarize."""
from __future__ import annotations

import argparse
import pathlib

__all__ = ["add_selection_commands"]


def _parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parse_budgets(text: str) -> tuple[str, list[float]]:
    """(kind, values) of "0.1,0.2,30%" (FLOPs fractions) or "luts:20000,luts:40000" (one kind throughout)."""
    from .quant.selection.budgets import parse_budget

    try:
        specs = [parse_budget(part) for part in _parse_list(text)]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--budgets takes FLOPs fractions like 0.1,0.2,30% or one hardware kind "
                                         f"like luts:20000,luts:40000: {error}") from None
    kinds = sorted({spec.kind for spec in specs})
    if len(kinds) != 1:
        raise argparse.ArgumentTypeError(f"--budgets mixes budget kinds ({', '.join(kinds)}): a sweep plots one kind")
    return kinds[0], [spec.value for spec in specs]


def cmd_plan_show(args) -> int:
    from .quant.plan import PrecisionPlan

    plan = PrecisionPlan.load(args.plan)
    model = plan.model
    print(f"{args.plan}: {model['name']}, {model['in_channels']}x{model['image_size']}x{model['image_size']} -> "
          f"{model['num_classes']} classes, full precision {model['full_precision']}")
    selection = plan.selection
    if selection:
        print(f"selected by {selection.get('method')} under budget {selection.get('budget')}: cost "
              f"{selection.get('cost', 0):,.0f} of {selection.get('limit', 0):,.0f} {selection.get('unit', '')}, "
              f"{selection.get('seconds', 0)} s of selection")
    print(plan.table())
    return 0


def cmd_select(args) -> int:
    import time

    import torch

    from .quant.checkpoint import load_checkpoint
    from .quant.data import load_dataset
    from .quant.selection import SelectionContext, parse_budget, plan_of, select
    from .quant.augment import standard_augmentation

    model, meta = load_checkpoint(args.checkpoint)
    # Methods score what binarizing each layer costs, starting from full precision (as hbnn sweep's base network).
    not_full = [name for name in model.binarizable_layers() if model.precision_of(name) != model.full_precision]
    if not_full:
        raise ValueError(f"{args.checkpoint}: selection starts from a network trained at full precision, but layer "
                         f"{not_full[0]!r} is {model.precision_of(not_full[0]).name}; train it with --precision fp")
    dataset_name = args.dataset or meta.get("dataset")
    dataset = load_dataset(dataset_name, args.data_root or meta.get("data_root"))
    chosen = torch.randperm(len(dataset.train_x), generator=torch.Generator().manual_seed(args.seed))[:args.calibration]
    images = dataset.train_images[chosen]
    if meta.get("input_normalization"):
        images = standard_augmentation(dataset.name).preprocess(images)
    context = SelectionContext(model, images, dataset.train_y[chosen])
    spec = parse_budget(args.budget)
    hardware = {key: value for key, value in (("board", args.board), ("target_cycles", args.target_cycles))
                if value is not None}
    budget = spec.for_model(model, context.input_shape, **hardware)
    params = {key: value for key, value in (("gamma", args.gamma), ("ratio", args.ratio)) if value is not None}
    if params and args.method != "hbn":
        raise ValueError("--gamma and --ratio are parameters of --method hbn")
    print(f"{args.method} on {model.NAME} ({len(context.candidates)} candidate layers; the first and last stay at "
          f"full precision), budget {spec.text}, {len(images)} calibration images of {dataset.name}", flush=True)
    started = time.monotonic()
    selection = select(args.method, context, budget, seed=args.seed, **params)
    plan = plan_of(context, selection, budget, spec.text)
    plan.save(args.out)
    print(plan.table())
    print(f"cost {budget.cost(selection.layers):,.0f} of {budget.limit:,.0f} {budget.unit}; "
          f"{len(selection.binarized())} layer(s) binarized; selection took {time.monotonic() - started:.1f} s; "
          f"plan {args.out}")
    return 0


def cmd_sweep(args) -> int:
    from .quant.selection.sweep import SweepSpec, run_sweep

    kind, values = args.budgets
    spec = SweepSpec(model=args.model, dataset=args.dataset, data_root=str(args.data_root) if args.data_root else None,
                     methods=tuple(args.methods), budgets=tuple(values), budget_kind=kind, board=args.board,
                     target_cycles=args.target_cycles, synthesize=args.synthesize, full_precision=args.full_precision,
                     pretrain_epochs=args.pretrain_epochs, finetune_epochs=args.finetune_epochs,
                     train_subset=args.train_subset, test_subset=args.test_subset, calibration=args.calibration, lr=args.lr,
                     finetune_lr=args.finetune_lr, seed=args.seed)
    points = len(spec.methods) * len(spec.budgets)
    print(f"sweep: {len(spec.methods)} methods x {len(spec.budgets)} {kind} budgets = {points} points on {spec.model} / "
          f"{spec.dataset}, {args.jobs} at a time; results in {args.out}", flush=True)
    run_sweep(spec, args.out, jobs=args.jobs, threads=args.threads, progress=not args.quiet)
    print((pathlib.Path(args.out) / "results.md").read_text())
    print(f"plot: {pathlib.Path(args.out) / 'accuracy_vs_budget.png'}")
    return 0


def add_selection_commands(commands) -> None:
    from .quant.models import MODELS
    from .quant.selection.methods import METHODS
    from .quant.selection.sweep import PRUNING_METHOD, SweepSpec

    plan = commands.add_parser("plan", help="precision plans: which precision each layer gets")
    plan_commands = plan.add_subparsers(dest="plan_command", required=True)
    show = plan_commands.add_parser("show", help="print a plan's per-layer table (precision, memory, FLOPs/BOPs)")
    show.add_argument("plan", type=pathlib.Path)
    show.set_defaults(run=cmd_plan_show)

    select = commands.add_parser("select", help="choose the layers to binarize under a budget; writes a plan")
    select.add_argument("checkpoint", type=pathlib.Path, help="a trained full-precision zoo network (hbnn train)")
    select.add_argument("--method", required=True, choices=list(METHODS))
    select.add_argument("--budget", required=True,
                        help="flops:F (fraction of the full-precision FLOPs; 0.3 and 30%% mean the same), or "
                             "luts:N, dsps:N, cycles:N, bram:N from the compiler's cost model")
    select.add_argument("--board", default=None,
                        help="hardware budgets on a network with convolutions: price it as hbnn compile builds it "
                             "for this board (default pynq-z2)")
    select.add_argument("--target-cycles", type=int, default=None,
                        help="hardware budgets: the compiler's folding target, cycles per image per layer "
                             "(default hbnn compile's)")
    select.add_argument("--dataset", default=None, help="default: the checkpoint's")
    select.add_argument("--data-root", type=pathlib.Path, default=None)
    select.add_argument("--calibration", type=int, default=256, help="training images to score layers on")
    select.add_argument("--gamma", type=float, default=None, help="hbn: trade-off gamma of M = E + gamma/FLOPs")
    select.add_argument("--ratio", type=float, default=None,
                        help="hbn: hybridization ratio R (default: the largest that meets the budget)")
    select.add_argument("--seed", type=int, default=0)
    select.add_argument("--out", type=pathlib.Path, default=pathlib.Path("plan.json"))
    select.set_defaults(run=cmd_select)

    defaults = SweepSpec()
    sweep = commands.add_parser("sweep", help="methods x budgets, each plan fine-tuned; CSV and plot")
    sweep.add_argument("--model", default=defaults.model, choices=list(MODELS))
    sweep.add_argument("--dataset", default=defaults.dataset)
    sweep.add_argument("--data-root", type=pathlib.Path, default=None)
    sweep.add_argument("--methods", type=_parse_list, default=list(defaults.methods),
                       help=f"comma-separated, from {', '.join([*METHODS, PRUNING_METHOD])} "
                            f"(default: {','.join(defaults.methods)})")
    sweep.add_argument("--budgets", type=_parse_budgets, default=(defaults.budget_kind, list(defaults.budgets)),
                       help="FLOPs fractions, comma-separated (default: 0.1,...,0.6), or budgets of one hardware "
                            "kind: luts:20000,luts:40000 (also dsps:, cycles:, bram:)")
    sweep.add_argument("--board", default=None,
                       help="hardware budgets on a conv network: price plans as compiled for this board "
                            "(default pynq-z2)")
    sweep.add_argument("--target-cycles", type=int, default=None, help="hardware budgets: the folding target")
    sweep.add_argument("--synthesize", action="store_true",
                       help="hardware budgets: synthesize each fine-tuned plan with Yosys, beside its estimate")
    sweep.add_argument("--full-precision", default="int8", choices=["int8", "float"])
    sweep.add_argument("--pretrain-epochs", type=int, default=defaults.pretrain_epochs)
    sweep.add_argument("--finetune-epochs", type=int, default=defaults.finetune_epochs)
    sweep.add_argument("--train-subset", type=int, default=None, help="train on this many training images")
    sweep.add_argument("--test-subset", type=int, default=None, help="report accuracy on this many test images")
    sweep.add_argument("--calibration", type=int, default=defaults.calibration,
                       help="training images the selection methods score layers on")
    sweep.add_argument("--lr", type=float, default=defaults.lr, help="pre-training learning rate")
    sweep.add_argument("--finetune-lr", type=float, default=defaults.finetune_lr)
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--jobs", type=int, default=1, help="points at a time (processes)")
    sweep.add_argument("--threads", type=int, default=None, help="torch threads per point (default: cores/jobs)")
    sweep.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/sweep"))
    sweep.add_argument("--quiet", action="store_true")
    sweep.set_defaults(run=cmd_sweep)
