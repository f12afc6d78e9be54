"""How an image travels in DMA words: the byte frame between the host's memory and the accelerator's stream.

A DMA word is `dma_bytes` bytes (8 on a Zynq-7000 HP port, 16 on Zynq UltraScale+). Each transfer of the
accelerator's stream (its `StreamFormat`) occupies `transfer_bytes` bytes, its payload in the low bits, little
endian, the rest zero. `transfer_bytes` is the payload's bytes rounded up so that it divides the DMA word (a power
of two below it) or the DMA word divides it (a multiple above it): then the AXI-Stream top regroups words and
transfers with one plain width converter at a word or a transfer per cycle, never by a common divisor. An image is
its transfers one after the other, padded with zero bytes to whole DMA words, so every image starts a word.

The AXI-Stream top (hbnn.hw.axi_stream_top), the packaging (hbnn.boards.package, which writes these numbers into
the deployment manifest) and the PYNQ driver (which reads them there) all take the frame from this one class.
"""
from __future__ import annotations

from dataclasses import dataclass

from .layout import StreamFormat

__all__ = ["DmaLayout"]


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


@dataclass(frozen=True)
class DmaLayout:
    stream: StreamFormat
    dma_bytes: int

    def __post_init__(self):
        if not isinstance(self.dma_bytes, int) or not _power_of_two(self.dma_bytes):
            raise ValueError(f"a DMA word must be a power of two bytes, not {self.dma_bytes!r}")

    @property
    def payload_bytes(self) -> int:
        return -(-self.stream.payload_bits // 8)

    @property
    def transfer_bytes(self) -> int:
        if self.payload_bytes <= self.dma_bytes:
            return 1 << (self.payload_bytes - 1).bit_length()
        return -(-self.payload_bytes // self.dma_bytes) * self.dma_bytes

    @property
    def transfers_per_word(self) -> int:
        """Transfers in one DMA word (1 when a transfer takes one word or more)."""
        return max(1, self.dma_bytes // self.transfer_bytes)

    @property
    def words_per_transfer(self) -> int:
        """DMA words one transfer takes (1 when a word holds one transfer or more)."""
        return max(1, self.transfer_bytes // self.dma_bytes)

    @property
    def image_words(self) -> int:
        """DMA words per image, the last one padded."""
        return -(-self.stream.transfers * self.words_per_transfer // self.transfers_per_word)

    @property
    def image_bytes(self) -> int:
        return self.image_words * self.dma_bytes

    @property
    def pad_transfers(self) -> int:
        """Zero transfers after an image's last one, up to its last word's end."""
        return self.image_words * self.transfers_per_word // self.words_per_transfer - self.stream.transfers

    def as_dict(self) -> dict:
        return {"dma_bytes": self.dma_bytes, "transfer_bytes": self.transfer_bytes,
                "payload_bits": self.stream.payload_bits, "transfers": self.stream.transfers,
                "image_words": self.image_words, "image_bytes": self.image_bytes}
