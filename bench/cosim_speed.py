"""Co-simulation speed, side by side on the same Verilog: the bare Verilator loop, the fast engine (C++ stream
driver) without and with back-pressure, and the cocotb bench; then the fast engine's build flags.

    .venv/bin/python bench/cosim_speed.py [BUILD ...] [--cycles 2000000] [--cocotb-cycles 60000] [--no-flags]

Without BUILD folders it compiles three binary MLPs with seeded, untrained weights (speed does not depend on the
weights): the demo's digits shape 64-128-128-10, its Fashion-MNIST shape 784-128-128-10, and the tests' tiny
16-24-16-4 with the tests' foldings. Every figure is cycles per second of wall time around the simulator process,
so process start and file I/O count against the engines; the cocotb figure is the difference between a long and a
one-image run, which takes out cocotb's start-up (a few seconds). Figures, not assertions.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from hbnn.boards import get_board
from hbnn.compiler.build import compile_checkpoint
from hbnn.compiler.ir import Folding
from hbnn.quant import save_checkpoint
from hbnn.quant.models import build_model
from hbnn.sim.design import Design
from hbnn.sim.flow_control import FlowControl
from hbnn.sim.verilator_engine import build_driver, run_driver

BARE_LOOP = pathlib.Path(__file__).with_name("bare_clock_loop.cpp")
FLAG_VARIANTS = [("-O0", 1), (None, 1), ("-O3", 1), (None, 2)]  # None: hbnn's default (-Os)


def example_builds(work: pathlib.Path) -> list[pathlib.Path]:
    tests_folding = {"fc1": Folding(pe=1, simd=1), "fc3": Folding(pe=4, simd=16)}  # as tests/conftest.py
    shapes = [("digits-demo", (64, 128, 128, 10), None), ("fashion-demo", (784, 128, 128, 10), None),
              ("tests-tiny", (16, 24, 16, 4), tests_folding)]
    builds = []
    for name, sizes, folding in shapes:
        torch.manual_seed(0)
        side = int(round(sizes[0] ** 0.5))
        model = build_model("mlp", precision="binary", in_channels=1, num_classes=sizes[-1], image_size=side,
                            hidden=list(sizes[1:-1]))
        checkpoint = work / f"{name}.pt"
        save_checkpoint(checkpoint, model, {"dataset": "synthetic"})
        compile_checkpoint(checkpoint, work / name, get_board("pynq-z2"), folding)
        builds.append(work / name)
    return builds


def random_stimulus(design: Design, images: int):
    rng = np.random.default_rng(0)
    frames = np.where(rng.random((images,) + design.input.frame_shape) < 0.5, 1, -1)
    return design.stimulus(frames)


def timed(function):
    started = time.monotonic()
    result = function()
    return result, time.monotonic() - started


def bare_speed(design: Design, cycles: int) -> float:
    executable = build_driver(design.verilog, design.top, design.sim_root, driver_source=BARE_LOOP)
    _, seconds = timed(lambda: subprocess.run([str(executable), f"cycles={cycles}"], check=True,
                                              capture_output=True))
    return cycles / seconds


def engine_speed(design: Design, stimulus, flow: FlowControl, engine: str = "verilator", name: str = "speed"):
    run, seconds = timed(lambda: design.run(stimulus, flow, engine=engine, name=name))
    return run.cycles, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", nargs="*", type=pathlib.Path)
    parser.add_argument("--cycles", type=int, default=2_000_000, help="cycles per fast-engine and bare run")
    parser.add_argument("--cocotb-cycles", type=int, default=60_000, help="cycles of the long cocotb run")
    parser.add_argument("--no-flags", action="store_true", help="skip the build-flag comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hbnn-cosim-speed-") as work:
        work = pathlib.Path(work)
        builds = args.builds or example_builds(work)
        speed_rows, flag_rows = [], []
        for build in builds:
            design = Design.from_build(build)
            design = Design(design.verilog, design.top, design.input, design.output, design.latency,
                            design.interval, work / f"sim-{build.name}", build.name)
            images = max(2, args.cycles // design.interval)
            stimulus = random_stimulus(design, images)
            design.build()
            bare = bare_speed(design, args.cycles)
            cycles, seconds = engine_speed(design, stimulus, FlowControl())
            fast = cycles / seconds
            cycles, seconds = engine_speed(design, stimulus, FlowControl(0.3, 0.3, seed=1), name="speed-bp")
            fast_bp = cycles / seconds
            cocotb_images = max(2, args.cocotb_cycles // design.interval)
            design.build("cocotb")
            long_cycles, long_seconds = engine_speed(design, stimulus.head(cocotb_images), FlowControl(), "cocotb")
            short_cycles, short_seconds = engine_speed(design, stimulus.head(1), FlowControl(), "cocotb", "short")
            cocotb = (long_cycles - short_cycles) / (long_seconds - short_seconds)
            speed_rows.append((build.name, bare, fast, fast_bp, cocotb))
            print(json.dumps({"design": build.name, "bare": round(bare), "fast": round(fast),
                              "fast_backpressure": round(fast_bp), "cocotb": round(cocotb)}), flush=True)
            if args.no_flags:
                continue
            for optimization, threads in FLAG_VARIANTS:
                directory = work / f"flags-{build.name}"
                shutil.rmtree(directory, ignore_errors=True)
                flagged = Design(design.verilog, design.top, design.input, design.output, design.latency,
                                 design.interval, directory, build.name)
                executable, build_seconds = timed(lambda: build_driver(
                    flagged.verilog, flagged.top, flagged.sim_root, optimization=optimization, threads=threads))
                run, run_seconds = timed(lambda: run_driver(
                    executable, stimulus, FlowControl(), flagged.budget(stimulus.images, FlowControl()),
                    directory=directory / "runs", name="flags", label=build.name))
                label = f"{optimization or '-Os (default)'}{' --threads 2' if threads == 2 else ''}"
                flag_rows.append((build.name, label, build_seconds, run.cycles / run_seconds))
                print(json.dumps({"design": build.name, "flags": label, "build_s": round(build_seconds, 1),
                                  "cycles_per_s": round(run.cycles / run_seconds)}), flush=True)

    print(f"\n{'design':<14}  {'bare loop':>11}  {'fast':>11}  {'fast + bp':>11}  {'cocotb':>9}  "
          f"{'fast/bare':>9}  {'fast/cocotb':>11}   (cycles/s)")
    for name, bare, fast, fast_bp, cocotb in speed_rows:
        print(f"{name:<14}  {bare:>11,.0f}  {fast:>11,.0f}  {fast_bp:>11,.0f}  {cocotb:>9,.0f}  "
              f"{fast / bare:>9.0%}  {fast / cocotb:>10.0f}x")
    if flag_rows:
        print(f"\n{'design':<14}  {'C++ flags':<26}  {'build s':>7}  {'cycles/s':>11}")
        for name, label, build_seconds, speed in flag_rows:
            print(f"{name:<14}  {label:<26}  {build_seconds:>7.1f}  {speed:>11,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
