"""hbnn's PYNQ driver: images in, class scores out, through the accelerator's AXI DMA.

This file is copied as it is into every deployment folder (`hbnn package`) and runs on the board's Python with
numpy and pynq only; it does not import hbnn. It reads `accelerator.json` beside it, which `hbnn package` wrote
from the build.

    from hbnn_driver import Accelerator
    accelerator = Accelerator.on_board("deploy")          # loads deploy/hbnn.bit (and hbnn.hwh) with pynq
    scores = accelerator.scores(images)                    # uint8 pixels, (N, C, H, W) or (N, H, W) or (N, F)
    labels = accelerator.predict(images)
    accelerator.throughput(images)                         # images/s over the DMA, batches back to back

Three parts, kept apart so that hbnn's tests run this same driver against the simulated accelerator:
- `Frames` packs input codes into the DMA byte frames and unpacks output frames (the frame is hbnn.hw.dma_layout's:
  each transfer's payload in the low bits of `transfer_bytes` little-endian bytes, each image padded to whole DMA
  words);
- `Accelerator` turns pixels into the first layer's codes (`pixel_codes`: for each channel, the code of each of
  the 256 pixel values, which hbnn computed with the model's own input quantizer, so the lookup is exact), cuts
  batches, and turns output codes into the float32 scores PyTorch gives (code * 2**exponent / divisor, rounded
  once, as hbnn.compiler.float_ops.to_float32);
- a transport moves one batch of bytes: `PynqDma` on the board; hbnn.sim.axi_transport.SimulatedDma in
  Verilator.
"""
from __future__ import annotations

import json
import pathlib
import time

import numpy as np

__all__ = ["Frames", "Accelerator", "PynqDma", "SPEC_FILE"]

SPEC_FILE = "accelerator.json"
SPEC_FORMAT = "hbnn-accelerator"
SPEC_VERSION = 1


class Frames:
    """One stream's DMA frames: (images, transfers, elements) integer codes <-> uint8 bytes.

    The element bits follow hbnn.hw.layout.StreamFormat's rule, written again here because this file runs on the
    board without hbnn; tests/hw/test_dma_layout.py holds the two equal."""

    def __init__(self, spec: dict):
        self.kind = spec["kind"]  # "bipolar", "signed" or "unsigned"
        self.elements, self.element_bits, self.transfers = spec["elements"], spec["element_bits"], spec["transfers"]
        self.transfer_bytes, self.dma_bytes = spec["transfer_bytes"], spec["dma_bytes"]
        self.image_bytes = spec["image_words"] * self.dma_bytes
        self.payload_bits = self.elements * self.element_bits

    def pack(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 3 or codes.shape[1:] != (self.transfers, self.elements):
            raise ValueError(f"expected codes of shape (images, {self.transfers}, {self.elements}), not "
                             f"{codes.shape}")
        if self.kind == "bipolar":
            if not np.isin(codes, (-1, 1)).all():
                raise ValueError("bipolar codes must be -1 or +1")
            codes = (codes > 0).astype(np.int64)
        else:
            low, high = ((-(1 << (self.element_bits - 1)), (1 << (self.element_bits - 1)) - 1)
                         if self.kind == "signed" else (0, (1 << self.element_bits) - 1))
            if codes.size and (codes.min() < low or codes.max() > high):
                raise ValueError(f"{self.kind} {self.element_bits}-bit codes must lie in {low}..{high}")
            codes = codes & ((1 << self.element_bits) - 1)
        images = len(codes)
        bits = ((codes[..., None] >> np.arange(self.element_bits)) & 1).astype(np.uint8)
        transfers = np.zeros((images, self.transfers, self.transfer_bytes * 8), dtype=np.uint8)
        transfers[..., :self.payload_bits] = bits.reshape(images, self.transfers, self.payload_bits)
        frames = np.zeros((images, self.image_bytes), dtype=np.uint8)
        packed = np.packbits(transfers, axis=-1, bitorder="little").reshape(images, -1)
        frames[:, :packed.shape[1]] = packed
        return frames.reshape(-1)

    def unpack(self, data: np.ndarray) -> np.ndarray:
        data = np.asarray(data, dtype=np.uint8).reshape(-1)
        if data.size % self.image_bytes:
            raise ValueError(f"{data.size} bytes are not whole frames of {self.image_bytes}")
        frames = data.reshape(-1, self.image_bytes)
        images = len(frames)
        transfers = frames[:, :self.transfers * self.transfer_bytes].reshape(images, self.transfers, -1)
        bits = np.unpackbits(transfers, axis=-1, bitorder="little")[..., :self.payload_bits]
        bits = bits.reshape(images, self.transfers, self.elements, self.element_bits).astype(np.int64)
        codes = (bits << np.arange(self.element_bits)).sum(axis=-1)
        if self.kind == "bipolar":
            return np.where(codes == 1, 1, -1)
        if self.kind == "signed":
            return np.where(codes >> (self.element_bits - 1), codes - (1 << self.element_bits), codes)
        return codes


class Accelerator:
    """The accelerator described by `spec` (accelerator.json), reached through `transport`."""

    def __init__(self, spec: dict, transport, *, batch_images: int | None = None):
        if spec.get("format") != SPEC_FORMAT or spec.get("version") != SPEC_VERSION:
            raise ValueError(f"not an {SPEC_FORMAT} version {SPEC_VERSION} description: format "
                             f"{spec.get('format')!r}, version {spec.get('version')!r}")
        self.spec = spec
        self.transport = transport
        self.input, self.output = Frames(spec["input"]), Frames(spec["output"])
        self.image_shape = tuple(spec["input"]["image_shape"])  # (C, H, W), or (F,) for a flat input
        self.pixel_codes = np.asarray(spec["input"]["pixel_codes"], dtype=np.int64)  # (C, 256)
        self.batch_images = batch_images or spec["max_batch_images"]
        if not 1 <= self.batch_images <= spec["max_batch_images"]:
            raise ValueError(f"batch_images must be 1..{spec['max_batch_images']} (the DMA's largest transfer), "
                             f"not {self.batch_images}")

    @classmethod
    def from_folder(cls, folder, transport, **options) -> Accelerator:
        return cls(json.loads((pathlib.Path(folder) / SPEC_FILE).read_text()), transport, **options)

    @classmethod
    def on_board(cls, folder, **options) -> Accelerator:
        """Loads the folder's bitstream onto the board with pynq."""
        return cls.from_folder(folder, PynqDma(pathlib.Path(folder) / cls._bitstream(folder)), **options)

    @staticmethod
    def _bitstream(folder) -> str:
        return json.loads((pathlib.Path(folder) / SPEC_FILE).read_text())["bitstream"]

    # Pixels -> codes -> frames.
    def _check_images(self, images) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8 pixels (0..255, as the dataset's files hold them), not "
                            f"{images.dtype}")
        shape = self.image_shape
        size = int(np.prod(shape))
        accepted = [shape]
        if len(shape) == 3 and shape[0] == 1:
            accepted.append(shape[1:])  # a grey image without its channel axis
        side = int(round(size ** 0.5))
        if len(shape) == 1 and side * side == size:
            accepted.append((side, side))
        if len(shape) == 3:
            accepted.append((size,))  # a dataset row: the image flattened, channel by channel
        if images.ndim < 2 or images.shape[1:] not in accepted:
            raise ValueError("images must have shape " + " or ".join(
                f"(N, {', '.join(map(str, option))})" for option in accepted) + f", not {images.shape}")
        return images.reshape((len(images),) + shape)

    def input_codes(self, images) -> np.ndarray:
        """The first layer's codes, (N, transfers, elements) in the stream's order: pixels in raster order,
        channels fastest."""
        images = self._check_images(images)
        if images.ndim == 4:  # (N, C, H, W) -> (N, H, W, C)
            codes = self.pixel_codes[np.arange(images.shape[1])[None, :, None, None], images]
            codes = codes.transpose(0, 2, 3, 1)
        else:
            codes = self.pixel_codes[0][images]
        return codes.reshape(len(images), self.input.transfers, self.input.elements)

    def scores(self, images) -> np.ndarray:
        """Class scores (N, classes), float32, as PyTorch computes them from the same pixels."""
        codes = self.input_codes(images)
        batches = [codes[start:start + self.batch_images] for start in range(0, len(codes), self.batch_images)]
        outputs = self.transport.run_batches([(self.input.pack(batch), len(batch) * self.output.image_bytes)
                                              for batch in batches])
        out = np.concatenate([self.output.unpack(data) for data in outputs]).reshape(len(codes), -1)
        exponent, divisor = self.spec["output"]["exponent"], self.spec["output"]["divisor"]
        values = out.astype(np.float64) * np.ldexp(1.0, exponent)
        if divisor != 1:
            values = values / np.float64(divisor)
        return values.astype(np.float32)

    def predict(self, images) -> np.ndarray:
        return self.scores(images).argmax(axis=1)

    def throughput(self, images, repeats: int = 10) -> float:
        """Images per second through the DMA, the batches of `images` sent `repeats` times (packing excluded)."""
        codes = self.input_codes(images)
        batches = [(self.input.pack(codes[start:start + self.batch_images]),
                    len(codes[start:start + self.batch_images]) * self.output.image_bytes)
                   for start in range(0, len(codes), self.batch_images)]
        started = time.perf_counter()
        for _ in range(repeats):
            self.transport.run_batches(batches)
        return repeats * len(codes) / (time.perf_counter() - started)


class PynqDma:
    """The board: the overlay's AXI DMA ('dma' in the block design) moves each batch in one transfer per
    direction, buffers from pynq.allocate (contiguous memory the DMA can reach)."""

    def __init__(self, bitstream):
        from pynq import Overlay  # only on the board

        self.overlay = Overlay(str(bitstream))
        self.dma = self.overlay.dma
        self._buffers = {}

    def _buffer(self, role: str, size: int):
        from pynq import allocate

        buffer = self._buffers.get(role)
        if buffer is None or buffer.shape[0] != size:
            if buffer is not None:
                buffer.freebuffer()
            buffer = self._buffers[role] = allocate(shape=(size,), dtype=np.uint8)
        return buffer

    def run_batches(self, batches) -> list[np.ndarray]:
        outputs = []
        for data, output_bytes in batches:
            sent, received = self._buffer("in", data.size), self._buffer("out", output_bytes)
            sent[:] = data
            sent.flush()
            self.dma.recvchannel.transfer(received)  # armed first: the accelerator may answer at once
            self.dma.sendchannel.transfer(sent)
            self.dma.sendchannel.wait()
            self.dma.recvchannel.wait()
            received.invalidate()
            outputs.append(np.array(received))
        return outputs
