"""The `hbnn` command: train, compile, sim, report, demo (all four in a row), study, and plan/select/sweep."""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
import time

__all__ = ["main"]


BNN_PYNQ_PREFIX = "bnn_pynq:"
_NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?%?$")


def _print_table(headers: list[str], rows: list[list], title: str | None = None) -> None:
    """Plain-text table; cells that are numbers are right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if title:
        print(title)
    for index, row in enumerate(cells):
        line = "  ".join(c.rjust(w) if index and _NUMBER.match(c) else c.ljust(w) for c, w in zip(row, widths))
        print(line.rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes comma-separated integers like 128,128, not {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--hidden needs at least one positive width, not {text!r}")
    return sizes


def _parse_folding(text: str):
    from .compiler.ir import Folding
    try:
        name, value = text.split("=")
        pe, simd = value.lower().split("x")
        return name, Folding(pe=int(pe), simd=int(simd))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--folding takes LAYER=PExSIMD, like fc1=4x32, not {text!r}")


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"--seeds takes distinct non-negative integers like 0,1, not {text!r}")
    return seeds


DEFAULT_WAVE_IMAGES = 4
DEMO_IMAGES = 1000  # keeps the demo to minutes on Fashion-MNIST's 10,000 test images; digits has 360
DEMO_CNN_TRAINING_SECONDS = 120.0  # a CNN's epoch takes many minutes on 2 cores; the demo trains for 2 at most
SQUARE_32_MODELS = ("cnv",)  # models whose convolutions need 32x32 images: the demo pads smaller ones

# Enough to converge on the small sets; a few minutes on 2 cores for the 60k-image ones.
DEFAULT_EPOCHS = {"digits": 40, "synthetic": 40, "fashion-mnist": 5, "mnist": 5, "cifar10": 10, "cifar100": 10}


def _dataset_name(name: str) -> str:
    from .quant.data import default_dataset_name
    return default_dataset_name() if name == "auto" else name


# --- steps, shared by the subcommands and the demo -----------------------------------------------------------------

def _model_options(args) -> dict:
    options = dict(args.option or [])
    for key in ("shortcuts", "dropout", "weight_bases", "act_bases"):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    return options


def _precision(args) -> str:
    """--precision, or its default: the binary MLP for --model mlp (what `hbnn train` alone trains, and what the
    hardware maps), each zoo network's fp variant otherwise."""
    if args.precision is not None:
        return args.precision
    return "binary" if args.model == "mlp" else "fp"


def step_train(args, show_metrics: bool = True) -> tuple[pathlib.Path, dict]:
    from .quant.data import load_dataset
    from .quant.experiment import TrainingSpec, run_training

    name = _dataset_name(args.dataset)
    dataset = load_dataset(name, args.data_root)
    model, precision, full_precision, options = args.model, _precision(args), args.full_precision, _model_options(args)
    hidden = tuple(args.hidden)
    if getattr(args, "plan", None):
        model, precision, full_precision, options = _planned_model(args.plan, dataset)
        if model == "mlp":  # the plan's widths replace --hidden, as its other options replace theirs
            hidden = tuple(options.pop("hidden"))
    spec = TrainingSpec(model=model, precision=precision, full_precision=full_precision,
                        options=options, hidden=hidden, dataset=name,
                        data_root=str(args.data_root) if args.data_root else None,
                        epochs=args.epochs or DEFAULT_EPOCHS.get(name.partition("@")[0], 10), lr=args.lr,
                        batch_size=args.batch_size,
                        seed=args.seed, weight_decay=args.weight_decay, l1=args.l1, schedule=args.schedule,
                        augment=not args.no_augment, device=args.device,
                        time_budget=getattr(args, "time_budget", None))
    widths = f" {'-'.join(map(str, [dataset.features, *spec.hidden, dataset.classes]))}" if spec.model == "mlp" else ""
    what = (f"{spec.model}{widths} ({spec.precision}, full precision {spec.full_precision}"
            + "".join(f", {k}={v}" for k, v in spec.options.items()) + ")")
    print(f"training {what} on {name} ({len(dataset.train_x)} train / {len(dataset.test_x)} test images), "
          f"{spec.epochs} epochs{', resuming' if args.resume else ''}", flush=True)
    out = pathlib.Path(args.out)
    result = run_training(spec, out, progress=not args.quiet, resume=args.resume, dataset=dataset)
    if show_metrics and not args.quiet:
        print(result.metrics.table())
    print(f"test accuracy {result.test_accuracy:.4f}; checkpoint {out}; epoch log {out.with_suffix('.history.csv')}"
          f" (.json); metrics {out.with_suffix('.metrics.json')}")
    return out, result.meta


def _planned_model(path, dataset) -> tuple[str, str, str, dict]:
    """(model, variant, full precision, options) that train the network a plan file describes."""
    from .quant.plan import PrecisionPlan

    plan = PrecisionPlan.load(path)
    channels, size, _ = dataset.image_shape
    wanted = (plan.model["in_channels"], plan.model["image_size"], plan.model["num_classes"])
    if wanted != (channels, size, dataset.classes):
        raise ValueError(f"plan {path} is for {wanted[0]}x{wanted[1]}x{wanted[1]} images and {wanted[2]} classes; "
                         f"dataset {dataset.name} has {channels}x{size}x{size} and {dataset.classes}")
    options = {**plan.model["options"], "layer_precisions": dict(plan.layers)}
    return plan.model["name"], "fp", plan.model["full_precision"], options


def target_cycles_for(board_name, target_cycles, target_fps) -> int:
    """--target-fps F at the board's clock as cycles per image, or --target-cycles."""
    from .boards import get_board

    if target_fps is None:
        return target_cycles
    if target_fps <= 0:
        raise ValueError(f"--target-fps must be positive, not {target_fps}")
    clock = get_board(board_name).clock_mhz * 1e6
    return max(1, int(clock // target_fps))


def _layer_cycles(layer) -> int:
    passes = layer["abc"]["passes"] if "abc" in layer else 1  # time-multiplexed ABC-Net weight bases
    return layer["pixels"] * layer["neuron_folds"] * passes * layer["synapse_folds"]


def step_compile(checkpoint, out_dir, board_name, folding, target_cycles, fit_check: bool = True,
                 weights=None) -> dict:
    import functools

    from .boards import get_board
    from .compiler.build import compile_brevitas, compile_checkpoint, compile_qonnx

    started = time.monotonic()
    # A .onnx file is a QONNX graph (Brevitas' export_qonnx, FINN's models); bnn_pynq:NAME one of Brevitas' bnn_pynq
    # networks as PyTorch; anything else an hbnn checkpoint.
    source = str(checkpoint)
    if source.startswith(BNN_PYNQ_PREFIX):
        compile_file = functools.partial(compile_brevitas, weights=weights)
        checkpoint = source.removeprefix(BNN_PYNQ_PREFIX)
    elif weights is not None:
        raise SystemExit("error: --weights is for bnn_pynq:NETWORK models (Brevitas' own networks as PyTorch)")
    else:
        compile_file = compile_qonnx if pathlib.Path(source).suffix.lower() == ".onnx" else compile_checkpoint
    graph, manifest = compile_file(checkpoint, out_dir, get_board(board_name), dict(folding or []),
                                   target_cycles, fit_check)
    seconds = time.monotonic() - started
    rows = [[layer["name"], layer["lane"], f"{layer['out_features']}x{layer['in_features']}", layer["pixels"],
             layer["pe"], layer["simd"], f"{_layer_cycles(layer):,}", layer["dsp_multipliers"],
             layer["output"] + (f" ({layer['threshold']['thresholds_per_channel']} thr/ch)" if "threshold" in layer
                                else " (accumulators)")]
            for layer in manifest["layers"]]
    rows += [[add["name"], "add", f"{add['channels']}", add["pixels"], "-", add["simd"],
              f"{add['pixels'] * add['channels'] // add['simd']:,}", 0, add["output"]]
             for add in manifest.get("residual_adds", [])]
    _print_table(["layer", "lanes", "MHxMW", "pixels", "PE", "SIMD", "cycles", "DSP", "output"], rows,
                 f"compiled for {manifest['board']['name']} ({manifest['board']['part']}) into {out_dir} in "
                 f"{seconds:.1f} s:")
    slowest = max(manifest["layers"], key=_layer_cycles)
    clock = manifest["board"]["clock_mhz"]
    interval = manifest["cycles"]["initiation_interval"]
    print(f"analytical: latency {manifest['cycles']['latency']:,} cycles, initiation interval {interval:,} cycles "
          f"({clock * 1e6 / interval:,.0f} images/s at {clock:g} MHz), bound by layer {slowest['name']!r} "
          f"({_layer_cycles(slowest):,} cycles); output codes {manifest['output']['codes']}"
          + (f", divided by {manifest['output']['divisor']} on the host" if manifest["output"]["divisor"] != 1
             else ""))
    if not manifest["fits_board"]["fits"]:
        print(f"warning: built with --no-fit-check for co-simulation and resource reports only; this design does "
              f"not fit {manifest['board']['name']}: {manifest['fits_board']['why_not']}")
    for add in manifest.get("residual_adds", []):
        for fifo in add["bypass_fifos"]:
            print(f"bypass FIFO {fifo['edge']}: depth {fifo['depth']} x {fifo['elements'] * fifo['element_bits']} "
                  f"bits ({fifo['memory_bits']:,} bits of {fifo['style']} memory), sized from the cycle analysis")
    return manifest


def step_sim(build_dir, dataset_name, data_root, count, backpressure, seed, progress=True, *, engine="both",
             crosscheck=None, waves=0, activity=False):
    from .compiler.build import CHECKPOINT, read_manifest
    from .quant import load_checkpoint, load_dataset
    from .sim.verify import verify_build

    build_dir = pathlib.Path(build_dir)
    manifest = read_manifest(build_dir)
    if not manifest["fits_board"]["fits"]:
        print(f"note: this build does not fit {manifest['board']['name']} (compiled with --no-fit-check): "
              f"{manifest['fits_board']['why_not']}", flush=True)
    if manifest.get("qonnx"):
        name, dataset = _qonnx_dataset(build_dir, manifest, dataset_name, data_root, count or 1000, seed)
    else:
        _, meta = load_checkpoint(build_dir / CHECKPOINT)
        name = dataset_name or meta.get("dataset") or "digits"
        dataset = load_dataset(name, data_root or meta.get("data_root"))
    count = min(count, len(dataset.test_x)) if count else len(dataset.test_x)
    whole = "cocotb" if engine == "cocotb" else "verilator"
    print(f"co-simulating {count} {name} test images with the {whole} engine "
          f"({'with' if backpressure else 'without'} a random back-pressure run); building the simulator if the "
          "Verilog changed...", flush=True)
    labels = None if name == "random" else dataset.test_y[:count]  # random pixels have no labels
    result = verify_build(build_dir, dataset.test_x[:count], labels, backpressure=backpressure,
                          seed=seed, progress=progress, engine=engine,
                          crosscheck=crosscheck, waves=waves,
                          activity=activity)
    (build_dir / "sim.json").write_text(json.dumps({**result.as_dict(), "dataset": name}, indent=2) + "\n")
    return result


def _qonnx_dataset(build_dir, manifest, dataset_name, data_root, count, seed):
    """A QONNX build has no training record: --dataset names the images (their size must be the graph's input), or
    "random" (the default) draws uniform pixels in [0, 1), as many as --count, for a bit-exactness check."""
    import numpy as np
    import torch

    from .quant import load_dataset
    from .quant.data import Dataset
    from .sim.qonnx_reference import QonnxReference

    shape = QonnxReference(build_dir / manifest["qonnx"]["file"], manifest["qonnx"]).input_shape
    name = dataset_name or "random"
    if name == "random":
        images = torch.from_numpy(np.random.default_rng(seed).random((count, int(np.prod(shape))), dtype=np.float32))
        labels = torch.zeros(count, dtype=torch.int64)
        dataset = Dataset(name="random", train_x=images[:0], train_y=labels[:0], test_x=images, test_y=labels,
                          classes=1, image_shape=tuple(shape))
        return "random", dataset
    dataset = load_dataset(name, data_root)
    if dataset.test_x.shape[1] != int(np.prod(shape)):
        raise SystemExit(f"error: {name} images have {dataset.test_x.shape[1]} pixels; the graph "
                         f"{manifest['qonnx']['source']} reads {'x'.join(map(str, shape))}")
    return name, dataset


def step_package(build_dir, out_dir, board, synthesis, check, seed):
    from .boards.package import package_build

    build_dir, out_dir = pathlib.Path(build_dir), pathlib.Path(out_dir)
    print(f"packaging {build_dir} -> {out_dir}" + (" (Yosys on the AXI-Stream top...)" if synthesis else ""),
          flush=True)
    spec = package_build(build_dir, out_dir, board=board, synthesis=synthesis)
    result = None
    if check:
        from .compiler.build import CHECKPOINT
        from .quant import load_checkpoint, load_dataset
        from .sim.axi_transport import check_deployment, pixels_of
        from .sim.flow_control import FlowControl
        from .sim.verify import BACKPRESSURE

        _, meta = load_checkpoint(build_dir / CHECKPOINT)
        name = meta.get("dataset") or "digits"
        dataset = load_dataset(name, meta.get("data_root"))
        count = min(check, len(dataset.test_x))
        print(f"running the driver on {count} {name} test images against the simulated accelerator (Verilator, "
              "batches of up to 64 images back to back; once undisturbed, once with random TVALID gaps and TREADY "
              "stalls)...", flush=True)
        result = check_deployment(out_dir, build_dir / CHECKPOINT, pixels_of(dataset.test_x[:count]),
                                  dataset.test_y[:count].numpy(),
                                  flows=(FlowControl(), FlowControl(*BACKPRESSURE, seed=seed)),
                                  batch_images=min(64, spec["max_batch_images"]))
        (out_dir / "check.json").write_text(json.dumps({**result, "dataset": name}, indent=2) + "\n")
    return spec, result


def step_report(build_dir):
    from .compiler.build import read_manifest
    from .hw.synthesis import synthesize

    build_dir = pathlib.Path(build_dir)
    manifest = read_manifest(build_dir)
    board = manifest["board"]
    print(f"synthesizing with Yosys synth_xilinx -family {board['yosys_family']} (the first run takes ~1 min)...",
          flush=True)
    resources = synthesize(build_dir / manifest["verilog"], manifest["top"], board["yosys_family"],
                           log_path=build_dir / "yosys.log")
    (build_dir / "report.json").write_text(json.dumps(resources.as_dict(), indent=2) + "\n")
    return resources, board


def _resource_rows(resources, board) -> list[list]:
    def share(used, available):
        return f"{100 * used / available:.2f}%"
    return [["LUT (logic)", resources.luts, board["luts"], share(resources.luts, board["luts"])],
            ["LUT (RAM/SRL)", resources.lutram, "", ""],
            ["FF", resources.flip_flops, board["flip_flops"], share(resources.flip_flops, board["flip_flops"])],
            ["CARRY4/8", resources.carry, "", ""],
            ["DSP", resources.dsps, board["dsps"], share(resources.dsps, board["dsps"])],
            ["BRAM36", resources.bram36, board["bram36"], share(resources.bram36, board["bram36"])]]


def _sim_rows(result) -> list[list]:
    rows = []
    if result.torch_accuracy is not None:
        rows += [[f"accuracy, {result.reference}", f"{result.torch_accuracy:.4f}", ""],
                 ["accuracy, hardware", f"{result.hardware_accuracy:.4f}", ""]]
    rows += [["images co-simulated", result.images, ""],
             ["outputs compared", result.outputs_compared,
              f"{1 + result.backpressure_runs} runs ({result.backpressure_runs} with random back-pressure)"],
             ["mismatches", result.mismatches, "bit-exact" if result.bit_exact else "NOT BIT-EXACT"],
             ["latency (cycles)", result.latency, f"analytical {result.predicted_latency}"],
             ["initiation interval (cycles)", result.initiation_interval,
              f"analytical {result.predicted_initiation_interval}"
              + ("" if result.interval_spread[0] == result.interval_spread[1]
                 else f"; gaps {result.interval_spread[0]}..{result.interval_spread[1]} while the pipeline fills")
              + ("" if result.gaps_match else "; GAPS DIFFER FROM THE ANALYSIS")],
             ["co-simulation (s)", f"{result.simulation_seconds:.2f}",
              f"{result.engine} engine, {result.simulated_cycles:,} cycles in {1 + result.backpressure_runs} runs"]]
    if result.engines_agree is not None:
        rows.append(["cocotb cross-check (images)", result.crosscheck_images,
                     "same outputs and handshake cycles" if result.engines_agree else "ENGINES DISAGREE"])
    return rows


# --- subcommands -----------------------------------------------------------------------------------------------------

def cmd_train(args) -> int:
    step_train(args)
    return 0


def cmd_compile(args) -> int:
    step_compile(args.checkpoint, args.out, args.board, args.folding,
                 target_cycles_for(args.board, args.target_cycles, args.target_fps), not args.no_fit_check,
                 args.weights)
    return 0


def cmd_sim(args) -> int:
    result = step_sim(args.build, args.dataset, args.data_root, args.count, not args.no_backpressure, args.seed,
                      not args.quiet, engine=args.engine, crosscheck=args.crosscheck, waves=args.waves,
                      activity=args.activity)
    _print_table(["", "value", "note"], _sim_rows(result))
    if result.activity:
        window = result.activity
        print(f"\nswitching activity, images {window['first_image']}..{window['first_image'] + window['images'] - 1}"
              f" (cycles {window['cycles'][0]}..{window['cycles'][1]}; RTL bits, toggles per bit per cycle):")
        _print_table(["stage", "node", "component", "bits", "toggle rate"],
                     [[entry["stage"], entry["node"] or "", entry["component"], entry["bits"],
                       f"{entry['toggle_rate']:.4f}"] for entry in window["stages"]])
    return 0 if result.passed else 1


def _memory_rows(manifest) -> list[list]:
    """Each memory of the design and where it goes (hbnn.hw.memory_style: block RAM when deep, LUTs when shallow)."""
    rows = []
    for layer in manifest["layers"]:
        weights = layer["weight_memory"]
        rows.append([layer["name"], "weights", f"{weights['depth']} x {weights['word_bits']}", weights["style"]])
        rows += _threshold_rows(layer["name"], layer, layer["accumulator_bits"])
    for add in manifest.get("residual_adds", []):
        rows += _threshold_rows(add["name"], add, int(add["sum"].split("*")[0].removeprefix("int")))
        rows += [[add["name"], f"bypass FIFO {fifo['edge']}",
                  f"{fifo['depth']} x {fifo['elements'] * fifo['element_bits']}", fifo["style"]]
                 for fifo in add["bypass_fifos"]]
    return rows


def _threshold_rows(name: str, entry: dict, accumulator_bits: int) -> list[list]:
    rows = []
    for threshold in ([entry["threshold"]] if "threshold" in entry else []) + entry.get("forked_thresholds", []):
        for stage, memory in enumerate(threshold["stage_memories"]):
            rows.append([name, f"thresholds {threshold['node']}, stage {stage} (per lane)",
                         f"{memory['depth']} x {accumulator_bits + 1}", memory["style"]])
    return rows


def cmd_export(args) -> int:
    import onnx

    from .compiler.lower import lower_model
    from .compiler.qonnx_export import export_qonnx_graph
    from .quant import load_checkpoint

    model, _ = load_checkpoint(args.checkpoint)
    exported = export_qonnx_graph(lower_model(model))
    args.onnx.parent.mkdir(parents=True, exist_ok=True)
    partial = args.onnx.with_name(f".{args.onnx.name}.partial")
    onnx.save(exported, partial)
    partial.replace(args.onnx)  # whole or not at all
    print(f"wrote {args.onnx}: QONNX, {len(exported.graph.node)} nodes; the graph input is what "
          f"{exported.graph.node[0].name} quantizes (after the host's normalization); `hbnn compile {args.onnx}` "
          "gives the checkpoint's Verilog")
    return 0


def cmd_report(args) -> int:
    from .compiler.build import read_manifest

    resources, board = step_report(args.build)
    _print_table(["resource", "used", board["name"], "share"], _resource_rows(resources, board))
    print()
    _print_table(["layer", "memory", "words x bits", "style (block: BRAM; logic/distributed: LUTs)"],
                 _memory_rows(read_manifest(args.build)))
    return 0


def _transfers(frame: dict) -> str:
    count = frame["transfers"]
    return f"{count} transfer{'s' if count != 1 else ''} of {frame['transfer_bytes']} bytes"


def cmd_package(args) -> int:
    spec, result = step_package(args.build, args.out, args.board, not args.no_synthesis, args.check, args.seed)
    resources = spec["resources"]
    rows = [["board", f"{spec['board']} ({spec['part']}), {spec['clock_mhz']:g} MHz", ""],
            ["DMA words (bytes)", spec["input"]["dma_bytes"], "AXI DMA in simple mode, one transfer per batch"],
            ["input frame (bytes/image)", spec["input"]["image_bytes"],
             _transfers(spec["input"])],
            ["output frame (bytes/image)", spec["output"]["image_bytes"], _transfers(spec["output"])],
            ["largest batch (images)", spec["max_batch_images"], "2^26 - 1 bytes per DMA transfer"]]
    for part in ("axi_top", "accelerator"):
        if resources[part]:
            r = resources[part]
            rows.append([f"{part.replace('_', ' ')} (Yosys)", f"{r['luts']} LUT, {r['flip_flops']} FF, "
                         f"{r['dsps']} DSP, {r['bram36']} BRAM36", ""])
    if result is not None:
        rows += [["driver check, images", result["images"], "hbnn_driver.py on the verilated AXI-Stream top"],
                 ["mismatches", result["mismatches"],
                  f"of {result['outputs_compared']} scores in {result['runs']} runs against PyTorch"
                  + (": bit-exact" if result["mismatches"] == 0 else ": NOT BIT-EXACT")],
                 ["accuracy, PyTorch = driver", f"{result['torch_accuracy']:.4f} = {result['driver_accuracy']:.4f}",
                  ""],
                 ["interval through the top (cycles)", result["interval"],
                  f"accelerator alone: {spec['cycles']['interval']} (hbnn's cycle model)"]]
    _print_table(["hbnn package", "value", "note"], rows)
    print(f"files in {args.out}; the board steps are in {args.out / 'README.md'}")
    return 0 if result is None or result["mismatches"] == 0 else 1


def cmd_study(args) -> int:
    from dataclasses import replace

    from .quant.study import PRESETS, run_study, with_budget, with_seeds

    name = _dataset_name(args.dataset)
    specs = with_seeds([replace(spec, full_precision=args.full_precision)
                        for spec in with_budget(PRESETS[args.preset](name), args.budget)], args.seeds)
    print(f"study {args.preset} on {name}: {len(specs)} runs (seeds {', '.join(map(str, args.seeds))}), "
          f"{args.budget:g} s of training each, {args.jobs} at a "
          f"time with {args.threads} thread(s) each; results in {args.out}", flush=True)
    rows = run_study(specs, args.out, jobs=args.jobs, threads_per_job=args.threads, progress=not args.quiet)
    print((pathlib.Path(args.out) / "results.md").read_text())
    return 0 if rows else 1


def cmd_demo(args) -> int:
    started = time.monotonic()
    out = pathlib.Path(args.out)
    args.out = out / "model.pt"
    args.resume = False
    args.dataset = _dataset_name(args.dataset)
    if args.model in SQUARE_32_MODELS and "@" not in args.dataset:
        args.dataset += "@32"
    if args.model != "mlp" and args.time_budget is None:
        args.time_budget = DEMO_CNN_TRAINING_SECONDS
    print("[1/4] train" + (f" ({args.time_budget:g} s)" if args.time_budget else ""), flush=True)
    checkpoint, meta = step_train(args, show_metrics=False)
    print("\n[2/4] compile", flush=True)
    step_compile(checkpoint, out / "build", args.board, None,
                 target_cycles_for(args.board, args.target_cycles, args.target_fps))
    print("\n[3/4] co-simulate", flush=True)
    result = step_sim(out / "build", meta["dataset"], args.data_root, args.count or DEMO_IMAGES, True, args.seed,
                      not args.quiet)
    print("\n[4/4] synthesize", flush=True)
    resources, board = step_report(out / "build")
    clock = board["clock_mhz"]
    rows = _sim_rows(result)
    rows.append([f"images/s at {clock:g} MHz", f"{clock * 1e6 / result.predicted_initiation_interval:,.0f}",
                 "clock/II; timing closure not checked"])
    rows += [[name, used, f"{pct} of {available:,} on {board['name']}" if available else ""]
             for name, used, available, pct in _resource_rows(resources, board)]
    print()
    _print_table(["hbnn demo", "value", "note"], rows,
                 f"{meta['spec']['precision']} {meta['spec']['model']} on {meta['dataset']} -> {board['name']} "
                 f"({board['part']}), {time.monotonic() - started:.0f} s in all; files in {out}")
    print(f"\nto the board: hbnn package {out / 'build'} --out deploy  (README: To the board)")
    return 0 if result.bit_exact and result.cycles_match else 1


def _parse_option(text: str):
    try:
        key, value = text.split("=", 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--option takes KEY=VALUE, like dropout=0.3, not {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare word such as shortcuts=hybrid


def _add_train_options(parser) -> None:
    from .quant.train import DEFAULT_BATCH_SIZE, DEFAULT_LR, SCHEDULES
    from .quant.models import MODELS
    parser.add_argument("--dataset", default="auto",
                        help="digits, fashion-mnist, mnist, cifar10, cifar100, synthetic, or auto: fashion-mnist "
                             "when Debian's dataset-fashion-mnist is installed, else digits (default: auto)")
    parser.add_argument("--data-root", type=pathlib.Path, default=None,
                        help="folder with the dataset's files (IDX for MNIST, python batches for CIFAR)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="mlp", choices=list(MODELS),
                       help="mlp: the multilayer perceptron the compiler maps to hardware (its binary variant "
                            "today); the others are the papers' networks (default: mlp)")
    model.add_argument("--hidden", type=_parse_sizes, default=[128, 128],
                       help="the mlp's hidden layer widths, comma-separated (default: 128,128)")
    model.add_argument("--precision", default=None,
                       help="the model's variant: fp, hybrid, binary, ternary, abc, as the model has them "
                            "(default: binary for the mlp, fp for the others)")
    model.add_argument("--full-precision", default="int8", choices=["int8", "float"],
                       help="what full-precision layers are: int8, the hardware's fixed point, or float for the "
                            "papers' baselines (default: int8)")
    model.add_argument("--shortcuts", choices=["all", "hybrid", "none"], help="resnet14's shortcut variant")
    model.add_argument("--dropout", type=float, help="dropout probability (models that have dropout)")
    model.add_argument("--weight-bases", type=int, dest="weight_bases", help="ABC-Net M (precision abc)")
    model.add_argument("--act-bases", type=int, dest="act_bases", help="ABC-Net N (precision abc)")
    model.add_argument("--option", type=_parse_option, action="append", metavar="KEY=VALUE",
                       help="any other model option (repeatable)")
    training = parser.add_argument_group("training")
    training.add_argument("--epochs", type=int, default=None,
                          help="default: " + ", ".join(f"{n} {e}" for n, e in DEFAULT_EPOCHS.items()))
    training.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                          help="stop after this many seconds of training (the cosine schedule follows it; at most "
                               "--epochs epochs)")
    training.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"Adam learning rate (default: {DEFAULT_LR})")
    training.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    training.add_argument("--weight-decay", type=float, default=0.0, help="L2 regularization (Adam weight decay)")
    training.add_argument("--l1", type=float, default=0.0, help="L1 regularization on weights")
    training.add_argument("--schedule", choices=SCHEDULES, default="cosine", help="learning-rate schedule")
    training.add_argument("--no-augment", action="store_true",
                          help="no data augmentation (default: the dataset's standard one, for image models)")
    training.add_argument("--device", default="auto", help="auto (a GPU when present), cpu, cuda, cuda:1, ...")
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from .boards import BOARDS
    from .compiler.passes.set_folding import DEFAULT_TARGET_CYCLES
    from .sim.design import CROSSCHECK_CYCLES, DEFAULT_CROSSCHECK_IMAGES, ENGINE_CHOICES

    parser = argparse.ArgumentParser(prog="hbnn", description="Hybrid binary neural networks: Brevitas training to "
                                     "bit-exact FPGA hardware.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a network and write a checkpoint, logs and metrics")
    _add_train_options(train)
    train.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/model.pt"))
    train.add_argument("--resume", action="store_true", help="continue from OUT's .state.pt")
    train.add_argument("--plan", type=pathlib.Path, default=None,
                       help="train the hybrid network a precision plan describes (hbnn select writes them); "
                            "replaces --model, --precision, --full-precision and the model options")
    train.set_defaults(run=cmd_train)

    compile_ = commands.add_parser("compile", help="checkpoint or QONNX graph (.onnx) -> build folder (Verilog, "
                                                  "memories, manifest)")
    compile_.add_argument("checkpoint", type=pathlib.Path,
                          help="an hbnn checkpoint (.pt), a QONNX graph (.onnx), or bnn_pynq:NETWORK (Brevitas' "
                               "tfc/sfc/lfc/cnv as PyTorch, e.g. bnn_pynq:cnv_1w1a)")
    compile_.add_argument("--weights", type=pathlib.Path, default=None,
                          help="bnn_pynq:NETWORK's trained weights: a state dict or Brevitas' training checkpoint, "
                               "loaded with weights_only (default: random weights)")
    compile_.add_argument("--out", type=pathlib.Path, default=pathlib.Path("build"))
    compile_.add_argument("--board", default="pynq-z2", choices=sorted(BOARDS))
    target = compile_.add_mutually_exclusive_group()
    target.add_argument("--target-cycles", type=int, default=DEFAULT_TARGET_CYCLES,
                        help="cycles per image each layer should meet when choosing PE/SIMD, raised where the "
                             f"board's DSPs or LUTs do not fit (default: {DEFAULT_TARGET_CYCLES})")
    target.add_argument("--target-fps", type=float, default=None,
                        help="images per second at the board's clock instead of --target-cycles")
    compile_.add_argument("--folding", type=_parse_folding, action="append", metavar="LAYER=PExSIMD",
                          help="override one layer's folding, e.g. fc1=4x32 (repeatable)")
    compile_.add_argument("--no-fit-check", action="store_true",
                          help="build even when the design does not fit the board's DSPs, block RAM or LUTs, for "
                               "co-simulation and resource reports only (the manifest and this command say why it "
                               "does not fit); such a design is folded for the DSP and LUT budgets alone")
    compile_.set_defaults(run=cmd_compile)

    sim = commands.add_parser("sim", help="co-simulate a build folder in Verilator against PyTorch")
    sim.add_argument("build", type=pathlib.Path)
    sim.add_argument("--dataset", default=None, help="default: the dataset the checkpoint was trained on; for a QONNX build, random pixels (\"random\")")
    sim.add_argument("--data-root", type=pathlib.Path, default=None)
    sim.add_argument("--count", type=int, default=0, help="test images to stream (default: all)")
    sim.add_argument("--no-backpressure", action="store_true", help="skip the run with random stalls")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.add_argument("--engine", default="both", choices=ENGINE_CHOICES,
                     help="verilator: the fast C++ driver over the whole set; cocotb: the Python bench over the "
                          "whole set (slow); both (default): verilator over the set, and cocotb over the first "
                          "--crosscheck images, whose transcripts must be identical")
    sim.add_argument("--crosscheck", type=int, default=None, metavar="N",
                     help=f"images the cocotb bench cross-checks with --engine both (default: "
                          f"{DEFAULT_CROSSCHECK_IMAGES}, fewer where they exceed {CROSSCHECK_CYCLES:,} cycles)")
    sim.add_argument("--waves", type=int, nargs="?", const=DEFAULT_WAVE_IMAGES, default=0, metavar="N",
                     help=f"write BUILD/waves.fst (GTKWave) of the first N images, undisturbed (default N: "
                          f"{DEFAULT_WAVE_IMAGES})")
    sim.add_argument("--activity", action="store_true",
                     help="write BUILD/activity.saif: switching activity over a steady-state window of up to 64 "
                          "images; the window is recorded in BUILD/sim.json")
    sim.set_defaults(run=cmd_sim)

    report = commands.add_parser("report", help="synthesize a build folder with Yosys and count resources")
    report.add_argument("build", type=pathlib.Path)
    report.set_defaults(run=cmd_report)

    export = commands.add_parser("export", help="checkpoint -> QONNX graph (for FINN, Netron, onnxruntime)")
    export.add_argument("checkpoint", type=pathlib.Path)
    export.add_argument("--onnx", type=pathlib.Path, required=True, metavar="OUT", help="the .onnx file to write")
    export.set_defaults(run=cmd_export)

    study = commands.add_parser("study", help="train a preset list of networks under one time budget each")
    study.add_argument("--preset", default="paper-resnets", choices=["paper-resnets"],
                       help="paper-resnets: BlinkNet x 3 variants and ResNet-14 x 9 variants")
    study.add_argument("--dataset", default="auto")
    study.add_argument("--full-precision", default="float", choices=["int8", "float"],
                       help="what full-precision layers are (default: float, as in the papers' tables)")
    study.add_argument("--budget", type=float, default=240.0, help="seconds of training per run (default: 240)")
    study.add_argument("--seeds", type=_parse_seeds, default=[0], metavar="S[,S...]",
                       help="train every network once per seed (default: 0); the table gives each seed's accuracy "
                            "and their mean")
    study.add_argument("--jobs", type=int, default=2, help="runs at a time (default: 2)")
    study.add_argument("--threads", type=int, default=1, help="torch threads per run (default: 1)")
    study.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/study"))
    study.add_argument("--quiet", action="store_true")
    study.set_defaults(run=cmd_study)

    demo = commands.add_parser("demo", help="train, compile, co-simulate and synthesize, then print one table")
    _add_train_options(demo)
    demo.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/demo"))
    demo.add_argument("--board", default="pynq-z2", choices=sorted(BOARDS))
    demo_target = demo.add_mutually_exclusive_group()
    demo_target.add_argument("--target-cycles", type=int, default=DEFAULT_TARGET_CYCLES)
    demo_target.add_argument("--target-fps", type=float, default=None)
    demo.add_argument("--count", type=int, default=0,
                      help=f"test images to co-simulate (default: the first {DEMO_IMAGES:,}, or all if fewer)")
    demo.set_defaults(run=cmd_demo)

    package = commands.add_parser("package", help="build folder -> deployment folder: AXI-Stream top, Vivado Tcl, "
                                  "PYNQ driver, README")
    package.add_argument("build", type=pathlib.Path)
    package.add_argument("--out", type=pathlib.Path, default=pathlib.Path("deploy"))
    package.add_argument("--board", default=None, choices=sorted(BOARDS),
                         help="default: the build's board (another board is refused unless it has the same part)")
    package.add_argument("--no-synthesis", action="store_true", help="skip Yosys on the AXI-Stream top")
    package.add_argument("--check", type=int, default=0, metavar="N",
                         help="run the packaged driver on N test images against the simulated accelerator and "
                              "compare with PyTorch (exit status 1 on a mismatch)")
    package.add_argument("--seed", type=int, default=0, help="seed of the check's random gaps and stalls")
    package.set_defaults(run=cmd_package)

    from .cli_selection import add_selection_commands
    add_selection_commands(commands)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"hbnn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
