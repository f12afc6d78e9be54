"""Co-simulation of generated Verilog: Verilator builds it, cocotb streams vectors through it (hbnn.sim.bench)."""
from __future__ import annotations

import json
import pathlib
import time
from dataclasses import dataclass

from ..toolchain import use_verilator

__all__ = ["CosimError", "StreamRun", "compile_simulator", "stream_vectors"]

# Amaranth's Verilog trips Verilator's default-fatal width warnings; they are waived with reasons in
# hbnn/hw/lint_waivers.vlt, which the lint test applies with -Wall.
# --output-split-cfuncs keeps generated functions small, so the C++ compiler's optimizer stays fast on wide layers.
VERILATOR_BUILD_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "--output-split", "20000",
                        "--output-split-cfuncs", "2000")


class CosimError(RuntimeError):
    pass


@dataclass(frozen=True)
class StreamRun:
    outputs: tuple[int, ...]  # raw o_stream payloads, in order
    input_cycles: tuple[int, ...]  # cycle of each input handshake
    output_cycles: tuple[int, ...]  # cycle of each output handshake
    cycles: int


def compile_simulator(verilog_path: str | pathlib.Path, top: str, sim_dir: str | pathlib.Path) -> pathlib.Path:
    """Verilates the design into sim_dir (skipped when the Verilog has not changed since the last build)."""
    from cocotb_tools.runner import get_runner

    use_verilator()
    sim_dir = pathlib.Path(sim_dir).resolve()
    runner = get_runner("verilator")
    runner.build(sources=[pathlib.Path(verilog_path).resolve()], hdl_toplevel=top, build_dir=sim_dir,
                 build_args=list(VERILATOR_BUILD_ARGS), log_file=sim_dir / "build.log")
    return sim_dir


def _with_progress_bar(simulate, progress_path: pathlib.Path, total: int, name: str):
    """Runs the simulation in a thread while a bar follows the output count the bench writes every 2,000 cycles."""
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


def stream_vectors(sim_dir: str | pathlib.Path, top: str, inputs: list[int], *, input_gaps: float = 0.0,
                   output_stalls: float = 0.0, seed: int = 0, max_cycles: int | None = None,
                   name: str = "run", progress: bool = False) -> StreamRun:
    """Streams the packed input vectors through the verilated design and returns outputs and handshake cycles.

    input_gaps / output_stalls: probability, each cycle, that the producer withholds the next vector / the consumer
    refuses the output (random back-pressure). Both 0 gives the undisturbed timing that the cycle model predicts.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    use_verilator()
    sim_dir = pathlib.Path(sim_dir).resolve()
    stimulus_path = sim_dir / f"{name}.stimulus.json"
    results_path = sim_dir / f"{name}.results.json"
    results_path.unlink(missing_ok=True)
    if max_cycles is None:
        max_cycles = 100_000 + 10_000 * len(inputs)
    stimulus_path.write_text(json.dumps({"inputs": [format(v, "x") for v in inputs], "input_gaps": input_gaps,
                                         "output_stalls": output_stalls, "seed": seed, "max_cycles": max_cycles}))
    progress_path = sim_dir / f"{name}.progress"
    progress_path.unlink(missing_ok=True)
    runner = get_runner("verilator")

    def simulate():
        return runner.test(test_module="hbnn.sim.bench", hdl_toplevel=top, hdl_toplevel_lang="verilog",
                           build_dir=sim_dir, test_dir=sim_dir,
                           extra_env={"HBNN_SIM_STIMULUS": str(stimulus_path), "HBNN_SIM_RESULTS": str(results_path),
                                      "HBNN_SIM_PROGRESS": str(progress_path)},
                           results_xml=str(sim_dir / f"{name}.results.xml"), log_file=sim_dir / f"{name}.log")

    if progress:
        xml = _with_progress_bar(simulate, progress_path, len(inputs), name)
    else:
        xml = simulate()
    _, failures = get_results(pathlib.Path(xml))
    if not results_path.exists():
        raise CosimError(f"the simulation wrote no results; see {sim_dir / f'{name}.log'}")
    results = json.loads(results_path.read_text())
    if failures or results["timed_out"]:
        raise CosimError(f"co-simulation failed ({len(results['outputs'])} of {len(inputs)} outputs in "
                         f"{results['cycles']} cycles); see {sim_dir / f'{name}.log'}")
    return StreamRun(tuple(int(v, 16) for v in results["outputs"]), tuple(results["input_cycles"]),
                     tuple(results["output_cycles"]), results["cycles"])
