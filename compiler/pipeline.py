"""The compile pipeline: an explicit tuple of IR -> IR passes, checked after each."""
from __future__ import annotations

from collections.abc import Mapping

import torch

from .check import check_graph
from .convert_to_xnor_popcount import convert_to_xnor_popcount
from .fold_batchnorm import fold_batchnorm_sign
from .ir import Folding, Graph
from .lower import lower_model
from .set_folding import DEFAULT_TARGET_CYCLES, set_folding

__all__ = ["PASSES", "compile_graph", "compile_model"]

PASSES = (fold_batchnorm_sign, convert_to_xnor_popcount)


def compile_graph(graph: Graph, folding: Mapping[str, Folding] | None = None,
                  target_cycles: int = DEFAULT_TARGET_CYCLES) -> Graph:
    for compiler_pass in PASSES:
        graph = compiler_pass(graph)
        check_graph(graph)
    return set_folding(graph, folding, target_cycles)


def compile_model(model: torch.nn.Module, folding: Mapping[str, Folding] | None = None,
                  target_cycles: int = DEFAULT_TARGET_CYCLES) -> Graph:
    return compile_graph(lower_model(model), folding, target_cycles)
