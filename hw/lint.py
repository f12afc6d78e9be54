"""`verilator --lint-only -Wall` on generated Verilog, with the waivers documented in lint_waivers.vlt."""
from __future__ import annotations

import pathlib
import subprocess

from ..toolchain import verilator_environment

__all__ = ["LINT_WAIVERS", "LintResult", "lint_verilog"]

LINT_WAIVERS = pathlib.Path(__file__).with_name("lint_waivers.vlt")


class LintResult:
    def __init__(self, returncode: int, output: str):
        self.returncode = returncode
        self.output = output

    @property
    def clean(self) -> bool:
        return self.returncode == 0 and "%Warning" not in self.output and "%Error" not in self.output


def lint_verilog(verilog_path: str | pathlib.Path, top: str) -> LintResult:
    import os
    env = dict(os.environ, **verilator_environment())
    result = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, str(LINT_WAIVERS),
                             str(verilog_path)], capture_output=True, text=True, env=env)
    return LintResult(result.returncode, result.stdout + result.stderr)
