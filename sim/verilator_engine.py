"""The fast engine: the design verilated together with stream_driver.cpp, so no Python runs per clock cycle.

Builds are cached by content: a build directory is reused while the Verilog, the driver source, the flags and the
Verilator version are those it was built from, and rebuilt (into a fresh directory, swapped in when complete)
otherwise.

C++ optimization of the model (measured by bench/cosim_speed.py on 2 cores; docs/cosim.md has the tables): -Os,
Verilator's own default, for short checks and long runs alike. Against -O0 it takes 0.3-2.9 s longer to build and
runs 2.5-4.3x faster, so it wins from a few hundred thousand cycles on; a check shorter than that is over in seconds
either way. -O3 builds 1.4-2.1x longer and was 10-12% slower on the demo's digits design, 22-26% faster on its
Fashion-MNIST design (paying off after 7-10 million cycles). Verilator's --threads 2 is not used: 30-88% slower on
the smaller designs, and between 6% slower and 60% faster on the largest, from run to run, on 2 cores.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..toolchain import VERILATOR_MODEL_ARGS, verilator_environment
from .flow_control import CycleBudget, FlowControl
from .stimulus import Stimulus
from .transcript import CosimError, StreamRun, prepare_run, read_transcript

__all__ = ["CXX_OPTIMIZATION", "DRIVER_SOURCE", "TRACE_KINDS", "Waves", "Activity", "build_driver", "run_driver"]

DRIVER_SOURCE = pathlib.Path(__file__).with_name("stream_driver.cpp")
TRACE_KINDS = {None: (), "fst": ("--trace-fst",), "saif": ("--trace-saif",)}
# The driver dumps traces in nanoseconds, 5 per half period (the cocotb bench's 10 ns clock).
_DRIVER_ARGS = ("--cc", "--exe", "--build", "-j", "2", "--prefix", "Vdut", "--timescale", "1ns/1ns")
CXX_OPTIMIZATION = "-Os"  # see the module docstring
PROGRESS_EVERY = 1 << 16  # cycles between progress lines (a few per second at the driver's speed)


@dataclass(frozen=True)
class Waves:
    path: pathlib.Path
    images: int  # trace from reset until this many images have left the design


@dataclass(frozen=True)
class Activity:
    path: pathlib.Path
    first_image: int  # the window starts after image first_image-1 has left the design ...
    images: int  # ... and ends when image first_image+images-1 has


def _verilator_version(env: dict) -> str:
    return subprocess.run(["verilator", "--version"], capture_output=True, text=True, env=env).stdout.strip()


def build_driver(verilog_path: str | pathlib.Path, top: str, sim_root: str | pathlib.Path,
                 trace: str | None = None, *, optimization: str | None = None, threads: int = 1,
                 driver_source: pathlib.Path = DRIVER_SOURCE, libraries: Sequence[pathlib.Path] = (),
                 driver_defines: Mapping[str, str] | None = None) -> pathlib.Path:
    """Verilates the design with the streaming driver; returns the executable. Cached by content.

    optimization (e.g. "-O3"), threads and driver_source replace CXX_OPTIMIZATION, one thread and the stream
    driver: the speed benchmark compares them (bench/cosim_speed.py); hbnn itself uses the defaults.
    libraries: more Verilog files the design instantiates (the AXI-Stream top's accelerator). driver_defines:
    preprocessor macros of the driver (its port names; stream_driver.cpp lists them).
    """
    if trace not in TRACE_KINDS:
        raise ValueError(f"trace must be one of {list(TRACE_KINDS)}, not {trace!r}")
    env = dict(os.environ, **verilator_environment(optimization or CXX_OPTIMIZATION))
    variant = [trace or "plain"]
    if optimization is not None:
        variant.append(optimization.lstrip("-"))
    if threads != 1:
        variant.append(f"threads{threads}")
    if driver_source != DRIVER_SOURCE:
        variant.append(driver_source.stem)
    verilog_path = pathlib.Path(verilog_path).resolve()
    libraries = [pathlib.Path(path).resolve() for path in libraries]
    args = [*_DRIVER_ARGS, *VERILATOR_MODEL_ARGS, *TRACE_KINDS[trace], "--top-module", top]
    if threads != 1:
        args += ["--threads", str(threads)]
    for name, value in sorted((driver_defines or {}).items()):
        args += ["-CFLAGS", f"-D{name}={value}"]
    key = hashlib.sha256()
    for part in (verilog_path.read_bytes(), *(path.read_bytes() for path in libraries), driver_source.read_bytes(),
                 " ".join(args).encode(), env["MAKEFLAGS"].encode(), _verilator_version(env).encode()):
        key.update(hashlib.sha256(part).digest())
    key = key.hexdigest()
    directory = pathlib.Path(sim_root).resolve() / f"verilator-{'-'.join(variant)}"
    executable = directory / "driver"
    stamp = directory / "content.sha256"
    if executable.exists() and stamp.exists() and stamp.read_text().strip() == key:
        return executable
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    result = subprocess.run(["verilator", *args, "-Mdir", str(staging), "-o", "driver", str(verilog_path),
                             *map(str, libraries), str(driver_source)], capture_output=True, text=True, env=env)
    (staging / "build.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise CosimError(f"Verilator could not build {verilog_path} with the stream driver "
                         f"(log: {staging / 'build.log'}):\n{tail}")
    (staging / "content.sha256").write_text(key + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return executable


def run_driver(executable: pathlib.Path, stimulus: Stimulus, flow: FlowControl, budget: CycleBudget, *,
               directory: pathlib.Path, name: str, label: str, progress: bool = False,
               waves: Waves | None = None, activity: Activity | None = None) -> StreamRun:
    """Streams the stimulus through the driver; raises SimulationStalled when the design stops producing."""
    options = prepare_run(directory, name, stimulus, flow, budget)
    options["progress_every"] = PROGRESS_EVERY if progress else 0
    if waves is not None:
        options.update(waves=waves.path, wave_images=waves.images)
    if activity is not None:
        if activity.first_image < 1 or activity.first_image + activity.images > stimulus.images:
            raise ValueError(f"{label}: the activity window (images {activity.first_image}.."
                             f"{activity.first_image + activity.images - 1}) must start after image 0 and end "
                             f"within the {stimulus.images} images streamed")
        options.update(saif=activity.path, saif_first=activity.first_image, saif_images=activity.images)
    command = [str(executable), *(f"{key}={value}" for key, value in options.items())]
    log_path = directory / f"{name}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        bar, returncode = None, None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=stimulus.images, desc=name, unit="image")
        try:
            for line in process.stdout:
                if bar is not None and line.startswith("progress "):
                    bar.update(int(line.split()[1]) - bar.n)
            returncode = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
            if bar is not None:
                if returncode == 0:  # the driver prints progress only every PROGRESS_EVERY cycles
                    bar.update(stimulus.images - bar.n)
                bar.close()
    if returncode != 0:
        raise CosimError(f"{label}: the stream driver failed with exit code {returncode}: "
                         f"{log_path.read_text().strip()[-2000:]}")
    run = read_transcript(directory, name, "verilator", input_transfers=stimulus.input_transfers,
                          output_transfers=stimulus.output_transfers, output_words=stimulus.output.words, label=label)
    if activity is not None and not (run.activity_cycles and run.activity_cycles[1] > run.activity_cycles[0]):
        raise CosimError(f"{label}: the switching-activity window did not complete ({run.activity_cycles})")
    return run
