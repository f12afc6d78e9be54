"""cocotb test bench, run inside the simulator process by hbnn.sim.cosim (not imported by hbnn itself).

Reads the stimulus from the JSON file named by HBNN_SIM_STIMULUS, streams every input vector into the top's
i_stream, takes every result from o_stream, and writes the raw output integers and the cycle of every handshake to
the JSON file named by HBNN_SIM_RESULTS. Each loop iteration is one clock cycle: drive, settle (ReadOnly), record
the handshakes that the next rising edge will complete, then advance to that edge.
"""
import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


@cocotb.test()
async def stream_vectors(dut):
    with open(os.environ["HBNN_SIM_STIMULUS"]) as file:
        stimulus = json.load(file)
    inputs = [int(value, 16) for value in stimulus["inputs"]]
    input_gaps = float(stimulus["input_gaps"])
    output_stalls = float(stimulus["output_stalls"])
    max_cycles = int(stimulus["max_cycles"])
    rng = random.Random(stimulus["seed"])
    progress_path = os.environ.get("HBNN_SIM_PROGRESS")

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
    cycle = 0
    while len(outputs) < len(inputs) and cycle < max_cycles:
        if not offering and next_input < len(inputs) and rng.random() >= input_gaps:
            dut.i_stream__payload.value = inputs[next_input]
            offering = True
        dut.i_stream__valid.value = int(offering)
        consumer_ready = int(rng.random() >= output_stalls)
        dut.o_stream__ready.value = consumer_ready
        await ReadOnly()
        if offering and dut.i_stream__ready.value == 1:
            input_cycles.append(cycle)
            next_input += 1
            offering = False
        if consumer_ready and dut.o_stream__valid.value == 1:
            outputs.append(format(dut.o_stream__payload.value.to_unsigned(), "x"))
            output_cycles.append(cycle)
        await RisingEdge(dut.clk)
        cycle += 1
        if progress_path and cycle % 2000 == 0:
            with open(progress_path, "w") as file:  # read by the parent for its progress bar
                file.write(str(len(outputs)))

    with open(os.environ["HBNN_SIM_RESULTS"], "w") as file:
        json.dump({"outputs": outputs, "input_cycles": input_cycles, "output_cycles": output_cycles,
                   "cycles": cycle, "timed_out": len(outputs) < len(inputs)}, file)
    assert len(outputs) == len(inputs), f"only {len(outputs)} of {len(inputs)} outputs within {max_cycles} cycles"
