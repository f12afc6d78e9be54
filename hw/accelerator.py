"""The accelerator top: layers chained by valid/ready streams, one input stream and one output stream."""
from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    def __init__(self, layers: Sequence[wiring.Component]):
        layers = list(layers)
        if not layers:
            raise ValueError("an accelerator needs at least one layer")
        for upstream, downstream in zip(layers, layers[1:]):
            produced = upstream.signature.members["o_stream"].signature
            consumed = downstream.signature.members["i_stream"].signature.flip()  # an In member reads flipped
            if produced != consumed:
                raise ValueError(f"layer streams do not match: {produced!r} feeds {consumed!r}")
        self._layers = layers
        super().__init__({
            "i_stream": In(layers[0].signature.members["i_stream"].signature.flip()),
            "o_stream": Out(layers[-1].signature.members["o_stream"].signature),
        })

    @property
    def layers(self) -> tuple[wiring.Component, ...]:
        return tuple(self._layers)

    def elaborate(self, platform) -> Module:
        m = Module()
        for index, layer in enumerate(self._layers):
            m.submodules[f"layer{index}"] = layer
        wiring.connect(m, wiring.flipped(self.i_stream), self._layers[0].i_stream)
        for upstream, downstream in zip(self._layers, self._layers[1:]):
            wiring.connect(m, upstream.o_stream, downstream.i_stream)
        wiring.connect(m, self._layers[-1].o_stream, wiring.flipped(self.o_stream))
        return m
