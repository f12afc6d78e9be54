"""`verilator --lint-only -Wall` on generated Verilog, with the waivers documented in lint_waivers.vlt."""
from __future__ import annotations

import os
import pathlib
import subprocess
from dataclasses import dataclass

from ..toolchain import verilator_environment

__all__ = ["LINT_WAIVERS", "LintResult", "lint_verilog"]

LINT_WAIVERS = pathlib.Path(__file__).with_name("lint_waivers.vlt")


@dataclass(frozen=True)
class LintResult:
    returncode: int
    output: str

    @property
    def clean(self) -> bool:
        return self.returncode == 0 and "%Warning" not in self.output and "%Error" not in self.output


def lint_verilog(verilog_path: str | pathlib.Path, top: str, libraries=()) -> LintResult:
    """libraries: more Verilog files the top instantiates (the AXI-Stream top's accelerator)."""
    env = dict(os.environ, **verilator_environment())
    result = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, str(LINT_WAIVERS),
                             str(verilog_path), *map(str, libraries)], capture_output=True, text=True, env=env)
    return LintResult(result.returncode, result.stdout + result.stderr)
