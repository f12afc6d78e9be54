"""Bit-exactness verdict for a build folder: the verilated accelerator against the PyTorch model it came from."""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np
import torch

from ..compiler.build import CHECKPOINT, read_manifest
from ..quant.checkpoint import load_checkpoint
from .cosim import StreamRun, compile_simulator, stream_vectors
from .packing import pack_bipolar, unpack_bipolar, unpack_signed

__all__ = ["Verification", "verify_build", "torch_outputs"]


@dataclass(frozen=True)
class Verification:
    images: int
    outputs_compared: int  # output integers compared, over all runs
    mismatches: int  # output integers that differ from PyTorch, over all runs
    torch_accuracy: float | None
    hardware_accuracy: float | None
    latency: int  # measured: input handshake to output handshake of the first image, pipeline empty
    initiation_interval: int  # measured: largest gap between consecutive outputs, streaming undisturbed
    interval_spread: tuple[int, int]  # smallest and largest gap, equal when the stream is regular
    predicted_latency: int
    predicted_initiation_interval: int
    backpressure_runs: int  # runs with random stalls, checked for equality only

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0 and self.outputs_compared > 0

    @property
    def cycles_match(self) -> bool:
        return (self.latency == self.predicted_latency
                and self.interval_spread == (self.predicted_initiation_interval,) * 2)


def torch_outputs(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """The model's eval outputs as int64; raises if any is not an exact integer (then it has no hardware twin)."""
    model.eval()
    with torch.no_grad():
        out = model(x).double()
    if not torch.equal(out, out.round()):
        raise ValueError("the model's outputs are not integers; hbnn compares integer outputs only")
    return out.to(torch.int64).numpy()


def _decode(run: StreamRun, output: dict) -> np.ndarray:
    if output["type"] == "bipolar":
        return np.array([unpack_bipolar(v, output["width"]) for v in run.outputs])
    return np.array([unpack_signed(v, output["lanes"], output["lane_bits"]) for v in run.outputs])


def verify_build(build_dir: str | pathlib.Path, x: torch.Tensor, labels: torch.Tensor | None = None, *,
                 backpressure: bool = True, seed: int = 0, progress: bool = False) -> Verification:
    """Streams the images x (pixels, as the model takes them) through the hardware and compares every output.

    One undisturbed run measures latency and initiation interval; with `backpressure`, a second run with random
    input gaps and output stalls checks that flow control loses or corrupts nothing.
    """
    build_dir = pathlib.Path(build_dir)
    manifest = read_manifest(build_dir)
    if not manifest.get("checkpoint"):
        raise ValueError(f"{build_dir} has no checkpoint to compare against")
    model, _ = load_checkpoint(build_dir / CHECKPOINT)
    expected = torch_outputs(model, x)
    with torch.no_grad():
        packed = [pack_bipolar(row) for row in model.binarize_input(x).numpy()]
    top = manifest["top"]
    sim_dir = compile_simulator(build_dir / manifest["verilog"], top, build_dir / "sim")

    runs = [stream_vectors(sim_dir, top, packed, name="timing", progress=progress)]
    if backpressure:
        runs.append(stream_vectors(sim_dir, top, packed, input_gaps=0.3, output_stalls=0.3, seed=seed,
                                   name="backpressure", progress=progress))
    decoded = [_decode(run, manifest["output"]) for run in runs]
    mismatches = sum(int((d != expected).sum()) for d in decoded)
    compared = sum(d.size for d in decoded)

    timing = runs[0]
    gaps = np.diff(timing.output_cycles)
    spread = (int(gaps.min()), int(gaps.max())) if len(gaps) else (0, 0)
    torch_accuracy = hardware_accuracy = None
    if labels is not None:
        labels_np = labels.numpy()
        torch_accuracy = float((expected.argmax(axis=1) == labels_np).mean())
        hardware_accuracy = float((decoded[0].argmax(axis=1) == labels_np).mean())
    cycles = manifest["cycles"]
    return Verification(
        images=len(packed), outputs_compared=compared, mismatches=mismatches,
        torch_accuracy=torch_accuracy, hardware_accuracy=hardware_accuracy,
        latency=timing.output_cycles[0] - timing.input_cycles[0], initiation_interval=spread[1],
        interval_spread=spread, predicted_latency=cycles["latency"],
        predicted_initiation_interval=cycles["initiation_interval"], backpressure_runs=len(runs) - 1)
