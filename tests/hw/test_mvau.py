"""Mvau with each lane kind against numpy's W @ x, with random back-pressure, measured latency and interval equal to
the component's, through Verilator as a multi-transfer design with both engines, and DSP48E1 slices from Yosys for
the multiply lanes."""
import numpy as np
import pytest

from hbnn.hw.mvau import AbcBases, Mvau
from hbnn.sim.amaranth_stream import stream_through

KINDS = [("binary", "bipolar"), ("binary", "int8"), ("ternary", "int8"), ("int8", "int8")]


def random_layer(rng, rows, columns, weight_kind, input_kind, images):
    if weight_kind == "binary":
        weights = np.where(rng.random((rows, columns)) < 0.5, 1, -1)
    elif weight_kind == "ternary":
        weights = rng.integers(-1, 2, (rows, columns))
        weights[0, :] = -1  # the extreme: the accumulator bound is reached
    else:
        weights = rng.integers(-128, 128, (rows, columns))
        weights[0, :] = -128  # the extremes: the accumulator bound is reached
    if input_kind == "bipolar":
        x = np.where(rng.random((images, columns)) < 0.5, 1, -1)
    else:
        x = rng.integers(-128, 128, (images, columns))
        x[0, :] = -128
    return weights, x


def run(dut, x, **flow):
    transfers = x.reshape(-1, dut.simd)
    images = len(x)
    out, in_cycles, out_cycles = stream_through(dut, transfers, dut.input_format, dut.output_format,
                                                outputs=images * dut.neuron_folds, **flow)
    return out.reshape(images, -1), in_cycles, out_cycles


@pytest.mark.parametrize("weight_kind, input_kind", KINDS)
@pytest.mark.parametrize("rows, columns, pe, simd", [
    (4, 8, 1, 1),     # fully folded
    (4, 8, 4, 8),     # fully parallel: one cycle per image
    (6, 12, 2, 4),
    (8, 6, 4, 3),
    (3, 5, 1, 5),     # one synapse fold, several neuron folds
    (1, 16, 1, 2),    # one row
])
def test_matches_numpy_under_random_backpressure(weight_kind, input_kind, rows, columns, pe, simd):
    rng = np.random.default_rng(rows * 100 + columns + pe)
    weights, x = random_layer(rng, rows, columns, weight_kind, input_kind, images=7)
    dut = Mvau(weights=weights, weight_kind=weight_kind, input_kind=input_kind, pe=pe, simd=simd)
    out, _, _ = run(dut, x, input_gaps=0.3, output_stalls=0.4, seed=simd)
    np.testing.assert_array_equal(out, x @ weights.T)


@pytest.mark.parametrize("weight_kind, input_kind", KINDS)
@pytest.mark.parametrize("rows, columns, pe, simd", [(4, 8, 1, 1), (4, 8, 4, 8), (6, 12, 2, 4), (3, 5, 1, 5)])
def test_latency_and_interval_equal_the_component(weight_kind, input_kind, rows, columns, pe, simd):
    rng = np.random.default_rng(5)
    weights, x = random_layer(rng, rows, columns, weight_kind, input_kind, images=5)
    dut = Mvau(weights=weights, weight_kind=weight_kind, input_kind=input_kind, pe=pe, simd=simd)
    _, in_cycles, out_cycles = run(dut, x)
    firsts = in_cycles[::dut.synapse_folds]
    lasts = out_cycles[dut.neuron_folds - 1::dut.neuron_folds]
    assert lasts[0] - firsts[0] == dut.latency == dut.neuron_folds * dut.synapse_folds + 1
    assert np.diff(lasts).tolist() == [dut.interval] * (len(x) - 1)


def test_frames_through_verilator_with_both_engines(tmp_path):
    from amaranth.back import verilog

    from hbnn.sim.design import Design
    from hbnn.sim.flow_control import FlowControl

    rng = np.random.default_rng(9)
    weights, x = random_layer(rng, 12, 20, "binary", "int8", images=40)
    dut = Mvau(weights=weights, weight_kind="binary", input_kind="int8", pe=3, simd=5)
    path = tmp_path / "hbnn_top.v"
    path.write_text(verilog.convert(dut, name="hbnn_top", emit_src=False))
    design = Design(path, "hbnn_top", dut.input_format, dut.output_format, dut.latency, dut.interval,
                    tmp_path / "sim", "Mvau 12x20")
    stimulus = design.stimulus(x.reshape(len(x), dut.synapse_folds, dut.simd))
    flow = FlowControl(0.3, 0.3, seed=4)
    fast = design.run(stimulus, flow, name="mvau")
    np.testing.assert_array_equal(design.output.unpack(fast.outputs).reshape(len(x), -1), x @ weights.T)
    slow = design.run(stimulus.head(6), flow, engine="cocotb", name="mvau-cocotb")
    assert design.run(stimulus.head(6), flow, name="mvau-head").same_transcript(slow)


@pytest.mark.parametrize("weight_kind, pe, simd", [("int8", 2, 2), ("ternary", 2, 4)])
def test_multiply_lanes_map_to_dsp48_slices_and_ternary_lanes_stay_in_luts(tmp_path, weight_kind, pe, simd):
    from amaranth.back import verilog

    from hbnn.hw.synthesis import synthesize

    weights, _ = random_layer(np.random.default_rng(2), 4, 8, weight_kind, "int8", images=1)
    dut = Mvau(weights=weights, weight_kind=weight_kind, input_kind="int8", pe=pe, simd=simd)
    path = tmp_path / "mvau.v"
    path.write_text(verilog.convert(dut, name="mvau", emit_src=False))
    resources = synthesize(path, "mvau", "xc7")
    if weight_kind == "int8":
        assert resources.dsps >= 1, resources.cells  # PE x SIMD = 4 products; Yosys decides how many slices
    else:
        assert resources.dsps == 0 and resources.luts > 0, resources.cells  # add, subtract or skip: no multiplier


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="no lane multiplies int8 weights by bipolar inputs"):
        Mvau(weights=np.ones((2, 2)), weight_kind="int8", input_kind="bipolar", pe=1, simd=1)
    with pytest.raises(ValueError, match=r"simd=3 does not divide the layer dimension 4 \(divisors: \[1, 2, 4\]\)"):
        Mvau(weights=np.ones((2, 4)), weight_kind="binary", input_kind="bipolar", pe=1, simd=3)
    with pytest.raises(ValueError, match="binary weights must be -1 or"):
        Mvau(weights=np.zeros((2, 4)), weight_kind="binary", input_kind="bipolar", pe=1, simd=1)
    with pytest.raises(ValueError, match="ternary weights must be -1, 0 or"):
        Mvau(weights=np.full((2, 4), 2), weight_kind="ternary", input_kind="int8", pe=1, simd=1)
    with pytest.raises(ValueError, match="no lane multiplies ternary weights by bipolar inputs"):
        Mvau(weights=np.zeros((2, 4)), weight_kind="ternary", input_kind="bipolar", pe=1, simd=1)


def test_a_weight_rom_just_past_a_power_of_two_deep():
    """4,608 words of 64 bits, the depth the block-RAM estimate counts as 4,096 + 512 (memory_style.rom_segments)."""
    from hbnn.hw.memory_style import rom_segments

    rng = np.random.default_rng(9)
    weights, x = random_layer(rng, 384, 768, "binary", "bipolar", images=2)
    dut = Mvau(weights=weights, weight_kind="binary", input_kind="bipolar", pe=8, simd=8)
    assert rom_segments(dut.neuron_folds * dut.synapse_folds, 64) == (4096, 512)
    out, _, _ = run(dut, x, input_gaps=0.2, output_stalls=0.2, seed=1)
    np.testing.assert_array_equal(out, x @ weights.T)


# ABC-Net: M binary weight planes, inputs as levels 0..N whose activation bases are H_n = level >= rank_n.

def random_abc_layer(rng, weight_bases, act_bases, rows, columns, images):
    planes = np.where(rng.random((weight_bases, rows, columns)) < 0.5, 1, -1)
    planes[:, 0, :] = 1  # row 0 agrees with an all-+1 input on every plane: the pair sums reach +columns
    codes = rng.integers(-127, 128, (weight_bases, act_bases))
    codes[0, 0] = 127
    ranks = tuple(int(r) for r in rng.permutation(np.arange(1, act_bases + 1)))
    levels = rng.integers(0, act_bases + 1, (images, columns))
    levels[0, :] = act_bases  # every activation base +1
    return planes, codes, ranks, levels


def abc_reference(planes, codes, ranks, levels):
    """sum_i sum_n q[i, n] * (B_i @ H_n), H_n = +1 where level >= rank_n."""
    out = 0
    for n, rank in enumerate(ranks):
        h = np.where(levels >= rank, 1, -1)
        out = out + sum(int(codes[i, n]) * (h @ planes[i].T) for i in range(len(planes)))
    return out


def abc_mvau(planes, codes, ranks, pe, simd, parallel):
    bases = AbcBases(tuple(map(tuple, codes.tolist())), ranks, parallel)
    return Mvau(weights=planes, weight_kind="abc", input_kind="levels", pe=pe, simd=simd, bases=bases)


@pytest.mark.parametrize("weight_bases, act_bases, parallel", [(1, 1, 1), (3, 1, 1), (3, 3, 3), (3, 3, 1), (4, 2, 2),
                                                                (5, 3, 5), (5, 3, 1)])
@pytest.mark.parametrize("rows, columns, pe, simd", [(4, 8, 1, 1), (4, 8, 4, 8), (6, 12, 2, 4), (3, 5, 1, 5)])
def test_abc_matches_numpy_under_random_backpressure(weight_bases, act_bases, parallel, rows, columns, pe, simd):
    rng = np.random.default_rng(weight_bases * 1000 + act_bases * 100 + rows * 10 + simd)
    planes, codes, ranks, levels = random_abc_layer(rng, weight_bases, act_bases, rows, columns, images=5)
    dut = abc_mvau(planes, codes, ranks, pe, simd, parallel)
    assert dut.passes == weight_bases // parallel
    assert dut.input_format.element_bits == act_bases.bit_length()
    out, _, _ = run(dut, levels, input_gaps=0.3, output_stalls=0.4, seed=simd)
    np.testing.assert_array_equal(out, abc_reference(planes, codes, ranks, levels))
    assert np.abs(out).max() < 1 << (dut.accumulator_bits - 1)


@pytest.mark.parametrize("parallel", [3, 1])
@pytest.mark.parametrize("rows, columns, pe, simd", [(4, 8, 1, 1), (4, 8, 4, 8), (6, 12, 2, 4)])
def test_abc_cycles_are_passes_times_the_binary_layer(parallel, rows, columns, pe, simd):
    """Fully parallel bases: a binary layer's timing; time-multiplexed: each row group M / parallel times over."""
    rng = np.random.default_rng(3)
    planes, codes, ranks, levels = random_abc_layer(rng, 3, 2, rows, columns, images=4)
    dut = abc_mvau(planes, codes, ranks, pe, simd, parallel)
    passes = 3 // parallel
    _, in_cycles, out_cycles = run(dut, levels)
    firsts = in_cycles[::dut.synapse_folds]
    lasts = out_cycles[dut.neuron_folds - 1::dut.neuron_folds]
    assert dut.interval == dut.neuron_folds * passes * dut.synapse_folds
    assert lasts[0] - firsts[0] == dut.latency == dut.interval + 1
    assert np.diff(lasts).tolist() == [dut.interval] * (len(levels) - 1)


def test_abc_parameters_are_checked():
    planes = np.ones((3, 4, 8), dtype=np.int64)
    codes = ((1, 2),) * 3
    with pytest.raises(ValueError, match="ranks must be 2 levels in 1..2"):
        AbcBases(codes, (0, 1), 1)
    with pytest.raises(ValueError, match="parallel.*divide"):
        AbcBases(codes, (1, 2), 2)
    with pytest.raises(ValueError, match="ABC weights must be 3 planes"):
        Mvau(weights=planes[0], weight_kind="abc", input_kind="levels", pe=1, simd=1,
             bases=AbcBases(codes, (1, 2), 1))
    with pytest.raises(ValueError, match="only with, ABC weights on levels"):
        Mvau(weights=planes, weight_kind="abc", input_kind="levels", pe=1, simd=1)
