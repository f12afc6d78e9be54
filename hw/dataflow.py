"""A dataflow accelerator: stage components chained by valid/ready streams, and its exact undisturbed timing.

Stages connect o_stream to i_stream, e.g. Mvau -> MultiThreshold -> WidthConverter -> Mvau; every stage registers
its output valid (a converter between equal counts is wires), so the only combinational path through a chain is the
ready path from the sink back to the source.
`chain_timing` steps the stages' handshake models (hbnn.hw.handshake) instead of adding their latencies, which is
not exact: stages overlap, and a splitting converter back-pressures its producer within an image.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .handshake import Chained, HandshakeModel, Handshakes, schedule

__all__ = ["Dataflow", "ChainTiming", "chain_timing", "image_transfers", "ImageEnd", "image_ends", "model_state",
           "stream_images"]


def _describe(index: int, stage) -> str:
    return f"stage {index} ({type(stage).__name__})"


class Dataflow(wiring.Component):
    def __init__(self, stages: Sequence[wiring.Component]):
        stages = tuple(stages)
        try:
            self._check(stages)
        except ValueError:
            self._MustUse__silence = True  # a component that failed to construct is not an unused design
            raise
        self._stages = stages
        super().__init__({
            "i_stream": In(stages[0].signature.members["i_stream"].signature.flip()),
            "o_stream": Out(stages[-1].signature.members["o_stream"].signature),
        })

    @staticmethod
    def _check(stages):
        if not stages:
            raise ValueError("a dataflow needs at least one stage")
        for index, (upstream, downstream) in enumerate(zip(stages, stages[1:])):
            produced = upstream.signature.members["o_stream"].signature
            consumed = downstream.signature.members["i_stream"].signature.flip()  # an In member reads flipped
            if produced != consumed:
                raise ValueError(f"{_describe(index, upstream)} produces {produced!r}, but "
                                 f"{_describe(index + 1, downstream)} consumes {consumed!r}")

    @property
    def stages(self) -> tuple[wiring.Component, ...]:
        return self._stages

    def handshake_model(self) -> Chained:
        """A fresh cycle-level model of the whole chain's stream protocol."""
        return Chained([stage.handshake_model() for stage in self._stages])

    def elaborate(self, platform) -> Module:
        m = Module()
        for index, stage in enumerate(self._stages):
            m.submodules[f"stage{index}"] = stage
        wiring.connect(m, wiring.flipped(self.i_stream), self._stages[0].i_stream)
        for upstream, downstream in zip(self._stages, self._stages[1:]):
            wiring.connect(m, upstream.o_stream, downstream.i_stream)
        wiring.connect(m, self._stages[-1].o_stream, wiring.flipped(self.o_stream))
        return m


def _elements(index: int, stage, name: str) -> int:
    layout = stage.signature.members[name].signature.members["payload"].shape
    if not isinstance(layout, data.ArrayLayout):
        raise TypeError(f"{_describe(index, stage)}: {name} carries {layout!r}, not an ArrayLayout of elements")
    return layout.length


def image_transfers(stages: Sequence[wiring.Component], input_transfers: int | None = None) -> list[tuple[int, int]]:
    """(input, output) transfers per image of each stage. A stage with `input_format`/`output_format` (Mvau) states
    its own; any other stage (MultiThreshold, WidthConverter) keeps the image's elements and only regroups them.
    The first stage's input transfers come from its input_format, or `input_transfers` where it has none."""
    counts = []
    arriving = input_transfers
    for index, stage in enumerate(stages):
        stated = getattr(stage, "input_format", None)
        if stated is not None:
            if arriving is not None and arriving != stated.transfers:
                raise ValueError(f"{_describe(index, stage)} takes {stated.transfers} transfers per image, "
                                 f"not the {arriving} that arrive")
            counts.append((stated.transfers, stage.output_format.transfers))
        elif arriving is None:
            raise ValueError(f"{_describe(index, stage)} does not state its transfers per image: "
                             f"give input_transfers")
        else:
            elements, width = arriving * _elements(index, stage, "i_stream"), _elements(index, stage, "o_stream")
            if elements % width:
                raise ValueError(f"{_describe(index, stage)} cannot regroup an image of {elements} elements into "
                                 f"whole transfers of {width}")
            counts.append((arriving, elements // width))
        arriving = counts[-1][1]
    return counts


@dataclass(frozen=True)
class ChainTiming:
    """A chain streaming undisturbed (source always valid, sink always ready), measured as
    hbnn.sim.design.measure_timing measures a co-simulation."""
    latency: int  # first input handshake of image 0 to its last output handshake
    interval_spread: tuple[int, int]  # smallest and largest gap between consecutive images' last output handshakes
    input_cycles: tuple[int, ...]  # every input handshake
    output_cycles: tuple[int, ...]  # every output handshake
    input_transfers: int  # per image
    output_transfers: int  # per image

    @property
    def initiation_interval(self) -> int:
        return self.interval_spread[1]


def chain_timing(stages: Sequence[wiring.Component], images: int, *,
                 input_transfers: int | None = None) -> ChainTiming:
    """The undisturbed schedule of `images` images through the stages, chained (see image_transfers)."""
    stages = tuple(stages)
    if not isinstance(images, int) or isinstance(images, bool) or images < 1:
        raise ValueError(f"images must be a positive integer, not {images!r}")
    counts = image_transfers(stages, input_transfers)
    first, last = counts[0][0], counts[-1][1]
    # Generous: every image through every stage one after another, nothing overlapping.
    bound = (images + 1) * sum(getattr(stage, "latency", 0) + ins + outs + 1
                               for stage, (ins, outs) in zip(stages, counts)) + 16
    run = schedule([stage.handshake_model() for stage in stages], images * first, bound, outputs=images * last)
    if len(run.outputs) < images * last:
        raise RuntimeError(f"the chain gave {len(run.outputs)} of {images * last} output transfers in {bound} "
                           f"cycles: a handshake model deadlocked")
    ends = run.outputs[last - 1::last]
    starts = run.inputs[::first]
    gaps = [later - earlier for earlier, later in zip(ends, ends[1:])]
    return ChainTiming(ends[0] - starts[0], (min(gaps), max(gaps)) if gaps else (0, 0), run.inputs, run.outputs,
                       first, last)



@dataclass(frozen=True)
class ImageEnd:
    """One image of an endless undisturbed stream (source always valid, sink always ready)."""
    image: int
    cycle: int  # its last output handshake, counted from image 0's first input handshake
    repeats: int | None  # an earlier image whose end left the chain in the same state, if any


def model_state(models: Sequence) -> tuple:
    """Every model's state as one hashable value (a fork's per-reader flags are a list; a chained model, such as a
    width converter's split-then-gather, holds its members); a model's RECORDS are not state."""
    def value_of(value):
        if isinstance(value, list):
            return tuple(value)
        if isinstance(value, tuple) and value and isinstance(value[0], HandshakeModel):
            return model_state(value)
        return value
    return tuple(tuple(value_of(value) for name, value in vars(model).items()
                       if name not in getattr(model, "RECORDS", ())) for model in models)


def image_ends(run_image: Callable[[], Handshakes], models: Sequence, outputs: int,
               what: str) -> Iterator[ImageEnd]:
    """Image by image without end: run_image() steps the models from their present state until `outputs` output
    handshakes (one image; the source never runs dry). Yields each image's last output cycle, counted from image
    0's first input handshake, and the earlier image whose end state (every model's) this one's equals: the design
    is deterministic and its inputs do not change, so from that image on every gap provably repeats."""
    seen: dict[tuple, int] = {}
    start = elapsed = 0
    image = 0
    while True:
        run = run_image()
        if len(run.outputs) < outputs:
            raise RuntimeError(f"the {what} gave {len(run.outputs)} of {outputs} output transfers of image {image} in "
                               f"{run.cycles} cycles: a handshake model deadlocked")
        if image == 0:
            start = run.inputs[0]
        state = model_state(models)
        yield ImageEnd(image, elapsed + run.outputs[-1] - start, seen.get(state))
        seen.setdefault(state, image)
        elapsed += run.cycles
        image += 1


def stream_images(stages: Sequence[wiring.Component]) -> Iterator[ImageEnd]:
    """Steps the stages' handshake models image by image, without end, yielding each image's end (image_ends).
    Chains with stages of nearly equal rates can take many images to repeat a state, while their gaps settle long
    before."""
    stages = tuple(stages)
    counts = image_transfers(stages)
    first, last = counts[0][0], counts[-1][1]
    models = Chained([stage.handshake_model() for stage in stages]).models
    # Generous per image: every stage one after another, nothing overlapping.
    bound = sum(getattr(stage, "latency", 0) + ins + outs + 1 for stage, (ins, outs) in zip(stages, counts)) + 16
    return image_ends(lambda: schedule(models, first * (bound + 1), 2 * bound, outputs=last), models, last, "chain")
