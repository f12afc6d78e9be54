"""The cross-check engine: the same Verilog under cocotb, Python deciding valid/ready every cycle (hbnn.sim.bench).

Slow (about 10^4 cycles/s) but independent of the C++ driver: the two share only the Verilog, the flow-control
generator and the transcript format, so agreement between them checks the driver.

Its model's C++ is built at -O0: the bench cross-checks a few dozen images, where the build dominates. Measured on
the demo's Fashion-MNIST design (784-128-128-10) on 2 cores: 9.9 s to build at -O0 against 15.4 s at -Os, and 8,000
against 18,000 cycles/s under cocotb.
"""
from __future__ import annotations

import json
import pathlib
import time

from ..toolchain import VERILATOR_MODEL_ARGS, use_verilator
from .flow_control import CycleBudget, FlowControl
from .stimulus import Stimulus
from .transcript import StreamRun, prepare_run, read_transcript

__all__ = ["COCOTB_CXX_OPTIMIZATION", "build_cocotb", "run_cocotb"]

COCOTB_CXX_OPTIMIZATION = "-O0"


def build_cocotb(verilog_path: str | pathlib.Path, top: str, sim_root: str | pathlib.Path) -> pathlib.Path:
    """Verilates the design for cocotb into sim_root/cocotb (make skips what has not changed)."""
    from cocotb_tools.runner import get_runner

    use_verilator(COCOTB_CXX_OPTIMIZATION)
    directory = pathlib.Path(sim_root).resolve() / "cocotb"
    directory.mkdir(parents=True, exist_ok=True)
    get_runner("verilator").build(sources=[pathlib.Path(verilog_path).resolve()], hdl_toplevel=top,
                                  build_dir=directory, build_args=list(VERILATOR_MODEL_ARGS),
                                  log_file=directory / "build.log")
    return directory


def _with_progress_bar(simulate, progress_path: pathlib.Path, total: int, name: str):
    """Runs the simulation in a thread while a bar follows the image count the bench writes every 2,000 cycles."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=1) as pool, tqdm(total=total, desc=name, unit="image") as bar:
        future = pool.submit(simulate)
        while not future.done():
            try:
                bar.update(int(progress_path.read_text() or 0) - bar.n)
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.5)
        result = future.result()
        bar.update(total - bar.n)
    return result


def run_cocotb(build_dir: pathlib.Path, top: str, stimulus: Stimulus, flow: FlowControl, budget: CycleBudget, *,
               directory: pathlib.Path, name: str, label: str, progress: bool = False) -> StreamRun:
    from cocotb_tools.runner import get_runner

    use_verilator(COCOTB_CXX_OPTIMIZATION)
    directory = pathlib.Path(directory).resolve()
    progress_path = directory / f"{name}.progress"
    progress_path.unlink(missing_ok=True)
    config = prepare_run(directory, name, stimulus, flow, budget)
    config["progress"] = str(progress_path) if progress else None
    config_path = directory / f"{name}.config.json"
    config_path.write_text(json.dumps(config))

    def simulate():
        return get_runner("verilator").test(
            test_module="hbnn.sim.bench", hdl_toplevel=top, hdl_toplevel_lang="verilog", build_dir=build_dir,
            test_dir=directory, extra_env={"HBNN_SIM_CONFIG": str(config_path)},
            results_xml=str(directory / f"{name}.results.xml"), log_file=directory / f"{name}.log")

    if progress:
        _with_progress_bar(simulate, progress_path, stimulus.images, name)
    else:
        simulate()
    return read_transcript(directory, name, "cocotb", input_transfers=stimulus.input_transfers,
                           output_transfers=stimulus.output_transfers, output_words=stimulus.output.words,
                           label=label)
