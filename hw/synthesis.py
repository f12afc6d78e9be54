"""Resource counts from real synthesis: Yosys' Xilinx flow (`synth_xilinx`) on the generated Verilog."""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass

from ..toolchain import yosys_command

__all__ = ["SynthesisError", "Resources", "synthesize", "resources_from_cells"]


class SynthesisError(RuntimeError):
    pass


@dataclass(frozen=True)
class Resources:
    luts: int  # logic LUTs (LUT1..LUT6)
    lutram: int  # LUTs used as distributed RAM or shift registers
    flip_flops: int
    carry: int  # CARRY4 (7-series) or CARRY8 (UltraScale+) blocks
    dsps: int
    bram36: float  # 36 Kb block RAMs; an 18 Kb half counts 0.5
    cells: dict  # every cell type Yosys reported, for the curious

    def as_dict(self) -> dict:
        return {"luts": self.luts, "lutram": self.lutram, "flip_flops": self.flip_flops, "carry": self.carry,
                "dsps": self.dsps, "bram36": self.bram36, "cells": dict(sorted(self.cells.items()))}


_LUTRAM = ("RAM16X1S", "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "RAM32X1D", "RAM64X1D", "RAM128X1D",
           "RAM32M", "RAM64M", "RAM32M16", "RAM64M8", "SRL16E", "SRLC32E")


def resources_from_cells(cells: dict[str, int]) -> Resources:
    count = Counter(cells)
    return Resources(
        luts=sum(count[f"LUT{i}"] for i in range(1, 7)),
        lutram=sum(count[name] for name in _LUTRAM),
        flip_flops=sum(count[name] for name in ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")),
        carry=count["CARRY4"] + count["CARRY8"],
        dsps=count["DSP48E1"] + count["DSP48E2"],
        bram36=count["RAMB36E1"] + count["RAMB36E2"] + 0.5 * (count["RAMB18E1"] + count["RAMB18E2"]),
        cells={name: n for name, n in count.items() if not name.startswith("$")},
    )


def synthesize(verilog_path: str | pathlib.Path, top: str, family: str = "xc7",
               log_path: str | pathlib.Path | None = None) -> Resources:
    """Runs `synth_xilinx -flatten` and returns the cell counts of the whole design.

    -flatten gives totals in one module (and ABC9 under YoWASP fails on this hierarchy without it). `rename -hide
    w:*]` makes Amaranth's per-element aliases of array ports (wires named like `i_stream__payload[0]`) private
    first: under their public names Yosys' ABC9 reintegration asserts on them (`count_id(wire->name) == 0`, Yosys
    0.70 via YoWASP). They are debug names only; the logic is unchanged.
    """
    verilog_path = pathlib.Path(verilog_path)
    if not verilog_path.exists():
        raise SynthesisError(f"no Verilog file at {verilog_path}")
    # YoWASP runs Yosys under WebAssembly with access to the working directory: work in a private copy.
    with tempfile.TemporaryDirectory(prefix="hbnn-yosys-") as work:
        shutil.copy(verilog_path, pathlib.Path(work) / "design.v")
        script = (f"read_verilog design.v; rename -hide w:*]; synth_xilinx -family {family} -top {top} -flatten; "
                  "tee -q -o stat.json stat -json")
        # -l: Yosys' own log keeps the messages that follow ABC's run, which its captured stdout loses.
        result = subprocess.run([yosys_command(), "-q", "-l", "yosys.log", "-p", script], cwd=work,
                                capture_output=True, text=True)
        own_log = pathlib.Path(work) / "yosys.log"
        log = (own_log.read_text() if own_log.exists() else result.stdout) + result.stderr
        if log_path is not None:
            pathlib.Path(log_path).write_text(log)
        stat_path = pathlib.Path(work) / "stat.json"
        if result.returncode != 0 or not stat_path.exists():
            tail = log.strip().splitlines()[-15:]
            raise SynthesisError(f"Yosys failed on {verilog_path} (exit {result.returncode}):\n" + "\n".join(tail))
        stat = json.loads(stat_path.read_text())
    return resources_from_cells(stat["design"]["num_cells_by_type"])
