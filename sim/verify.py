"""Bit-exactness verdict for a build folder: the verilated accelerator against the PyTorch model (or QONNX graph) it came from.

The fast engine (C++ driver) streams the whole image set, once undisturbed (timing) and, with `backpressure`, once
with random input gaps and output stalls. The cocotb bench then runs the first `crosscheck` images under both flow
controls, and the fast engine runs the same images again: the two transcripts (every output word and the cycle of
every handshake) must be identical.
"""
from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..compiler.build import CHECKPOINT, read_manifest
from ..compiler.float_ops import to_float32
from ..compiler.check import check_graph
from ..compiler.execute import execute
from ..compiler.ir import Graph
from ..compiler.lower import input_layer_of, network_input_codes
from ..compiler.wire_order import wire_order
from ..quant.augment import normalize
from ..quant.checkpoint import load_checkpoint
from .qonnx_reference import BrevitasReference, QonnxReference
from ..quant.train import EVAL_BATCH_SIZE
from .design import ENGINE_CHOICES, Design, crosscheck_images, measure_timing, steady_state_window
from .flow_control import FlowControl
from .activity import read_saif, stage_activity
from .verilator_engine import Activity, Waves

__all__ = ["BACKPRESSURE", "Verification", "verify_build", "torch_outputs", "input_frames", "as_float32", "mismatching",
           "graph_mismatches"]

BACKPRESSURE = (0.3, 0.3)  # probability per cycle of an input gap / an output stall in the back-pressure run


@dataclass(frozen=True)
class Verification:
    images: int
    outputs_compared: int  # output integers compared, over all runs
    mismatches: int  # output integers that differ from PyTorch, over all runs
    torch_accuracy: float | None
    hardware_accuracy: float | None
    latency: int  # measured: first input handshake to last output handshake of image 0, pipeline empty
    initiation_interval: int  # measured: largest gap between consecutive images' outputs, streaming undisturbed
    interval_spread: tuple[int, int]  # smallest and largest gap, equal when the stream is regular
    predicted_latency: int
    predicted_initiation_interval: float  # the steady state's mean gap (an integer unless the gaps alternate)
    gaps_match: bool  # every measured gap between images equals the analytical one (transient, then period)
    backpressure_runs: int  # runs with random stalls, checked for equality only
    engine: str  # the engine that streamed the whole set
    simulated_cycles: int  # clock cycles of the whole-set runs
    simulation_seconds: float  # wall time of the whole-set runs, simulator builds excluded
    crosscheck_images: int = 0  # images also streamed by cocotb (0: no cross-check)
    engines_agree: bool | None = None  # identical transcripts from both engines, every cross-checked run
    waves: str | None = None  # FST file of the first images, relative to the build folder
    activity: dict | None = field(default=None)  # SAIF file and its window (images and cycle range)
    reference: str = "PyTorch"  # what the outputs were compared with: PyTorch, or execute_onnx on a QONNX graph

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0 and self.outputs_compared > 0

    @property
    def cycles_match(self) -> bool:
        return self.latency == self.predicted_latency and self.gaps_match

    @property
    def passed(self) -> bool:
        return self.bit_exact and self.cycles_match and self.engines_agree is not False

    def as_dict(self) -> dict:
        return {**self.__dict__, "bit_exact": self.bit_exact, "cycles_match": self.cycles_match}


def torch_outputs(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """The model's eval outputs, float32 as PyTorch computes them, (images, outputs) in wire order; in batches of
    EVAL_BATCH_SIZE (the eval forward is float64 and a CNN's maps are large)."""
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[start:start + EVAL_BATCH_SIZE]) for start in range(0, len(x), EVAL_BATCH_SIZE)])
    return wire_order(out.numpy()).reshape(len(out), -1).astype(np.float32)


def as_float32(codes: np.ndarray, exponent: int, divisor: int = 1) -> np.ndarray:
    """Hardware output codes as the float32 values they stand for: code * 2**exponent (/ divisor in float64),
    rounded once."""
    return to_float32(codes, exponent, divisor)


def mismatching(codes: np.ndarray, exponent: int, expected: np.ndarray, divisor: int = 1) -> int:
    """Outputs whose float32 value differs from PyTorch's. Values compare exactly (float32 ==): the only two bit
    patterns of one value are -0.0 and +0.0, and PyTorch's float64 matmul writes -0.0 for some zero sums, which an
    integer accumulator (one zero) cannot tell apart. NaN and infinity never occur: outputs are bounded integers."""
    return int((as_float32(codes, exponent, divisor) != expected).sum())


def graph_mismatches(model: torch.nn.Module, graph: Graph, x: torch.Tensor) -> int:
    """Outputs of the graph (the IR executor, on the input layer's codes) whose float32 value differs from
    PyTorch's: the check of lowering and of every pass, before any hardware."""
    codes = network_input_codes(model, input_layer_of(graph), x)
    out = execute(graph, codes)[graph.outputs[0]]
    exponent = check_graph(graph)[graph.outputs[0]].dtype.exponent
    return mismatching(wire_order(out).reshape(len(x), -1), exponent, torch_outputs(model, x),
                       graph.divisor_of(graph.outputs[0]))


def input_frames(model: torch.nn.Module, x: torch.Tensor, design: Design, layer: str) -> np.ndarray:
    """Images as the build's input stream carries them, (images, transfers, elements): the codes the input layer's
    own quantizer makes (the host does what comes before it), in wire order."""
    codes = wire_order(network_input_codes(model, layer, x))
    return codes.reshape(len(codes), design.input.transfers, -1)  # Stimulus.from_frames refuses a misfit, naming both


def host_inputs(model: torch.nn.Module, meta: dict, x: torch.Tensor) -> torch.Tensor:
    """Dataset rows as the model took them in training: images (N, C, H, W) unless the model reads flat pixels, and
    the training's input normalization (the deterministic part of its augmentation), if any."""
    if getattr(model, "input_layout", "images") == "images" and x.ndim == 2:
        x = x.view(len(x), model.in_channels, model.image_size, model.image_size)
    normalization = meta.get("input_normalization")
    if normalization:
        x = normalize(x, tuple(normalization["mean"]), tuple(normalization["std"]))
    return x


def _qonnx_reference(build_dir: pathlib.Path, manifest: dict) -> QonnxReference:
    """execute_onnx on the build's graph; or, for a Brevitas model compiled as PyTorch, that model."""
    graph = build_dir / manifest["qonnx"]["file"]
    if "brevitas" not in manifest:
        return QonnxReference(graph, manifest["qonnx"])
    from ..quant.bnn_pynq import bnn_pynq_model, load_brevitas_weights

    model = bnn_pynq_model(manifest["brevitas"]["network"])
    load_brevitas_weights(model, build_dir / manifest["brevitas"]["weights"])
    return BrevitasReference(graph, manifest["qonnx"], model)


def verify_build(build_dir: str | pathlib.Path, x: torch.Tensor, labels: torch.Tensor | None = None, *,
                 backpressure: bool = True, seed: int = 0, progress: bool = False, engine: str = "both",
                 crosscheck: int | None = None, waves: int = 0, activity: bool = False,
                 log=print) -> Verification:
    """Streams the images x (pixels, as the model takes them) through the hardware and compares every output.

    crosscheck: images for the cocotb cross-check with engine "both"; None: hbnn.sim.design.crosscheck_images.
    """
    if engine not in ENGINE_CHOICES:
        raise ValueError(f"engine must be one of {ENGINE_CHOICES}, not {engine!r}")
    build_dir = pathlib.Path(build_dir)
    manifest = read_manifest(build_dir)
    design = Design.from_build(build_dir)
    exponent, divisor = manifest["output"]["exponent"], manifest["output"].get("divisor", 1)
    reference = reference_run = None
    if manifest.get("qonnx"):  # the reference is execute_onnx on the build's graph; outputs compared as integers
        reference = _qonnx_reference(build_dir, manifest)
        reference_run = reference.run(np.asarray(x))
        expected = reference_run.output_codes.astype(np.float32)  # exact: accumulators fit float32's mantissa
        exponent, divisor = 0, 1  # integers against integers
        frames = reference_run.input_codes.reshape(len(x), design.input.transfers, -1)
    elif manifest.get("checkpoint"):
        model, meta = load_checkpoint(build_dir / CHECKPOINT)
        x = host_inputs(model, meta, x)
        expected = torch_outputs(model, x)
        frames = input_frames(model, x, design, manifest["input"]["quantizer"]["layer"])
    else:
        raise ValueError(f"{build_dir} has no checkpoint or QONNX graph to compare against")
    stimulus = design.stimulus(frames)
    flows = [FlowControl()]
    if backpressure:
        flows.append(FlowControl(*BACKPRESSURE, seed=seed))
    whole_set_engine = "cocotb" if engine == "cocotb" else "verilator"

    design.build(whole_set_engine)  # outside the timed runs
    runs, seconds = [], 0.0
    for flow in flows:
        name = "backpressure" if flow.disturbed else "timing"
        started = time.monotonic()
        runs.append(design.run(stimulus, flow, engine=whole_set_engine, name=name, progress=progress))
        seconds += time.monotonic() - started
    decoded = [design.output.unpack(run.outputs).reshape(stimulus.images, -1) for run in runs]
    mismatches = sum(mismatching(d, exponent, expected, divisor) for d in decoded)
    compared = sum(d.size for d in decoded)
    timing = measure_timing(runs[0], stimulus)

    checked, agree = 0, None
    if crosscheck is None:
        crosscheck = crosscheck_images(design)
    if engine == "both" and crosscheck > 0:
        head = stimulus.head(crosscheck)
        checked = head.images
        log(f"cross-checking the first {head.images} images with the cocotb bench "
            f"({len(flows)} run{'s' if len(flows) > 1 else ''})...")
        agree = True
        for flow in flows:
            name = f"crosscheck-{'backpressure' if flow.disturbed else 'timing'}"
            fast = design.run(head, flow, engine="verilator", name=f"{name}-verilator")
            slow = design.run(head, flow, engine="cocotb", name=f"{name}-cocotb")
            difference = fast.first_difference(slow)
            if difference is not None:
                agree = False
                log(f"the engines disagree on run '{name}': {difference}")

    waves_file = None
    if waves:
        head = stimulus.head(waves)
        waves_file = "waves.fst"
        design.run(head, name="waves", waves=Waves((build_dir / waves_file).resolve(), head.images))
        log(f"waves of the first {head.images} images: {build_dir / waves_file}")
    activity_entry = None
    if activity:
        first, count = steady_state_window(design, stimulus.images)
        saif = design.run(stimulus.head(first + count), name="activity",
                          activity=Activity((build_dir / "activity.saif").resolve(), first, count))
        window = saif.activity_cycles[1] - saif.activity_cycles[0]
        activity_entry = {"file": "activity.saif", "first_image": first, "images": count,
                          "cycles": list(saif.activity_cycles),
                          "stages": stage_activity(read_saif(build_dir / "activity.saif"), window,
                                                   manifest["cycles"]["stages"], manifest["top"])}
        log(f"switching activity of images {first}..{first + count - 1} (cycles {saif.activity_cycles[0]}.."
            f"{saif.activity_cycles[1]}): {build_dir / 'activity.saif'}")

    torch_accuracy = hardware_accuracy = None
    if reference is not None:
        # The host's part after the hardware (e.g. TensorNorm) on the hardware's integers gives the graph's output.
        finals = [reference.finish(d).reshape(reference_run.final.shape) for d in decoded]
        mismatches += sum(int((final != reference_run.final).sum()) for final in finals)
        expected, hardware_scores = reference_run.final.reshape(len(x), -1), finals[0].reshape(len(x), -1)
    else:
        hardware_scores = as_float32(decoded[0], exponent, divisor)
    if labels is not None:
        labels_np = np.asarray(labels)
        torch_accuracy = float((expected.argmax(axis=1) == labels_np).mean())
        hardware_accuracy = float((hardware_scores.argmax(axis=1) == labels_np).mean())
    return Verification(
        images=stimulus.images, outputs_compared=compared, mismatches=mismatches,
        torch_accuracy=torch_accuracy, hardware_accuracy=hardware_accuracy,
        latency=timing.latency, initiation_interval=timing.initiation_interval,
        interval_spread=timing.interval_spread, predicted_latency=design.latency,
        predicted_initiation_interval=manifest["cycles"]["initiation_interval"],
        gaps_match=list(timing.gaps) == design.gaps(stimulus.images), backpressure_runs=len(runs) - 1,
        engine=whole_set_engine, simulated_cycles=sum(run.cycles for run in runs),
        simulation_seconds=round(seconds, 3), crosscheck_images=checked, engines_agree=agree,
        waves=waves_file, activity=activity_entry,
        reference="PyTorch" if reference is None or isinstance(reference, BrevitasReference) else "execute_onnx")
