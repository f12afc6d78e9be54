"""A co-simulation run's files and parameters, the same for both engines, and what the run recorded.

<name>.stimulus.bin: the packed input transfers (see Stimulus). prepare_run returns the protocol's parameters.

<name>.transcript.bin: the output payloads (uint32 words, `words` per transfer), then the cycle of every input
handshake (uint64), then the cycle of every output handshake (uint64). <name>.status.json: how the run ended
("done", "cycle_budget" or "idle"), the cycles run, the transfers taken on each side, and the cycles since which
i_stream was blocked by the design and o_stream was empty (-1 when not).
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass

import numpy as np

from .flow_control import CycleBudget, FlowControl
from .stimulus import Stimulus

__all__ = ["CosimError", "SimulationStalled", "StreamRun", "prepare_run", "read_transcript", "write_transcript"]


class CosimError(RuntimeError):
    """A co-simulation could not run or did not finish."""


class SimulationStalled(CosimError):
    """The design stopped producing: the run ended on its cycle budget instead of hanging."""


@dataclass(frozen=True, eq=False)
class StreamRun:
    engine: str
    outputs: np.ndarray  # (output transfers, words) uint32, in order
    input_cycles: np.ndarray  # cycle of each input handshake (cycle 0 is the first after reset)
    output_cycles: np.ndarray  # cycle of each output handshake
    cycles: int
    activity_cycles: tuple[int, int] | None = None  # [from, to) of the switching-activity window, when recorded

    def same_transcript(self, other: StreamRun) -> bool:
        return self.first_difference(other) is None

    def first_difference(self, other: StreamRun) -> str | None:
        """Where two transcripts first differ, in words, or None when they are identical."""
        for what, mine, theirs in (("input handshake", self.input_cycles, other.input_cycles),
                                   ("output handshake", self.output_cycles, other.output_cycles),
                                   ("output transfer", self.outputs, other.outputs)):
            if len(mine) != len(theirs):
                return f"{len(mine)} vs {len(theirs)} {what}s"
            differing = np.flatnonzero((mine != theirs).reshape(len(mine), -1).any(axis=1))
            if differing.size:
                index = int(differing[0])
                return (f"{what} {index}: {mine[index].tolist()} ({self.engine}) vs {theirs[index].tolist()} "
                        f"({other.engine})")
        return None


def prepare_run(directory: pathlib.Path, name: str, stimulus: Stimulus, flow: FlowControl,
                budget: CycleBudget) -> dict:
    """Writes the stimulus, removes the results of an earlier run of the same name, and returns the parameters of
    the protocol as both engines take them: stream_driver.cpp's key=value arguments, the cocotb bench's config."""
    directory.mkdir(parents=True, exist_ok=True)
    stimulus_path = directory / f"{name}.stimulus.bin"
    stimulus.write(stimulus_path)
    output_path, status_path = directory / f"{name}.transcript.bin", directory / f"{name}.status.json"
    output_path.unlink(missing_ok=True)
    status_path.unlink(missing_ok=True)
    gap_threshold, stall_threshold = flow.thresholds
    return {
        "stimulus": str(stimulus_path), "output": str(output_path), "status": str(status_path),
        "transfers": stimulus.input_transfers, "in_words": stimulus.input.words, "out_words": stimulus.output.words,
        "outputs": stimulus.output_transfers, "outputs_per_image": stimulus.output.transfers,
        "gap_threshold": gap_threshold, "stall_threshold": stall_threshold, "seed": flow.seed,
        "max_cycles": budget.max_cycles, "idle_cycles": budget.idle_cycles,
    }


def write_transcript(output_path: str | pathlib.Path, status_path: str | pathlib.Path, *, outputs: np.ndarray,
                     input_cycles, output_cycles, status: dict) -> None:
    """Used by the cocotb bench; the C++ driver writes the same layout itself."""
    with open(output_path, "wb") as file:
        file.write(np.ascontiguousarray(outputs, dtype="<u4").tobytes())
        file.write(np.asarray(input_cycles, dtype="<u8").tobytes())
        file.write(np.asarray(output_cycles, dtype="<u8").tobytes())
    pathlib.Path(status_path).write_text(json.dumps(status) + "\n")


def _stall_report(status: dict, input_transfers: int, output_transfers: int) -> str:
    parts = [f"{status['inputs']} of {input_transfers} input transfers taken, "
             f"{status['outputs']} of {output_transfers} output transfers produced"]
    if status["input_blocked_since"] >= 0:
        parts.append(f"i_stream stalled: the design has refused the offered input since cycle "
                     f"{status['input_blocked_since']}")
    if status["output_empty_since"] >= 0:
        parts.append(f"o_stream stalled: the design has offered no output since cycle {status['output_empty_since']}")
    return "; ".join(parts)


def read_transcript(directory: pathlib.Path, name: str, engine: str, *, input_transfers: int,
                    output_transfers: int, output_words: int, label: str) -> StreamRun:
    """Reads a finished run; a run that ended on its budget raises SimulationStalled with what it saw."""
    status_path = directory / f"{name}.status.json"
    if not status_path.exists():
        raise CosimError(f"{label}: the {engine} run wrote no results (see the log in {directory})")
    status = json.loads(status_path.read_text())
    if status["status"] != "done":
        reason = {"cycle_budget": f"cycle budget of {status['cycles']} cycles spent",
                  "idle": "no handshake on either stream for the idle budget"}.get(status["status"], status["status"])
        raise SimulationStalled(f"{label}: the design stopped producing ({reason}, cycle {status['cycles']}): "
                                + _stall_report(status, input_transfers, output_transfers))
    raw = (directory / f"{name}.transcript.bin").read_bytes()
    output_bytes = output_transfers * output_words * 4
    outputs = np.frombuffer(raw[:output_bytes], dtype="<u4").reshape(output_transfers, output_words)
    cycles = np.frombuffer(raw[output_bytes:], dtype="<u8").astype(np.int64)
    if cycles.size != input_transfers + output_transfers:
        raise CosimError(f"{label}: the {engine} transcript holds {cycles.size} handshakes, expected "
                         f"{input_transfers + output_transfers}")
    activity = status.get("activity_cycles")
    return StreamRun(engine, outputs, cycles[:input_transfers], cycles[input_transfers:], status["cycles"],
                     tuple(activity) if activity else None)
