"""The MLP's precision variants in hardware, end to end: train, compile, co-simulate, synthesize (docs/hardware.md).

    .venv/bin/python bench/mlp_variants.py [--dataset auto] [--count 1000] [--out runs/mlp-variants]

For each of fp (all int8, 8-bit pixels in), hybrid (int8 first and last layers, binary hidden layers), binary (all
binary, binarized pixels) and an hbn plan (`hbnn select --method hbn --budget 90%` on the trained fp network: the MLP's one candidate layer, fc2, since
the first and last stay at full precision, and fc1 holds 85% of the FLOPs, then
trained from the plan), it trains the MLP 784-128-128-10 (Fashion-MNIST, or 64-128-128-10 on digits), compiles it
for the PYNQ-Z2, co-simulates the first --count test images in Verilator (plus a back-pressure run and the cocotb
cross-check), synthesizes the whole design with Yosys, and each layer (its matrix-vector unit and threshold unit)
alone for its share. Prints markdown tables.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time
import warnings

from amaranth.back import verilog

from hbnn.boards import get_board
from hbnn.cli import main as hbnn
from hbnn.compiler.build import compile_checkpoint
from hbnn.compiler.map_to_hardware import map_stages
from hbnn.hw.dataflow import Dataflow
from hbnn.hw.synthesis import synthesize
from hbnn.quant.data import default_dataset_name, load_dataset
from hbnn.sim.verify import verify_build

VARIANTS = ("fp", "hybrid", "binary", "hbn")


def train(variant: str, dataset: str, out: pathlib.Path) -> pathlib.Path:
    checkpoint = out / f"{variant}.pt"
    if checkpoint.exists():
        return checkpoint
    if variant == "hbn":
        plan = out / "hbn-plan.json"
        assert hbnn(["select", str(train("fp", dataset, out)), "--method", "hbn", "--budget", "90%",
                     "--out", str(plan)]) == 0
        arguments = ["--plan", str(plan)]
    else:
        arguments = ["--model", "mlp", "--precision", variant]
    assert hbnn(["train", *arguments, "--dataset", dataset, "--quiet", "--out", str(checkpoint)]) == 0
    return checkpoint


def layer_shares(graph, work: pathlib.Path, family: str) -> list[tuple[str, object]]:
    """Each layer's matrix-vector unit and threshold unit synthesized alone."""
    stages = map_stages(graph)
    shares = []
    for index, stage in enumerate(stages):
        if type(stage.component).__name__ != "Mvau":
            continue
        group = [stage.component]
        if index + 1 < len(stages) and type(stages[index + 1].component).__name__ == "MultiThreshold":
            group.append(stages[index + 1].component)
        path = work / f"{stage.node}.v"
        path.write_text(verilog.convert(Dataflow(group), name="layer", emit_src=False))
        shares.append((stage.node, synthesize(path, "layer", family)))
    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="auto")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/mlp-variants"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    dataset = default_dataset_name() if args.dataset == "auto" else args.dataset
    data = load_dataset(dataset)
    args.out.mkdir(parents=True, exist_ok=True)
    board = get_board("pynq-z2")
    rows, layer_rows = [], []
    for variant in args.variants.split(","):
        started = time.monotonic()
        checkpoint = train(variant, dataset, args.out)
        build = args.out / f"{variant}-build"
        graph, manifest = compile_checkpoint(checkpoint, build, board)
        count = min(args.count, len(data.test_x))
        result = verify_build(build, data.test_x[:count], data.test_y[:count], seed=0)
        resources = synthesize(build / manifest["verilog"], manifest["top"], board.yosys_family,
                               log_path=build / "yosys.log")
        lanes = " / ".join(f"{layer['name']} {layer['lane']} {layer['pe']}x{layer['simd']}"
                           for layer in manifest["layers"])
        rows.append(f"| {variant} | {lanes} | {result.torch_accuracy:.4f} | {result.hardware_accuracy:.4f} | "
                    f"{result.images} | {result.mismatches} | {result.latency} = {result.predicted_latency} | "
                    f"{result.initiation_interval} = {result.predicted_initiation_interval} | {resources.luts:,} | "
                    f"{resources.flip_flops:,} | {resources.dsps} | {resources.bram36:g} |")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shares = layer_shares(graph, build, board.yosys_family)
        for name, alone in shares:
            layer_rows.append(f"| {variant} | {name} | {alone.luts:,} ({100 * alone.luts / resources.luts:.0f}%) | "
                              f"{alone.flip_flops:,} | {alone.dsps} | {alone.bram36:g} |")
        print(f"{variant}: {time.monotonic() - started:.0f} s; passed {result.passed}", flush=True)
        print(rows[-1], *layer_rows[-len(shares):], sep="\n", flush=True)
    print(f"\n{dataset}, {board.name}; accuracy on the first {count} test images\n")
    print("| variant | layers (lanes, PE x SIMD) | accuracy PyTorch | accuracy hardware | images | mismatches | "
          "latency measured = analytical | interval measured = analytical | LUT | FF | DSP | BRAM36 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n| variant | layer (MVU + thresholds, synthesized alone) | LUT (share of the whole) | FF | DSP | BRAM36 |")
    print("|---|---|---|---|---|---|")
    print("\n".join(layer_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
