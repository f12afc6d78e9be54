import pytest

from hbnn.compiler.cycles import steady_gaps


@pytest.mark.parametrize("gaps, repeat_from, period, expected", [
    ((7, 5, 5, 5), 1, 1, ((7,), (5,))),
    ((7, 5, 5, 5), 2, 1, ((7,), (5,))),  # the state repeated later than the gaps did
    ((5, 5, 5), 2, 1, ((), (5,))),
    ((9, 4, 6, 4, 6), 1, 2, ((9,), (4, 6))),
    ((9, 4, 4, 4, 4), 1, 4, ((9,), (4,))),  # a state period of four images, a gap period of one
    ((9, 6, 4, 6, 4, 6), 2, 2, ((9,), (6, 4))),
])
def test_steady_gaps_are_the_shortest_transient_and_period(gaps, repeat_from, period, expected):
    assert steady_gaps(gaps, repeat_from, period) == expected
