"""`hbnn package BUILD --out DEPLOY`: a build folder -> what a user takes to Vivado and to the board.

DEPLOY/
  hbnn_top.v          the accelerator, the build's Verilog byte for byte
  hbnn_axis.v         the AXI4-Stream top around it (hbnn.hw.axi_stream_top)
  build_overlay.tcl   Vivado: project, block design (PS, AXI DMA, the top), bitstream -> hbnn.bit, hbnn.hwh
  hbnn_driver.py      the PYNQ driver (hbnn/boards/pynq_driver.py, copied)
  accelerator.json    what the driver needs: frames, pixel codes, output scaling; plus board, clock, cycles,
                      resources and every file's sha256 (the deployment's manifest)
  README.md           the steps on the board

The folder is written next to DEPLOY and swapped in when complete. Same build and options -> same bytes.
"""
from __future__ import annotations

import hashlib
import json
import math
import pathlib
import shutil
import tempfile

import numpy as np
import torch

from .. import __version__
from ..compiler.build import CHECKPOINT, read_manifest
from ..compiler.lower import network_input_codes
from ..hw.axi_stream_top import AXIS_TOP_NAME, AxiStreamTop
from ..hw.dma_layout import DmaLayout
from ..hw.layout import StreamFormat
from ..hw.verilog_export import to_verilog
from ..quant.checkpoint import load_checkpoint
from . import pynq_driver
from .spec import Board, get_board
from .vivado import DMA_LENGTH_BITS, processing_system, vivado_script

__all__ = ["PackageError", "package_build", "pixel_codes", "DRIVER_FILE", "TCL_FILE", "AXIS_VERILOG"]

DRIVER_FILE = "hbnn_driver.py"
TCL_FILE = "build_overlay.tcl"
AXIS_VERILOG = f"{AXIS_TOP_NAME}.v"
IMAGES_IN_FLIGHT_SLACK = 4  # flag FIFO entries beyond the images the pipeline holds (latency / interval)


class PackageError(ValueError):
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _target_board(manifest: dict, build_dir: pathlib.Path, board: str | None, log) -> Board:
    built_for = get_board(manifest["board"]["name"])
    if board is None or get_board(board).name == built_for.name:
        return built_for
    target = get_board(board)
    same_fabric = (target.part, target.luts, target.dsps, target.bram36) == (
        built_for.part, built_for.luts, built_for.dsps, built_for.bram36)
    if not same_fabric:
        raise PackageError(f"{build_dir} was compiled for {built_for.name} ({built_for.part}), not {target.name} "
                           f"({target.part}): its folding and resource check are that board's. Compile for "
                           f"{target.name}: hbnn compile {build_dir / CHECKPOINT} --board {target.name} --out DIR")
    log(f"note: {build_dir} was compiled for {built_for.name}; {target.name} has the same part "
        f"({target.part}), so it is packaged for {target.name}")
    return target


def image_shape(model, input_format: StreamFormat) -> tuple[int, ...]:
    elements = input_format.transfers * input_format.elements
    if getattr(model, "input_layout", "images") == "images":
        shape = (model.in_channels, model.image_size, model.image_size)
        if math.prod(shape) != elements:
            raise PackageError(f"the model takes {shape} images but the accelerator's input stream carries "
                               f"{elements} elements per image")
        return shape
    return (elements,)


def pixel_codes(model, meta: dict, layer: str, shape: tuple[int, ...]) -> np.ndarray:
    """(channels, 256): the input layer's code for each 8-bit pixel value p (x = p / 255, as hbnn's datasets read
    their files), computed by the model itself (its normalization and input quantizer). Refused if a pixel's code
    depends on where it is, which a lookup per channel could not reproduce."""
    from ..compiler.wire_order import wire_order
    from ..sim.verify import host_inputs

    levels = torch.arange(256, dtype=torch.float32) / np.float32(255.0)
    x = levels.view((256,) + (1,) * len(shape)).expand((256,) + shape).contiguous()
    codes = wire_order(network_input_codes(model, layer, host_inputs(model, meta, x))).reshape(256, -1)
    channels = shape[0] if len(shape) == 3 else 1
    table = codes[:, :channels].T  # wire order: channels fastest
    position_free = (codes.reshape(256, -1, channels) == table.T[:, None, :]).all()
    if not position_free:
        raise PackageError(f"the input quantizer of {layer} gives one pixel value different codes at different "
                           f"positions; the driver's per-channel lookup cannot reproduce it")
    return table


def _accelerator_resources(build_dir: pathlib.Path) -> dict | None:
    report = build_dir / "report.json"
    if not report.exists():
        return None
    resources = json.loads(report.read_text())
    return {key: resources[key] for key in ("luts", "lutram", "flip_flops", "carry", "dsps", "bram36")}


def _axi_top_resources(axis_verilog: str, manifest: dict, family: str) -> dict:
    """Yosys on the AXI-Stream top alone, the accelerator a black box."""
    from ..hw.axi_stream_top import accelerator_blackbox
    from ..hw.synthesis import synthesize

    blackbox = accelerator_blackbox(manifest["top"], StreamFormat.from_dict(manifest["input"]).payload_bits,
                                    StreamFormat.from_dict(manifest["output"]).payload_bits)
    with tempfile.TemporaryDirectory(prefix="hbnn-axis-") as work:
        path = pathlib.Path(work) / "axis.v"
        path.write_text(axis_verilog + "\n" + blackbox)
        resources = synthesize(path, AXIS_TOP_NAME, family)
    return {key: value for key, value in resources.as_dict().items() if key != "cells"}


def _readme(board: Board, spec: dict) -> str:
    into, out = spec["input"], spec["output"]
    shape = ", ".join(map(str, into["image_shape"]))
    return f"""\
# hbnn accelerator for {board.name}

Written by `hbnn package` (hbnn {__version__}). Model: {spec['model']['name']}, {spec['model']['precision']}. Fabric clock {spec['clock_mhz']:g} MHz;
{spec['cycles']['interval']:,} cycles per image in the steady state ({spec['images_per_second']:,.0f} images/s at
that clock) and {spec['cycles']['latency']:,} cycles latency, by hbnn's cycle model (`hbnn sim` checks it against
Verilator).

## 1. Bitstream (Vivado, on a workstation)

    vivado -mode batch -source build_overlay.tcl

Needs Vivado 2020.2 to 2024.2 with the board files of {board.vivado_board} installed (PYNQ-Z1/Z2 and Ultra96 board
files come from their vendors; ZCU104 and KV260 from the Vivado Store). It makes the project in `vivado/`, a block
design with the {'Zynq-7000' if board.yosys_family == 'xc7' else 'Zynq UltraScale+'} processing system (board preset), an
AXI DMA ({8 * into['dma_bytes']}-bit streams, simple mode) on an HP port, and `hbnn_axis` (which instantiates
`hbnn_top`), then writes `hbnn.bit` and `hbnn.hwh` here, and Vivado's utilization and timing reports. **This script
was generated, not run: Vivado is not available where hbnn is built and tested.** Check the timing report: hbnn
does not close timing.

## 2. On the board (a PYNQ image, 2.7 or 3.x)

Copy this folder to the board (`hbnn.bit`, `hbnn.hwh`, `hbnn_driver.py`, `accelerator.json` are what it needs), then
in Python or a notebook there:

    import numpy as np
    from hbnn_driver import Accelerator
    accelerator = Accelerator.on_board(".")
    images = ...                           # uint8 pixels, shape (N, {shape}), as the dataset's files hold them
    labels = accelerator.predict(images)   # class indices
    scores = accelerator.scores(images)    # float32 scores, equal to the PyTorch model's on the same pixels
    print(accelerator.throughput(images), "images/s")

The driver turns pixels into the first layer's codes with a table hbnn computed from the model (x = pixel / 255,
then the training's normalization and the input quantizer), packs them into {into['image_bytes']}-byte frames per
image, sends up to {spec['max_batch_images']:,} images per DMA transfer, and reads {out['image_bytes']} bytes per image
back.

## What was checked where this was generated

hbnn's tests run this same driver against the AXI-Stream top co-simulated in Verilator (`hbnn.sim.axi_transport`),
with random TVALID gaps and TREADY stalls, batches of one and many images back to back: the scores equal PyTorch's
bit for bit and TLAST ends each batch. `verilator --lint-only -Wall` passes on both Verilog files.
"""


def package_build(build_dir, out_dir, *, board: str | None = None, synthesis: bool = True, log=print) -> dict:
    """Writes the deployment folder; returns its accelerator.json. Refuses a build for another part, and one
    compiled over its board's budget (--no-fit-check): it would not place."""
    build_dir, out_dir = pathlib.Path(build_dir), pathlib.Path(out_dir)
    manifest = read_manifest(build_dir)
    target = _target_board(manifest, build_dir, board, log)
    if not manifest["fits_board"]["fits"]:
        raise PackageError(f"{build_dir} does not fit {manifest['board']['name']} (compiled with --no-fit-check: "
                           f"{manifest['fits_board']['why_not']}); there is no bitstream to make of it")
    if manifest.get("qonnx"):
        raise PackageError(f"{build_dir} was compiled from a QONNX graph ({manifest['qonnx']['source']}): the PYNQ "
                           "driver's pixel codes and output scaling come from an hbnn checkpoint, and packaging "
                           "QONNX builds is not built yet (co-simulate it with hbnn sim; package an hbnn checkpoint)")
    if not manifest.get("checkpoint"):
        raise PackageError(f"{build_dir} has no checkpoint: the driver's pixel codes come from the model")
    if out_dir.resolve() == build_dir.resolve():
        raise PackageError("--out must be a folder of its own, not the build folder")
    if out_dir.exists() and not (out_dir / pynq_driver.SPEC_FILE).exists():
        raise PackageError(f"{out_dir} exists and is not an hbnn deployment folder; choose another --out")

    ps = processing_system(target)
    input_format = StreamFormat.from_dict(manifest["input"])
    output_format = StreamFormat.from_dict(manifest["output"])
    into, out = DmaLayout(input_format, ps.dma_bytes), DmaLayout(output_format, ps.dma_bytes)
    latency = manifest["cycles"]["latency"]
    interval = math.ceil(manifest["cycles"]["initiation_interval"])
    in_flight = -(-latency // interval) + IMAGES_IN_FLIGHT_SLACK
    top = AxiStreamTop(into, out, accelerator=manifest["top"], images_in_flight=in_flight,
                       clock_hz=round(target.clock_mhz * 1e6))
    files: dict[str, bytes] = {
        manifest["verilog"]: (build_dir / manifest["verilog"]).read_bytes(),
        AXIS_VERILOG: to_verilog(top, AXIS_TOP_NAME).encode(),
        DRIVER_FILE: pathlib.Path(pynq_driver.__file__).read_bytes(),
        TCL_FILE: vivado_script(target, clock_mhz=target.clock_mhz, verilog=[manifest["verilog"], AXIS_VERILOG],
                                top=AXIS_TOP_NAME).encode(),
    }
    model, meta = load_checkpoint(build_dir / CHECKPOINT)
    shape = image_shape(model, input_format)
    table = pixel_codes(model, meta, manifest["input"]["quantizer"]["layer"], shape)
    resources = {"accelerator": _accelerator_resources(build_dir),
                 "axi_top": _axi_top_resources(files[AXIS_VERILOG].decode(), manifest, target.yosys_family)
                 if synthesis else None,
                 "meaning": "Yosys synth_xilinx; accelerator: the build's `hbnn report` (null if it was not run); "
                            "axi_top: the AXI-Stream top alone, the accelerator a black box (null: not "
                            "synthesized, `hbnn package --no-synthesis`)"}
    spec = {
        "format": pynq_driver.SPEC_FORMAT, "version": pynq_driver.SPEC_VERSION, "hbnn_version": __version__,
        "board": target.name, "part": target.part, "clock_mhz": target.clock_mhz,
        "model": manifest["model"],
        "bitstream": "hbnn.bit",
        "verilog": {"top": AXIS_VERILOG, "accelerator": manifest["verilog"], "top_module": AXIS_TOP_NAME},
        "input": {**input_format.as_dict(), **into.as_dict(), "image_shape": list(shape),
                  "pixel_codes": table.tolist(),
                  "pixels": "uint8; x = pixel / 255, then the model's normalization and input quantizer"},
        "output": {**output_format.as_dict(), **out.as_dict(), "exponent": manifest["output"]["exponent"],
                   "divisor": manifest["output"]["divisor"], "classes": output_format.transfers * output_format.elements},
        "max_batch_images": ((1 << DMA_LENGTH_BITS) - 1) // max(into.image_bytes, out.image_bytes),
        "images_in_flight": in_flight,
        "cycles": {"latency": latency, "interval": interval},
        "images_per_second": target.clock_mhz * 1e6 / interval,
        "resources": resources,
    }
    spec["files"] = {name: _sha256(data) for name, data in sorted(files.items())}
    files[pynq_driver.SPEC_FILE] = (json.dumps(spec, indent=2) + "\n").encode()
    files["README.md"] = _readme(target, spec).encode()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return spec
