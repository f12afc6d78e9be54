"""The flow-control generator both engines share, and the cycle budget."""
import pytest

from hbnn.sim.flow_control import FlowControl, SplitMix64, cycle_budget


def test_splitmix64_matches_the_published_sequence():
    # Vigna's reference splitmix64.c seeded with 0 (the driver's C++ is the same code).
    rng = SplitMix64(0)
    assert [rng.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_thresholds_are_exact_integers():
    assert FlowControl().thresholds == (0, 0)
    assert FlowControl(0.5, 0.25).thresholds == (1 << 63, 1 << 62)
    assert not FlowControl().disturbed and FlowControl(0.0, 0.1).disturbed


@pytest.mark.parametrize("gaps", [-0.1, 1.0, 2])
def test_probabilities_must_leave_progress_possible(gaps):
    with pytest.raises(ValueError, match="input_gaps must be a probability in \\[0, 1\\)"):
        FlowControl(input_gaps=gaps)


def test_budget_grows_with_stalls_and_images():
    calm = cycle_budget(latency=100, interval=32, images=10, transfers_per_image=1, flow=FlowControl())
    busy = cycle_budget(latency=100, interval=32, images=10, transfers_per_image=1, flow=FlowControl(0.5, 0.5))
    assert calm.max_cycles >= 2 * (100 + 10 * 32) and busy.max_cycles >= 4 * calm.max_cycles - 4000
    frames = cycle_budget(latency=100, interval=32, images=10, transfers_per_image=64, flow=FlowControl())
    assert frames.max_cycles >= 2 * (100 + 10 * 64)
