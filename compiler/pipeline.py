"""The compile pipeline: an explicit tuple of IR -> IR passes, the graph checked after each."""
from __future__ import annotations

import functools
from collections.abc import Mapping

import torch

from .check import check_graph
from .ir import Folding, Graph
from .lower import lower_model
from .passes.fold_thresholds import fold_thresholds, merge_equal_thresholds
from .passes.quantize_early import quantize_early
from .passes.set_folding import DEFAULT_TARGET_CYCLES, set_folding

__all__ = ["compile_graph", "compile_model", "passes"]


def passes(folding: Mapping[str, Folding] | None = None, target_cycles: int = DEFAULT_TARGET_CYCLES,
           dsp_budget: int | None = None, lut_budget: int | None = None, bram_budget: float | None = None) -> tuple:
    return (quantize_early, fold_thresholds, merge_equal_thresholds,
            functools.partial(set_folding, overrides=folding, target_cycles=target_cycles, dsp_budget=dsp_budget,
                              lut_budget=lut_budget, bram_budget=bram_budget))


def compile_graph(graph: Graph, folding: Mapping[str, Folding] | None = None,
                  target_cycles: int = DEFAULT_TARGET_CYCLES, dsp_budget: int | None = None,
                  lut_budget: int | None = None, bram_budget: float | None = None) -> Graph:
    for compiler_pass in passes(folding, target_cycles, dsp_budget, lut_budget, bram_budget):
        graph = compiler_pass(graph)
        check_graph(graph)
    return graph


def compile_model(model: torch.nn.Module, folding: Mapping[str, Folding] | None = None,
                  target_cycles: int = DEFAULT_TARGET_CYCLES, dsp_budget: int | None = None,
                  lut_budget: int | None = None, bram_budget: float | None = None) -> Graph:
    return compile_graph(lower_model(model), folding, target_cycles, dsp_budget, lut_budget, bram_budget)
