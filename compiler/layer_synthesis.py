"""What each layer costs after synthesis: every layer's stages (hbnn.compiler.budget.layer_groups) synthesized
alone, as a dataflow of their own, with Yosys' Xilinx flow.

The whole design is synthesized flattened (hbnn.hw.synthesis: ABC9 under YoWASP needs that), so its counts cannot
be split by layer afterwards. A layer synthesized alone keeps logic that the whole design could share or trim
across a boundary, and loses none, so the layers' sum is close to the whole design's but not equal to it: read the
table for where the resources go, and the whole design's line for the total.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Callable

from ..hw.dataflow import Dataflow
from ..hw.synthesis import Resources, synthesize
from ..hw.verilog_export import to_verilog
from .budget import layer_groups
from .ir import Graph
from .map_to_hardware import map_stages

__all__ = ["synthesize_layers"]

PART_TOP = "hbnn_layer"


def _file_name(layer: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", layer)


def synthesize_layers(graph: Graph, family: str, out_dir: str | pathlib.Path,
                      progress: Callable[[str], None] | None = None) -> list[tuple[str, Resources]]:
    """(layer, resources) per layer of the compiled graph, in chain order; each layer's Verilog and Yosys log are
    left in out_dir."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stages = map_stages(graph)
    groups = layer_groups(stages)
    results = []
    for index, (layer, group) in enumerate(groups):
        if progress is not None:
            progress(f"[{index + 1}/{len(groups)}] {layer}")
        path = out_dir / f"{_file_name(layer)}.v"
        path.write_text(to_verilog(Dataflow([stage.component for stage in group]), PART_TOP))
        results.append((layer, synthesize(path, PART_TOP, family, log_path=path.with_suffix(".yosys.log"))))
    return results
