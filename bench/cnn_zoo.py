"""The zoo's CNNs in hardware, end to end: train, compile, co-simulate, synthesize (docs/hardware.md).

    .venv/bin/python bench/cnn_zoo.py [--dataset auto] [--budget 120] [--count 1000] [--max-cycles 60e6]
                                      [--out runs/cnn-zoo] [--networks cnv-binary,nin-fp,...] [--no-synthesis]

For each network and variant (CNV binary; NIN fp and binary; LeNet-5, small AlexNet and small VGG fp, binary,
ternary and ABC-Net at (M, N) = (1, 1), (3, 1), (3, 3), (5, 3); ResNet-14 without shortcuts fp, hybrid and binary; and the residual ones: ResNet-14 with all or hybrid
shortcuts, BlinkNet fp, hybrid and binary, cResNet-20 fp and a MixBin plan of it), with int8 as the full precision, it trains
for --budget seconds (`hbnn train --time-budget`, at most one epoch) on Fashion-MNIST (CNV on Fashion-MNIST padded to 32x32) or digits
when Fashion-MNIST is not installed, compiles with the default folding (the board's DSPs, half its LUTs for the
lanes and three quarters of its block RAM for the weights) for the first board it fits of PYNQ-Z2, Ultra96, KV260
and ZCU104 (the row names it; a network that fits none is built for the ZCU104 anyway, `hbnn compile
--no-fit-check`, co-simulated and synthesized, and its row gives the compiler's reason), co-simulates the first
--count test images in Verilator undisturbed (outputs and cycles)
and the first 100 with random back-pressure (outputs), cross-checks the first two with the cocotb bench, and
synthesizes with Yosys. Prints one markdown row per network as it finishes, then the
table. A network whose checkpoint exists in --out is not trained again.

--max-cycles caps the undisturbed run's cycles: a network whose interval would take it over co-simulates fewer
than --count images, and its row says so. On the PYNQ-Z2's 220 DSP slices the int8 NIN, AlexNet and VGG take
0.9 to 3.6 million cycles per image, so 1,000 images would be 0.9 to 3.6 billion Verilator cycles (hours at the
speeds measured here) for designs that run 28 to 111 images/s on the board.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import warnings

from hbnn.boards import get_board
from hbnn.cli import main as hbnn
from hbnn.compiler.budget import BoardBudgetError
from hbnn.compiler.build import compile_checkpoint
from hbnn.hw.synthesis import synthesize
from hbnn.quant.data import default_dataset_name, load_dataset
from hbnn.sim.verify import verify_build
from markdown_table import print_table  # bench/, next to this script

NETWORKS = {  # name: (model, variant, options, needs 32x32)
    "cnv-binary": ("cnv", "binary", [], True),
    "nin-fp": ("nin", "fp", [], False),
    "nin-binary": ("nin", "binary", [], False),
    "lenet5-fp": ("lenet5", "fp", [], False),
    "lenet5-binary": ("lenet5", "binary", [], False),
    "alexnet_small-fp": ("alexnet_small", "fp", [], False),
    "alexnet_small-binary": ("alexnet_small", "binary", [], False),
    "vgg_small-fp": ("vgg_small", "fp", [], False),
    "vgg_small-binary": ("vgg_small", "binary", [], False),
    # Ternary weights (issue 15): add/subtract/skip lanes.
    **{f"{model}-ternary": (model, "ternary", [], False) for model in ("lenet5", "alexnet_small", "vgg_small")},
    # ABC-Net (issue 15): M weight bases x N activation bases, the ABC papers' (M, N) grid.
    **{f"{model}-abc{m}x{n}": (model, "abc", ["--weight-bases", str(m), "--act-bases", str(n)], False)
       for model in ("lenet5", "alexnet_small", "vgg_small") for m, n in ((1, 1), (3, 1), (3, 3), (5, 3))},
    "resnet14-fp": ("resnet14", "fp", ["--shortcuts", "none"], False),
    "resnet14-hybrid": ("resnet14", "hybrid", ["--shortcuts", "none"], False),
    "resnet14-binary": ("resnet14", "binary", ["--shortcuts", "none"], False),
    # Residual networks (issue 11): integer residual adds through QuantAdd, bypass FIFOs sized by the cycle model.
    **{f"resnet14-{variant}-shortcuts-{shortcuts}": ("resnet14", variant, ["--shortcuts", shortcuts], False)
       for variant in ("fp", "hybrid", "binary") for shortcuts in ("all", "hybrid")},
    **{f"blinknet-{variant}": ("blinknet", variant, [], False) for variant in ("fp", "hybrid", "binary")},
    "cresnet20-fp": ("cresnet20", "fp", [], False),
    "cresnet20-mixbin": ("cresnet20", "mixbin-grad plan at 50% of the FLOPs", [], False),
}
# Networks trained from a precision plan: hbnn select METHOD --budget BUDGET on the trained BASE network, then
# hbnn train --plan for the same time budget.
PLANS = {"cresnet20-mixbin": ("cresnet20-fp", "mixbin-grad", "flops:50%")}
BOARDS = ("pynq-z2", "ultra96", "kv260", "zcu104")  # by size; each network goes to the first it fits
HEADER = ("| network | variant | dataset | accuracy PyTorch = hardware | images | mismatches (+min(100, images) "
          "back-pressured) | latency measured = analytical | interval measured = analytical | images/s at the board "
          "clock | bound by | board | LUT | FF | DSP | BRAM36 | fits (Yosys) | train s | compile s | co-sim s |")


def _train(name: str, dataset: str, budget: float, out: pathlib.Path) -> None:
    """Trains NETWORKS[name] into out/name.pt (a planned network: its base first, then the selection)."""
    training = ["--dataset", dataset, "--epochs", "1", "--time-budget", str(budget), "--quiet", "--out",
                str(out / f"{name}.pt")]
    if name in PLANS:
        base, method, selection_budget = PLANS[name]
        if not (out / f"{base}.pt").exists():
            _train(base, dataset, budget, out)
        plan = out / f"{name}.plan.json"
        assert hbnn(["select", str(out / f"{base}.pt"), "--method", method, "--budget", selection_budget,
                     "--out", str(plan)]) == 0
        assert hbnn(["train", "--plan", str(plan), *training]) == 0
    else:
        model, variant, options, _ = NETWORKS[name]
        assert hbnn(["train", "--model", model, "--precision", variant, *options, *training]) == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="auto")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of training per network")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--max-cycles", type=float, default=60e6,
                        help="co-simulate fewer than --count images where they would take more cycles")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/cnn-zoo"))
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--no-synthesis", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    base = default_dataset_name() if args.dataset == "auto" else args.dataset
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.networks.split(","):
        model, variant, options, square32 = NETWORKS[name]
        dataset = f"{base}@32" if square32 or base == "digits" else base
        checkpoint = args.out / f"{name}.pt"
        started = time.monotonic()
        if not checkpoint.exists():
            _train(name, dataset, args.budget, args.out)
        trained = time.monotonic() - started
        started = time.monotonic()
        build = args.out / f"{name}-build"
        manifest, refusals = None, []
        for board in map(get_board, BOARDS):
            try:
                _, manifest = compile_checkpoint(checkpoint, build, board)
                break
            except BoardBudgetError as error:
                refusals.append(f"{board.name}: {error}")
        compiled = time.monotonic() - started
        if manifest is None:  # built for the largest board anyway, to co-simulate it and count what it needs
            _, manifest = compile_checkpoint(checkpoint, build, board, fit_check=False)
            compiled = time.monotonic() - started
        data = load_dataset(dataset)
        interval = manifest["cycles"]["initiation_interval"]
        count = min(args.count, len(data.test_x), max(2, int(args.max_cycles // interval)))
        started = time.monotonic()
        result = verify_build(build, data.test_x[:count], data.test_y[:count], backpressure=False, crosscheck=2,
                              log=lambda *_: None)
        disturbed = verify_build(build, data.test_x[:min(100, count)], backpressure=True, engine="verilator", seed=0,
                                 log=lambda *_: None)
        simulated = time.monotonic() - started
        mismatches = result.mismatches + disturbed.mismatches
        # Kept before synthesis (which can take longer than the co-simulation on the large networks).
        (args.out / f"{name}.cosim.json").write_text(json.dumps(
            {"undisturbed": result.as_dict(), "backpressured": disturbed.as_dict(), "board": board.name,
             "train_s": round(trained, 1), "compile_s": round(compiled, 1), "cosim_s": round(simulated, 1)},
            indent=2) + "\n")
        print(f"{name}: co-simulated {result.images} images in {simulated:.0f} s, {mismatches} mismatches, latency "
              f"{result.latency:,} = {result.predicted_latency:,}, interval {result.initiation_interval:,} = "
              f"{result.predicted_initiation_interval:,}; synthesizing...", flush=True)
        slowest = max(manifest["layers"], key=lambda layer: layer["pixels"] * layer["neuron_folds"]
                      * layer["synapse_folds"])
        if args.no_synthesis:
            luts = flip_flops = dsps = bram = fits = "-"
        else:
            resources = synthesize(build / manifest["verilog"], manifest["top"], board.yosys_family,
                                   log_path=build / "yosys.log")
            (build / "report.json").write_text(json.dumps(resources.as_dict(), indent=2) + "\n")
            luts, flip_flops, dsps, bram = (f"{resources.luts:,}", f"{resources.flip_flops:,}", resources.dsps,
                                            f"{resources.bram36:g}")
            fits = "yes" if (resources.luts <= board.luts and resources.dsps <= board.dsps
                             and resources.bram36 <= board.bram36) else "no"
        if not manifest["fits_board"]["fits"]:
            fits = f"no board (--no-fit-check): {refusals[-1]}"
        images = (f"{result.images} (--max-cycles)" if result.images < min(args.count, len(data.test_x))
                  else str(result.images))
        accuracy = (f"{result.torch_accuracy:.4f} = {result.hardware_accuracy:.4f}"
                    if result.torch_accuracy == result.hardware_accuracy
                    else f"{result.torch_accuracy:.4f} != {result.hardware_accuracy:.4f}")
        label = variant + "".join(f", {flag.removeprefix('--')} {value}"
                                  for flag, value in zip(options[::2], options[1::2]) if value != "none")
        rows.append(f"| {model} | {label} | {dataset} | {accuracy} | {images} | {mismatches} | "
                    f"{result.latency:,} = {result.predicted_latency:,} | {result.initiation_interval:,} = "
                    f"{result.predicted_initiation_interval:,} | {board.clock_mhz * 1e6 / interval:,.0f} | "
                    f"{slowest['name']} | {board.name} | {luts} | "
                    f"{flip_flops} | {dsps} | {bram} | {fits} | {trained:.0f} | {compiled:.1f} | {simulated:.0f} |")
        print(rows[-1], flush=True)
    print_table(HEADER, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
