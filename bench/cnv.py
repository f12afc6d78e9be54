"""CNV (FINN's CNV-W1A1 layout) at BNN-PYNQ's folding, compiled for the PYNQ-Z1, co-simulated and synthesized.

    .venv/bin/python bench/cnv.py [--images 8] [--out runs/bench-cnv] [--no-synthesis]

BNN-PYNQ's cnv-pynq folding gives each layer a cycle budget per image of 32,400 / 28,224 / 20,736 / 28,800 /
20,736 / 18,432 / 32,768 / 32,768 / 1,024, so 3,052 images/s at 100 MHz; the same PE x SIMD here give the same
budgets (printed). The network is hbnn's CNV with the "binary" variant on 3x32x32 images: binary weights and
activations, an 8-bit first layer (binary weights on 8-bit pixels), and an int8 classifier (FINN's is binary, so
ours spends DSP slices there). Weights are random after a calibration pass: resources and cycles do not depend on
them. Prints the compile time (checkpoint to Verilog, manifest and cycle analysis), the measured and analytical
interval over --images random images in Verilator, and Yosys' LUT / FF / BRAM36 / DSP against BNN-PYNQ's anchor
(Vivado: 26,072 LUT, 124 BRAM36, 24 DSP; Vivado reads 1.5-2.3x fewer LUTs than Yosys), then each layer synthesized
alone: where the LUTs go.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time
import warnings

import torch

from hbnn.boards import get_board
from hbnn.compiler.build import compile_checkpoint
from hbnn.compiler.ir import Folding
from hbnn.compiler.layer_synthesis import synthesize_layers
from hbnn.hw.synthesis import synthesize
from hbnn.quant.checkpoint import save_checkpoint
from hbnn.quant.models import build_model
from hbnn.sim.verify import verify_build
from layer_resources import layer_table  # bench/, next to this script

# BNN-PYNQ cnv-pynq (FINN's CNV-W1A1 folding): PE x SIMD per layer.
BNN_PYNQ_FOLDING = {
    "features.conv1": Folding(16, 3), "features.conv2": Folding(32, 32), "features.conv3": Folding(16, 32),
    "features.conv4": Folding(16, 32), "features.conv5": Folding(4, 32), "features.conv6": Folding(1, 32),
    "classifier.fc1": Folding(1, 4), "classifier.fc2": Folding(1, 8), "classifier.fc3": Folding(5, 1),
}
BNN_PYNQ_CYCLES = (32_400, 28_224, 20_736, 28_800, 20_736, 18_432, 32_768, 32_768, 1_024)
ANCHOR = {"luts": 26_072, "bram36": 124, "dsps": 24}  # BNN-PYNQ CNV-W1A1 on the PYNQ-Z1, Vivado


def cnv_checkpoint(path: pathlib.Path) -> pathlib.Path:
    torch.manual_seed(0)
    model = build_model("cnv", precision="binary", in_channels=3, num_classes=10, image_size=32,
                        full_precision="int8")
    model.train()
    with torch.no_grad():
        model(torch.rand(64, 3, 32, 32))  # the quantizers' scales
    model.eval()
    save_checkpoint(path, model, {"dataset": "random", "note": "bench/cnv.py: random weights"})
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8, help="random images to co-simulate (default: 8)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/bench-cnv"))
    parser.add_argument("--no-synthesis", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = cnv_checkpoint(args.out / "cnv.pt")
    board = get_board("pynq-z1")
    started = time.monotonic()
    graph, manifest = compile_checkpoint(checkpoint, args.out / "build", board, BNN_PYNQ_FOLDING)
    compile_seconds = time.monotonic() - started
    print(f"CNV at BNN-PYNQ's folding, compiled for {board.name} in {compile_seconds:.1f} s "
          "(checkpoint to Verilog, memories, manifest and cycle analysis)\n")
    print("| layer | PE | SIMD | cycles per image | BNN-PYNQ's budget |")
    print("|---|---:|---:|---:|---:|")
    for layer, budget in zip(manifest["layers"], BNN_PYNQ_CYCLES):
        cycles = layer["pixels"] * layer["neuron_folds"] * layer["synapse_folds"]
        print(f"| {layer['name']} | {layer['pe']} | {layer['simd']} | {cycles:,} | {budget:,} |")
    interval = manifest["cycles"]["initiation_interval"]
    clock = board.clock_mhz
    print(f"\nanalytical: latency {manifest['cycles']['latency']:,} cycles, interval {interval:,} cycles = "
          f"{clock * 1e6 / interval:,.0f} images/s at {clock:g} MHz")

    x = torch.rand(args.images, 3, 32, 32)
    started = time.monotonic()
    result = verify_build(args.out / "build", x, backpressure=False, engine="verilator", log=lambda *_: None)
    print(f"co-simulated {result.images} random images in {time.monotonic() - started:.0f} s (Verilator, build "
          f"included): {result.mismatches} mismatches, latency {result.latency:,} (analytical "
          f"{result.predicted_latency:,}), interval {result.initiation_interval:,} (analytical "
          f"{result.predicted_initiation_interval:,})")

    if not args.no_synthesis:
        started = time.monotonic()
        resources = synthesize(args.out / "build" / manifest["verilog"], manifest["top"], board.yosys_family,
                               log_path=args.out / "yosys.log")
        print(f"\nYosys synth_xilinx -family {board.yosys_family} in {time.monotonic() - started:.0f} s\n")
        print("| | LUT | FF | BRAM36 | DSP | images/s at 100 MHz |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| hbnn (Yosys) | {resources.luts:,} | {resources.flip_flops:,} | {resources.bram36:g} | "
              f"{resources.dsps} | {1e8 / interval:,.0f} |")
        print(f"| BNN-PYNQ CNV-W1A1 (Vivado) | {ANCHOR['luts']:,} | | {ANCHOR['bram36']} | {ANCHOR['dsps']} | "
              f"{1e8 / 32_768:,.0f} |")
        started = time.monotonic()
        layers = synthesize_layers(graph, board.yosys_family, args.out / "layers",
                                   progress=lambda text: print(f"  {text}", file=sys.stderr, flush=True))
        print(f"\nwhere they go: each layer synthesized alone ({time.monotonic() - started:.0f} s)\n")
        print(layer_table(graph, layers))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
