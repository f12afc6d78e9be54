"""The PYNQ driver's transport in simulation: batches of DMA bytes through the verilated AXI-Stream top.

`SimulatedDma.run_batches` does what the board's AXI DMA does with the same byte buffers: the memory-to-stream side
sends each batch as DMA words with TLAST on its last, the stream-to-memory side takes words until TLAST. All the
batches of a call stream back to back in one simulation, with the flow control's random TVALID gaps and TREADY
stalls. A TLAST anywhere but on a batch's last output word (where a DMA would end the transfer early, or never) is
an error naming the word.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np

from ..boards.pynq_driver import SPEC_FILE
from ..hw.axi_stream_top import AXIS_TOP_NAME
from ..hw.layout import StreamFormat
from .flow_control import FlowControl, cycle_budget
from .stimulus import Stimulus
from .transcript import CosimError
from .verilator_engine import build_driver, run_driver

__all__ = ["SimulatedDma", "AXIS_DRIVER_DEFINES", "tlast_error", "pixels_of", "check_deployment"]

AXIS_DRIVER_DEFINES = {
    "I_VALID": "s_axis_tvalid", "I_READY": "s_axis_tready", "I_PAYLOAD": "s_axis_tdata", "I_LAST": "s_axis_tlast",
    "O_VALID": "m_axis_tvalid", "O_READY": "m_axis_tready", "O_PAYLOAD": "m_axis_tdata", "O_LAST": "m_axis_tlast",
    "CLOCK": "ap_clk", "RESET": "ap_rst_n", "RESET_ACTIVE": "0",
}


def _word_format(dma_bytes: int, image_words: int) -> StreamFormat:
    """A DMA word as the driver files carry it: its 32-bit words, then one word holding TLAST."""
    return StreamFormat("unsigned", dma_bytes // 4 + 1, 32, image_words)


def tlast_error(tlast: np.ndarray, batch_words: list[int]) -> str | None:
    """What is wrong with the output words' TLAST flags for batches of `batch_words` words, or None."""
    ends = np.cumsum(batch_words) - 1
    wrong = np.flatnonzero(np.asarray(tlast) != np.isin(np.arange(len(tlast)), ends))
    if not wrong.size:
        return None
    word = int(wrong[0])
    return (f"TLAST is {int(tlast[word])} on output word {word}, where a batch {'ends' if word in ends else 'goes on'}"
            f" (batches end at words {ends.tolist()})")


class SimulatedDma:
    """folder: a deployment folder (hbnn package), with the AXI-Stream top's and the accelerator's Verilog."""

    def __init__(self, folder, flow: FlowControl = FlowControl(), *, progress: bool = False):
        self.folder = pathlib.Path(folder)
        self.spec = json.loads((self.folder / SPEC_FILE).read_text())
        self.flow, self.progress = flow, progress
        self.runs = 0
        self.last_run = None  # the StreamRun of the latest call, for cycle counts

    def _executable(self) -> pathlib.Path:
        files = self.spec["verilog"]
        return build_driver(self.folder / files["top"], AXIS_TOP_NAME, self.folder / "sim",
                            libraries=[self.folder / files["accelerator"]], driver_defines=AXIS_DRIVER_DEFINES)

    def run_batches(self, batches) -> list[np.ndarray]:
        into, out = self.spec["input"], self.spec["output"]
        in_bytes, out_bytes = into["image_words"] * into["dma_bytes"], out["image_words"] * out["dma_bytes"]
        words, images, expected = [], 0, []
        for index, (data, output_bytes) in enumerate(batches):
            data = np.ascontiguousarray(np.asarray(data, dtype=np.uint8).reshape(-1))
            if data.size == 0 or data.size % in_bytes:
                raise ValueError(f"batch {index}: {data.size} bytes are not whole input frames of {in_bytes} bytes")
            count = data.size // in_bytes
            if output_bytes != count * out_bytes:
                raise ValueError(f"batch {index}: {count} images give {count * out_bytes} output bytes, not "
                                 f"{output_bytes}")
            batch = np.zeros((data.size // into["dma_bytes"], into["dma_bytes"] // 4 + 1), dtype="<u4")
            batch[:, :-1] = data.view("<u4").reshape(len(batch), -1)
            batch[-1, -1] = 1  # the DMA's TLAST
            words.append(batch)
            images += count
            expected.append(count * out["image_words"])
        input_format = _word_format(into["dma_bytes"], into["image_words"])
        output_format = _word_format(out["dma_bytes"], out["image_words"])
        stimulus = Stimulus(input_format, output_format, np.concatenate(words), images)
        cycles = self.spec["cycles"]
        budget = cycle_budget(cycles["latency"] + 2 * (into["image_words"] + out["image_words"]),
                              max(cycles["interval"], into["image_words"], out["image_words"]), images,
                              max(into["image_words"], out["image_words"]), self.flow)
        name = f"axi-{self.runs}"
        self.runs += 1
        run = run_driver(self._executable(), stimulus, self.flow, budget, directory=self.folder / "sim" / "runs",
                         name=name, label=f"{self.folder}: AXI-Stream run '{name}'", progress=self.progress)
        self.last_run = run
        received = np.asarray(run.outputs, dtype="<u4").reshape(-1, output_format.words)
        error = tlast_error(received[:, -1] & 1, expected)
        if error:
            raise CosimError(f"{self.folder}: {error}")
        data = np.ascontiguousarray(received[:, :-1]).view(np.uint8).reshape(-1)
        starts = np.concatenate([[0], np.cumsum(expected)[:-1]]) * out["dma_bytes"]
        return [data[start:start + count * out["dma_bytes"]] for start, count in zip(starts, expected)]



def pixels_of(x) -> np.ndarray:
    """Dataset rows (floats x = pixel / 255) back to the uint8 pixels the board's driver takes."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float32) * np.float32(255.0)), 0, 255).astype(np.uint8)


def check_deployment(folder, checkpoint, pixels: np.ndarray, labels=None, *,
                     flows: tuple[FlowControl, ...] = (FlowControl(),), batch_images: int | None = None) -> dict:
    """Runs the deployment's own driver (hbnn_driver.py's classes) on the simulated accelerator, once per flow
    control, and compares its scores with the PyTorch model's on the same pixels: the board's path, end to end, but
    for the silicon. The first flow's run also gives the interval through the top: the steady gap between images'
    last output words (meaningful when that flow is undisturbed)."""
    import torch

    from ..boards.pynq_driver import Accelerator
    from ..quant.checkpoint import load_checkpoint
    from .verify import host_inputs, torch_outputs

    model, meta = load_checkpoint(checkpoint)
    runs = []
    for flow in flows:
        accelerator = Accelerator.from_folder(folder, SimulatedDma(folder, flow), batch_images=batch_images)
        runs.append((accelerator.scores(pixels), accelerator.transport.last_run))
    x = torch.from_numpy(pixels.reshape((len(pixels),) + accelerator.image_shape).astype(np.float32)
                         / np.float32(255.0))
    expected = torch_outputs(model, host_inputs(model, meta, x))
    words = accelerator.spec["output"]["image_words"]
    image_ends = np.asarray(runs[0][1].output_cycles)[words - 1::words]
    result = {"images": int(len(pixels)), "runs": len(runs), "outputs_compared": int(sum(s.size for s, _ in runs)),
              "mismatches": int(sum((scores != expected).sum() for scores, _ in runs)),
              "cycles": [int(run.cycles) for _, run in runs],
              "interval": int(np.diff(image_ends)[-1]) if len(image_ends) > 1 else None}
    if labels is not None:
        labels = np.asarray(labels)
        result["torch_accuracy"] = float((expected.argmax(axis=1) == labels).mean())
        result["driver_accuracy"] = float((runs[0][0].argmax(axis=1) == labels).mean())
    return result
