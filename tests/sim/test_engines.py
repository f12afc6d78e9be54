"""The two engines against each other and against references: same outputs and same handshake cycles for the same
seed, frames of many transfers, stall reports instead of hangs, FST waves and SAIF activity."""
import re

import numpy as np
import pytest

from hbnn.sim.design import measure_timing
from hbnn.sim.flow_control import FlowControl
from hbnn.sim.transcript import SimulationStalled
from hbnn.sim.verilator_engine import Activity, Waves

FLOWS = [FlowControl(), FlowControl(0.3, 0.3, seed=7), FlowControl(0.0, 0.6, seed=3)]


def random_frames(design, images, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (images,) + design.input.frame_shape)


@pytest.mark.parametrize("elements", [1, 2, 7, 30])  # 8/16-bit, 16/32-bit, 64-bit/wide, wide/wide payloads
@pytest.mark.parametrize("flow", FLOWS, ids=["undisturbed", "both-streams", "output-stalls"])
def test_engines_agree_on_frames(triple_sum, elements, flow):
    design = triple_sum(elements)
    frames = random_frames(design, 9, seed=elements)
    stimulus = design.stimulus(frames)
    fast = design.run(stimulus, flow, name=f"fast-{flow.seed}")
    slow = design.run(stimulus, flow, engine="cocotb", name=f"cocotb-{flow.seed}")
    assert fast.same_transcript(slow)
    assert len(fast.input_cycles) == 9 * 6 and len(fast.output_cycles) == 9 * 2
    outputs = design.output.unpack(fast.outputs).reshape(9, 2, elements)
    np.testing.assert_array_equal(outputs, triple_reference(frames))
    if not flow.disturbed:
        timing = measure_timing(fast, stimulus)
        assert timing.latency == design.latency
        assert timing.interval_spread == (design.interval, design.interval)


def triple_reference(frames):
    """TripleSum's output: element-wise sums of consecutive triples of transfers."""
    images, transfers, elements = frames.shape
    return frames.reshape(images, transfers // 3, 3, elements).sum(axis=2)


def test_backpressure_changes_the_timing_not_the_outputs(triple_sum):
    design = triple_sum(2)
    stimulus = design.stimulus(random_frames(design, 20, seed=1))
    calm = design.run(stimulus, name="calm")
    busy = design.run(stimulus, FlowControl(0.5, 0.5, seed=2), name="busy")
    np.testing.assert_array_equal(calm.outputs, busy.outputs)
    assert busy.cycles > calm.cycles  # the stalls were real
    other_seed = design.run(stimulus, FlowControl(0.5, 0.5, seed=3), name="busy-other-seed")
    assert not np.array_equal(other_seed.output_cycles, busy.output_cycles)


@pytest.mark.parametrize("engine", ["verilator", "cocotb"])
def test_a_design_that_stops_producing_ends_with_a_report(stops_after_five, engine):
    design = stops_after_five
    stimulus = design.stimulus(np.arange(12).reshape(12, 1, 1))
    with pytest.raises(SimulationStalled) as raised:
        design.run(stimulus, engine=engine, name=f"stuck-{engine}")
    message = str(raised.value)
    assert str(design.label) in message and "stopped producing" in message
    # Five transfers left and four wait in the 4-deep FIFO: nine taken, five produced.
    assert "9 of 12 input transfers taken, 5 of 12 output transfers produced" in message
    assert re.search(r"i_stream stalled: the design has refused the offered input since cycle \d+", message)
    assert re.search(r"o_stream stalled: the design has offered no output since cycle \d+", message)


def test_both_engines_report_the_same_stall(stops_after_five):
    design = stops_after_five
    stimulus = design.stimulus(np.arange(12).reshape(12, 1, 1))
    messages = []
    for engine in ("verilator", "cocotb"):
        with pytest.raises(SimulationStalled) as raised:
            design.run(stimulus, FlowControl(0.2, 0.2, seed=4), engine=engine, name=f"stuck-same-{engine}")
        messages.append(str(raised.value).split(": the design", 1)[1])
    assert messages[0] == messages[1]


def test_the_cycle_budget_ends_a_slow_run(triple_sum):
    from hbnn.sim.flow_control import CycleBudget

    design = triple_sum(1)
    stimulus = design.stimulus(random_frames(design, 10, seed=0))
    with pytest.raises(SimulationStalled, match="cycle budget of 20 cycles spent"):
        design.run(stimulus, name="short-budget", budget=CycleBudget(max_cycles=20, idle_cycles=1000))


def test_waves_name_the_amaranth_stream_signals_and_match_the_handshakes(triple_sum, tmp_path):
    import pywellen

    design = triple_sum(2)
    stimulus = design.stimulus(random_frames(design, 5, seed=3))
    path = tmp_path / "waves.fst"
    run = design.run(stimulus, FlowControl(0.3, 0.3, seed=1), name="waves", waves=Waves(path, images=3))
    waveform = pywellen.Waveform(str(path))
    signals = {var.full_name: var.signal for var in waveform.all_vars()}
    for port in ("clk", "rst", "i_stream__valid", "i_stream__ready", "i_stream__payload", "o_stream__valid",
                 "o_stream__ready", "o_stream__payload"):
        assert f"hbnn_top.{port}" in signals
    valid, ready = signals["hbnn_top.i_stream__valid"], signals["hbnn_top.i_stream__ready"]
    # Two reset cycles, then cycle c's settled values stand at 10 ns * (c + 2); traced until image 3 has left.
    traced = int(run.output_cycles[3 * design.output.transfers - 1])
    handshakes = [c for c in range(traced + 1)
                  if valid.value_at(10 * (c + 2)) == 1 and ready.value_at(10 * (c + 2)) == 1]
    assert handshakes == [c for c in run.input_cycles.tolist() if c <= traced]


def test_activity_window_covers_whole_images_in_steady_state(triple_sum, tmp_path):
    design = triple_sum(2)
    stimulus = design.stimulus(random_frames(design, 12, seed=5))
    path = tmp_path / "activity.saif"
    run = design.run(stimulus, name="activity", activity=Activity(path, first_image=2, images=8))
    start, end = run.activity_cycles
    assert end - start == 8 * design.interval
    assert start == run.output_cycles[2 * design.output.transfers - 1] + 1
    text = path.read_text()
    assert f"(DURATION {10 * (end - start)})" in text
    clock = re.search(r"\(clk \(T0 (\d+)\) \(T1 (\d+)\).*?\(TC (\d+)\)", text)
    assert [int(value) for value in clock.groups()] == [5 * (end - start), 5 * (end - start), 2 * (end - start)]
    # One input handshake per cycle in steady state: valid stays high and never toggles inside the window.
    valid = re.search(r"\(i_stream__valid \(T0 (\d+)\) \(T1 (\d+)\)", text)
    assert int(valid.group(2)) == 10 * (end - start)


def test_activity_window_must_fit_the_run(triple_sum, tmp_path):
    design = triple_sum(1)
    stimulus = design.stimulus(random_frames(design, 4, seed=0))
    with pytest.raises(ValueError, match="activity window"):
        design.run(stimulus, name="activity-too-long", activity=Activity(tmp_path / "a.saif", 2, 5))


def test_an_unknown_engine_is_refused(triple_sum):
    design = triple_sum(1)
    with pytest.raises(ValueError, match="engine must be one of"):
        design.run(design.stimulus(random_frames(design, 1, seed=0)), engine="icarus")


def test_a_transcript_difference_is_located(triple_sum):
    design = triple_sum(1)
    stimulus = design.stimulus(random_frames(design, 3, seed=0))
    calm = design.run(stimulus, name="calm-diff")
    busy = design.run(stimulus, FlowControl(0.5, 0.0, seed=1), name="busy-diff")
    assert calm.first_difference(calm) is None
    difference = calm.first_difference(busy)
    assert difference.startswith("input handshake ") and "(verilator) vs" in difference


def test_the_steady_state_window_starts_once_the_pipeline_is_full(triple_sum):
    from hbnn.sim.design import steady_state_window

    design = triple_sum(1)  # latency 6, interval 6: full after one image
    assert steady_state_window(design, images=100) == (1, 64)
    assert steady_state_window(design, images=10) == (1, 9)
    with pytest.raises(ValueError, match="switching activity needs more than 1 images"):
        steady_state_window(design, images=1)


def test_the_default_crosscheck_shrinks_for_slow_designs(triple_sum):
    import dataclasses

    from hbnn.sim.design import CROSSCHECK_CYCLES, crosscheck_images

    design = triple_sum(1)
    assert crosscheck_images(design) == 24
    slow = dataclasses.replace(design, latency=60_000, interval=50_000)
    assert crosscheck_images(slow) == (CROSSCHECK_CYCLES - 60_000) // 50_000 + 1 == 5
    assert crosscheck_images(dataclasses.replace(design, latency=10**6, interval=10**6)) == 1
