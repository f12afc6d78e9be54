"""The packed input transfers of a run, checked against the build they are meant for."""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from ..hw.layout import StreamFormat

__all__ = ["Stimulus"]


@dataclass(frozen=True, eq=False)
class Stimulus:
    input: StreamFormat
    output: StreamFormat
    words: np.ndarray  # (images * input.transfers, input.words) uint32, in stream order
    images: int

    @classmethod
    def from_frames(cls, frames, input: StreamFormat, output: StreamFormat, *, build: str) -> Stimulus:
        """frames: (images, transfers, elements) as the build's input stream carries them.

        A stimulus whose frame shape or element values do not fit the build is refused with both shapes named.
        """
        frames = np.asarray(frames)
        expected = input.frame_shape
        if frames.ndim != 3 or frames.shape[1:] != expected or frames.shape[0] < 1:
            given = frames.shape[1:] if frames.ndim == 3 else frames.shape
            raise ValueError(f"build {build} takes images of shape (transfers, elements) = {expected} "
                             f"({input.describe()}); the stimulus has shape {tuple(given)}"
                             + ("" if frames.ndim == 3 else " (expected a 3-D array: images, transfers, elements)"))
        try:
            words = input.pack(frames.reshape(-1, input.elements))
        except ValueError as error:
            raise ValueError(f"build {build}: the stimulus does not fit its input stream ({input.describe()}): "
                             f"{error}") from None
        return cls(input, output, words, frames.shape[0])

    @property
    def input_transfers(self) -> int:
        return self.images * self.input.transfers

    @property
    def output_transfers(self) -> int:
        return self.images * self.output.transfers

    def head(self, images: int) -> Stimulus:
        """The first `images` images."""
        images = min(images, self.images)
        return Stimulus(self.input, self.output, self.words[:images * self.input.transfers], images)

    def write(self, path: pathlib.Path) -> None:
        path.write_bytes(np.ascontiguousarray(self.words, dtype="<u4").tobytes())
