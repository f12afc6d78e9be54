"""Analytical cycle model of the generated accelerator (read-only analysis).

Each XnorPopcount layer reads one weight word per cycle: (MH/PE) * (MW/SIMD) cycles per image. Around that, a layer
has a fixed pipeline of LAYER_PIPELINE_DEPTH cycles: one to latch the input vector, one for the data stage that
takes the weight word from the memory's registered read port, XNORs, popcounts and accumulates. So for an image
whose input handshake happens at cycle a, the layer's output is valid (and the next layer's handshake happens) at
a + cycles + 2. A layer accepts its next input in the cycle it issues its last weight word, so with no back-pressure
images stream one per max(layer cycles).
"""
from __future__ import annotations

from dataclasses import dataclass

from .check import hardware_layers
from .ir import Graph

__all__ = ["LAYER_PIPELINE_DEPTH", "LayerCycles", "CycleEstimate", "estimate_cycles"]

LAYER_PIPELINE_DEPTH = 2


@dataclass(frozen=True)
class LayerCycles:
    name: str
    neuron_folds: int  # MH / PE
    synapse_folds: int  # MW / SIMD

    @property
    def cycles(self) -> int:
        return self.neuron_folds * self.synapse_folds


@dataclass(frozen=True)
class CycleEstimate:
    layers: tuple[LayerCycles, ...]
    latency: int  # cycles from an image's input handshake to its output handshake, pipeline empty
    initiation_interval: int  # cycles between consecutive outputs when images stream back to back

    def as_dict(self) -> dict:
        return {"latency": self.latency, "initiation_interval": self.initiation_interval,
                "pipeline_depth_per_layer": LAYER_PIPELINE_DEPTH,
                "layers": [{"name": l.name, "neuron_folds": l.neuron_folds, "synapse_folds": l.synapse_folds,
                            "cycles": l.cycles} for l in self.layers]}


def estimate_cycles(graph: Graph) -> CycleEstimate:
    layers = [LayerCycles(node.name, node.out_features // node.folding.pe, node.in_features // node.folding.simd)
              for node in hardware_layers(graph)]
    latency = sum(layer.cycles + LAYER_PIPELINE_DEPTH for layer in layers)
    return CycleEstimate(tuple(layers), latency, max(layer.cycles for layer in layers))
