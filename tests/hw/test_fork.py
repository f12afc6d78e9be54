"""Fork against its specification under random gaps and per-reader stalls; its handshake model against the
component cycle for cycle; latency 1 and one transfer per cycle undisturbed; bad parameters refused."""
import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

from hbnn.hw.fork import Fork
from hbnn.hw.layout import StreamFormat
from hbnn.sim.amaranth_stream import ports_patterns


def twin(model, transfers, in_pattern, out_patterns):
    ins, outs = [], [[] for _ in out_patterns]
    for cycle in range(len(in_pattern)):
        valid = len(ins) < transfers and bool(in_pattern[cycle])
        readies = [bool(pattern[cycle]) for pattern in out_patterns]
        if valid and model.readies((valid,), readies)[0]:
            ins.append(cycle)
        for k, (held, ready) in enumerate(zip(model.valids, readies)):
            if held and ready:
                outs[k].append(cycle)
        model.clock((valid,), readies)
    return ins, outs


@pytest.mark.parametrize("seed", range(8))
def test_every_reader_gets_every_transfer_in_order(seed):
    rng = np.random.default_rng(seed)
    readers, elements, transfers = int(rng.integers(2, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 30))
    bipolar = seed % 2 == 0
    element = unsigned(1) if bipolar else signed(8)
    form = StreamFormat("bipolar", elements, 1, transfers) if bipolar else StreamFormat("signed", elements, 8, transfers)
    values = (np.where(rng.random((transfers, elements)) < 0.5, 1, -1) if bipolar
              else rng.integers(-128, 128, (transfers, elements)))
    payloads = [form.to_int(row) for row in values]
    cycles = 12 * transfers + 20
    in_pattern = rng.random(cycles) >= rng.choice([0.0, 0.3, 0.7])
    out_patterns = [rng.random(cycles) >= rng.choice([0.0, 0.3, 0.7]) for _ in range(readers)]
    dut = Fork(element=element, elements=elements, readers=readers)
    ins, outs, received = ports_patterns(dut, {dut.i_stream: (payloads, in_pattern)},
                                         {dut.o_streams[k]: out_patterns[k] for k in range(readers)}, cycles)
    assert all(got == payloads for got in received)  # the cycle budget is generous enough for every transfer
    assert (ins[0], outs) == twin(dut.handshake_model(), transfers, in_pattern, out_patterns)


def test_undisturbed_one_transfer_per_cycle_latency_one():
    dut = Fork(element=signed(4), elements=2, readers=3)
    ins, outs, _ = ports_patterns(dut, {dut.i_stream: (list(range(10)), [1] * 20)},
                                  {port: [1] * 20 for port in dut.o_streams}, 20)
    assert ins[0] == list(range(10))
    assert all(cycles == [c + dut.latency for c in range(10)] for cycles in outs)


def test_a_stalled_reader_holds_the_input_only_when_the_next_transfer_arrives():
    dut = Fork(element=signed(4), elements=1, readers=2)
    ins, outs, _ = ports_patterns(dut, {dut.i_stream: ([1, 2, 3], [1] * 8)},
                                  {dut.o_streams[0]: [1] * 8, dut.o_streams[1]: [0, 0, 0, 0, 1, 1, 1, 1]}, 8)
    assert ins[0] == [0, 4, 5] and outs[0] == [1, 5, 6] and outs[1] == [4, 5, 6]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(element=signed(4), elements=0), TypeError, "elements must be a positive integer"),
    (dict(element=signed(4), elements=1, readers=1), ValueError, "readers must be at least 2"),
    (dict(element="x", elements=1), TypeError, "element must be a shape"),
])
def test_bad_parameters_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        Fork(**kwargs)
