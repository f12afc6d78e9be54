"""A design to co-simulate: its Verilog, its stream formats and its analytical timing, with both engines behind one
`run`. A build folder gives one (`Design.from_build`); tests make their own around any streaming component."""
from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass

import numpy as np

from ..hw.layout import StreamFormat
from .flow_control import CycleBudget, FlowControl, cycle_budget
from .stimulus import Stimulus
from .transcript import StreamRun
from .verilator_engine import Activity, Waves, build_driver, run_driver

__all__ = ["ENGINES", "ENGINE_CHOICES", "DEFAULT_CROSSCHECK_IMAGES", "CROSSCHECK_CYCLES", "Design", "Timing",
           "measure_timing", "steady_state_window", "crosscheck_images"]

ENGINES = ("verilator", "cocotb")
ENGINE_CHOICES = ("both", *ENGINES)  # both: verilator streams the set, cocotb cross-checks the first images
DEFAULT_CROSSCHECK_IMAGES = 24
# The default cross-check stops short of 24 images where they would take the cocotb bench (about 10^4 cycles/s)
# more than half a minute per run: a convolutional network's 10^4-10^5 cycles per image would take minutes.
CROSSCHECK_CYCLES = 300_000


@dataclass(frozen=True)
class Design:
    verilog: pathlib.Path
    top: str
    input: StreamFormat
    output: StreamFormat
    latency: int  # analytical: first input handshake of an image to its last output handshake, pipeline empty
    interval: int  # analytical: cycles between images streaming back to back, in the steady state (rounded up)
    sim_root: pathlib.Path  # simulator builds and run files go here
    label: str  # names the design in messages (the build folder)
    transient: tuple[int, ...] = ()  # analytical: the first gaps between images' last outputs, before the period
    period: tuple[int, ...] | None = None  # analytical: the steady gaps, repeating; None: (interval,)

    def gaps(self, images: int) -> list[int]:
        """The analytical gaps between consecutive images' last outputs, streaming `images` undisturbed."""
        period = self.period or (self.interval,)
        count = max(images - 1, 0)
        repeats = -(-max(count - len(self.transient), 0) // len(period))
        return (list(self.transient) + list(period) * repeats)[:count]

    @classmethod
    def from_build(cls, build_dir: str | pathlib.Path) -> Design:
        from ..compiler.build import read_manifest

        build_dir = pathlib.Path(build_dir)
        manifest = read_manifest(build_dir)
        cycles = manifest["cycles"]
        return cls(build_dir / manifest["verilog"], manifest["top"], StreamFormat.from_dict(manifest["input"]),
                   StreamFormat.from_dict(manifest["output"]), cycles["latency"],
                   math.ceil(cycles["initiation_interval"]), build_dir / "sim", str(build_dir),
                   tuple(cycles["gaps_transient"]), tuple(cycles["gaps_period"]))

    def stimulus(self, frames) -> Stimulus:
        """frames: (images, transfers, elements) of input elements; refused if they do not fit this design."""
        return Stimulus.from_frames(frames, self.input, self.output, build=self.label)

    def budget(self, images: int, flow: FlowControl) -> CycleBudget:
        return cycle_budget(self.latency, self.interval, images, max(self.input.transfers, self.output.transfers),
                            flow)

    def build(self, engine: str = "verilator", trace: str | None = None) -> pathlib.Path:
        """Builds (or finds cached) the simulator of one engine: the driver executable, or cocotb's build folder."""
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        if engine == "cocotb":
            from .cocotb_engine import build_cocotb

            return build_cocotb(self.verilog, self.top, self.sim_root)
        return build_driver(self.verilog, self.top, self.sim_root, trace)

    def run(self, stimulus: Stimulus, flow: FlowControl = FlowControl(), *, engine: str = "verilator",
            name: str = "run", progress: bool = False, budget: CycleBudget | None = None,
            waves: Waves | None = None, activity: Activity | None = None) -> StreamRun:
        """Streams the stimulus through the design. waves / activity (verilator engine only) need their own build
        of the driver, with tracing compiled in; the plain build is kept for the runs without."""
        budget = budget or self.budget(stimulus.images, flow)
        label = f"{self.label}: run '{name}'"
        directory = self.sim_root / "runs"
        if engine == "cocotb":
            if waves is not None or activity is not None:
                raise ValueError("waves and switching activity come from the verilator engine")
            from .cocotb_engine import run_cocotb

            return run_cocotb(self.build("cocotb"), self.top, stimulus, flow, budget, directory=directory,
                              name=name, label=label, progress=progress)
        if waves is not None and activity is not None:
            raise ValueError("record waves and switching activity in separate runs")
        trace = "fst" if waves is not None else "saif" if activity is not None else None
        return run_driver(self.build(engine, trace), stimulus, flow, budget, directory=directory, name=name,
                          label=label, progress=progress, waves=waves, activity=activity)


@dataclass(frozen=True)
class Timing:
    latency: int  # first input handshake of image 0 to its last output handshake
    interval_spread: tuple[int, int]  # smallest and largest gap between images' last output handshakes
    gaps: tuple[int, ...] = ()  # every gap between consecutive images' last output handshakes

    @property
    def initiation_interval(self) -> int:
        """The last gap: the steady state once the pipeline has filled."""
        return self.gaps[-1] if self.gaps else 0


def measure_timing(run: StreamRun, stimulus: Stimulus) -> Timing:
    image_ends = run.output_cycles[stimulus.output.transfers - 1::stimulus.output.transfers]
    image_starts = run.input_cycles[::stimulus.input.transfers]
    gaps = np.diff(image_ends)
    spread = (int(gaps.min()), int(gaps.max())) if len(gaps) else (0, 0)
    return Timing(int(image_ends[0] - image_starts[0]), spread, tuple(int(gap) for gap in gaps))


def crosscheck_images(design: Design) -> int:
    """The default number of images the cocotb bench cross-checks: 24, or as many as fit in CROSSCHECK_CYCLES."""
    fitting = (CROSSCHECK_CYCLES - design.latency) // max(design.interval, 1) + 1
    return max(1, min(DEFAULT_CROSSCHECK_IMAGES, fitting))


def steady_state_window(design: Design, images: int, window: int = 64) -> tuple[int, int]:
    """(first image, images) for switching activity: from when the pipeline is full, at most `window` images."""
    # Full pipeline, and past the transient gaps: from there every image takes the same cycles.
    first = max(1, math.ceil(design.latency / max(design.interval, 1)), len(design.transient) + 1)
    if images <= first:
        raise ValueError(f"{design.label}: switching activity needs more than {first} images (the pipeline fills "
                         f"over the first {first}); {images} given")
    return first, min(window, images - first)
