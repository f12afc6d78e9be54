"""cocotb test bench, run inside the simulator process by hbnn.sim.cocotb_engine (not imported by hbnn itself).

It follows stream_driver.cpp's protocol cycle for cycle (see there): reset with two rising edges, then per cycle two
SplitMix64 draws, drive, settle (ReadOnly), record the handshakes the next rising edge completes, advance. It
writes the same transcript files, so the two engines can be compared transfer for transfer and cycle for cycle.
"""
import json
import os
import pathlib

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hbnn.sim.flow_control import SplitMix64
from hbnn.sim.transcript import write_transcript


@cocotb.test()
async def stream_transfers(dut):
    config = json.loads(pathlib.Path(os.environ["HBNN_SIM_CONFIG"]).read_text())
    transfers, in_words, out_words = config["transfers"], config["in_words"], config["out_words"]
    words = np.fromfile(config["stimulus"], dtype="<u4").reshape(transfers, in_words)
    inputs = [int.from_bytes(row.tobytes(), "little") for row in words]
    expected_outputs = config["outputs"]
    gap_threshold, stall_threshold = config["gap_threshold"], config["stall_threshold"]
    max_cycles, idle_cycles = config["max_cycles"], config["idle_cycles"]
    rng = SplitMix64(config["seed"])
    progress_path = config["progress"]

    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.i_stream__valid.value = 0
    dut.o_stream__ready.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    outputs, input_cycles, output_cycles = [], [], []
    next_input = 0
    offering = False  # once valid is raised it stays up until the transfer (stream protocol)
    cycle = last_handshake = 0
    input_blocked_since = output_empty_since = -1
    status = "done"
    while len(output_cycles) < expected_outputs:
        if cycle >= max_cycles:
            status = "cycle_budget"
            break
        if cycle - last_handshake >= idle_cycles:
            status = "idle"
            break
        input_draw, output_draw = rng.next(), rng.next()
        if not offering and next_input < transfers and input_draw >= gap_threshold:
            dut.i_stream__payload.value = inputs[next_input]
            offering = True
        consumer_ready = output_draw >= stall_threshold
        dut.i_stream__valid.value = int(offering)
        dut.o_stream__ready.value = int(consumer_ready)
        await ReadOnly()
        input_ready = dut.i_stream__ready.value == 1
        output_valid = dut.o_stream__valid.value == 1
        if offering and not input_ready and input_blocked_since < 0:
            input_blocked_since = cycle
        if output_valid:
            output_empty_since = -1
        elif output_empty_since < 0:
            output_empty_since = cycle
        if offering and input_ready:
            input_cycles.append(cycle)
            next_input += 1
            offering = False
            input_blocked_since = -1
            last_handshake = cycle
        if consumer_ready and output_valid:
            outputs.append(dut.o_stream__payload.value.to_unsigned())
            output_cycles.append(cycle)
            last_handshake = cycle
        await RisingEdge(dut.clk)
        cycle += 1
        if progress_path and cycle % 2000 == 0:
            pathlib.Path(progress_path).write_text(str(len(output_cycles) // config["outputs_per_image"]))

    output_words = np.array([[(value >> (32 * i)) & 0xFFFFFFFF for i in range(out_words)] for value in outputs],
                            dtype="<u4").reshape(len(outputs), out_words)
    write_transcript(config["output"], config["status"], outputs=output_words,
                     input_cycles=input_cycles, output_cycles=output_cycles,
                     status={"status": status, "cycles": cycle, "inputs": len(input_cycles),
                             "outputs": len(output_cycles), "input_blocked_since": input_blocked_since,
                             "output_empty_since": output_empty_since})
