"""Folding sweep: how parallelism trades LUTs and flip-flops for cycles on one trained binary MLP.

    .venv/bin/python bench/run.py [--checkpoint runs/demo/model.pt] [--targets 128,64,32,16,8,4]

Trains the demo's digits model if no checkpoint is given, compiles it at each cycle target, synthesizes each design
with Yosys (synth_xilinx -family xc7) and prints one row per target. Figures, not assertions: nothing here fails
on a number.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import torch

from hbnn.boards import get_board
from hbnn.compiler.build import compile_checkpoint
from hbnn.hw.synthesis import synthesize
from hbnn.quant import load_dataset, save_checkpoint, train
from hbnn.quant.models import build_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=pathlib.Path)
    parser.add_argument("--targets", default="128,64,32,16,8,4")
    args = parser.parse_args()
    targets = [int(t) for t in args.targets.split(",")]
    with tempfile.TemporaryDirectory(prefix="hbnn-bench-") as work:
        work = pathlib.Path(work)
        checkpoint = args.checkpoint
        if checkpoint is None:
            dataset = load_dataset("digits")
            torch.manual_seed(0)
            model = build_model("mlp", precision="binary", in_channels=1, num_classes=10, image_size=8,
                                hidden=[128, 128])
            train(model, dataset, epochs=40, seed=0, progress=False)
            checkpoint = work / "model.pt"
            save_checkpoint(checkpoint, model, {"dataset": "digits"})
        print(f"{'target':>6}  {'foldings (PExSIMD per layer)':<28}  {'II':>4}  {'latency':>7}  {'LUT':>6}  "
              f"{'FF':>6}  {'CARRY4':>6}  {'BRAM36':>6}  {'synth s':>7}")
        for target in targets:
            _, manifest = compile_checkpoint(checkpoint, work / f"t{target}", get_board("pynq-z2"),
                                             target_cycles=target)
            started = time.monotonic()
            resources = synthesize(work / f"t{target}" / manifest["verilog"], manifest["top"])
            foldings = " ".join(f"{layer['pe']}x{layer['simd']}" for layer in manifest["layers"])
            cycles = manifest["cycles"]
            print(f"{target:>6}  {foldings:<28}  {cycles['initiation_interval']:>4}  {cycles['latency']:>7}  "
                  f"{resources.luts:>6}  {resources.flip_flops:>6}  {resources.carry:>6}  {resources.bram36:>6g}  "
                  f"{time.monotonic() - started:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
