"""AddJoin against numpy under independent random gaps on both inputs and random stalls; its handshake model
against the component cycle for cycle; latency 1 and one pair per cycle undisturbed; the sum's width at the
extremes; bad parameters refused."""
import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

from hbnn.hw.add_join import AddJoin
from hbnn.hw.layout import StreamFormat
from hbnn.sim.amaranth_stream import ports_patterns


def twin(model, transfers, a_pattern, b_pattern, out_pattern):
    a_in, b_in, outs = [], [], []
    for cycle in range(len(out_pattern)):
        a_valid = len(a_in) < transfers and bool(a_pattern[cycle])
        b_valid = len(b_in) < transfers and bool(b_pattern[cycle])
        ready = bool(out_pattern[cycle])
        a_ready, b_ready = model.readies((a_valid, b_valid), (ready,))
        if model.valids[0] and ready:
            outs.append(cycle)
        if a_valid and a_ready:
            a_in.append(cycle)
        if b_valid and b_ready:
            b_in.append(cycle)
        model.clock((a_valid, b_valid), (ready,))
    return a_in, b_in, outs


@pytest.mark.parametrize("seed", range(8))
def test_sums_equal_numpy_and_the_model(seed):
    rng = np.random.default_rng(seed)
    a_bits, b_bits = int(rng.integers(2, 10)), int(rng.integers(2, 10))
    elements, transfers = int(rng.integers(1, 4)), int(rng.integers(1, 30))
    a = rng.integers(-(1 << (a_bits - 1)), 1 << (a_bits - 1), (transfers, elements))
    b = rng.integers(-(1 << (b_bits - 1)), 1 << (b_bits - 1), (transfers, elements))
    a[0], b[0] = -(1 << (a_bits - 1)), -(1 << (b_bits - 1))  # the most negative sum
    a[-1], b[-1] = (1 << (a_bits - 1)) - 1, (1 << (b_bits - 1)) - 1  # the most positive
    dut = AddJoin(a_element=signed(a_bits), b_element=signed(b_bits), elements=elements)
    sum_bits = dut.output_element.width
    assert sum_bits == max(a_bits, b_bits) + 1
    cycles = 12 * transfers + 20
    patterns = [rng.random(cycles) >= rng.choice([0.0, 0.3, 0.7]) for _ in range(3)]
    a_payloads = [StreamFormat("signed", elements, a_bits, transfers).to_int(row) for row in a]
    b_payloads = [StreamFormat("signed", elements, b_bits, transfers).to_int(row) for row in b]
    (a_in, b_in), (outs,), (received,) = ports_patterns(
        dut, {dut.a_stream: (a_payloads, patterns[0]), dut.b_stream: (b_payloads, patterns[1])},
        {dut.o_stream: patterns[2]}, cycles)
    out_format = StreamFormat("signed", elements, sum_bits, transfers)
    np.testing.assert_array_equal(np.array([out_format.from_int(word) for word in received]), a + b)
    assert a_in == b_in  # a pair is taken together
    assert (a_in, b_in, outs) == twin(dut.handshake_model(), transfers, *patterns)


def test_undisturbed_one_pair_per_cycle_latency_one():
    dut = AddJoin(a_element=signed(4), b_element=signed(4), elements=1)
    (a_in, _), (outs,), _ = ports_patterns(dut, {dut.a_stream: (list(range(6)), [1] * 10),
                                                 dut.b_stream: (list(range(6)), [1] * 10)}, {dut.o_stream: [1] * 10}, 10)
    assert a_in == list(range(6)) and outs == [c + dut.latency for c in range(6)]


def test_a_pair_waits_for_its_late_half():
    dut = AddJoin(a_element=signed(4), b_element=signed(4), elements=1)
    (a_in, b_in), (outs,), _ = ports_patterns(dut, {dut.a_stream: ([1], [1] * 6), dut.b_stream: ([2], [0, 0, 0, 1, 1, 1])},
                                              {dut.o_stream: [1] * 6}, 6)
    assert a_in == b_in == [3] and outs == [4]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(a_element=unsigned(4), b_element=signed(4), elements=1), ValueError, "a_element must be signed"),
    (dict(a_element=signed(4), b_element=signed(1), elements=1), ValueError, "b_element must be signed"),
    (dict(a_element=signed(4), b_element=signed(4), elements=0), TypeError, "elements must be a positive"),
    (dict(a_element="x", b_element=signed(4), elements=1), TypeError, "a_element must be a shape"),
])
def test_bad_parameters_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        AddJoin(**kwargs)
