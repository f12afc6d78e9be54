"""hbnn.compiler.forked: a forked computation returns what it would return here, raises what it would raise, and
sees the parent's objects as they were at the fork without pickling them."""
import os

import pytest

from hbnn.compiler.forked import Forked


class _Unpicklable:
    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        raise TypeError("not picklable")


def _value_and_pid(thing):
    return thing.value * 2, os.getpid()


def test_a_forked_computation_returns_its_value_from_another_process():
    value, pid = Forked(_value_and_pid, _Unpicklable(21)).result()
    assert value == 42
    assert pid != os.getpid()


def _fail(message):
    raise ValueError(message)


def test_a_forked_computation_raises_its_error_here():
    with pytest.raises(ValueError, match="layer conv3 deadlocked") as info:
        Forked(_fail, "layer conv3 deadlocked").result()
    assert "in the forked _fail" in str(info.value.__cause__)


def test_an_unpicklable_result_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="unpicklable outcome"):
        Forked(lambda: _Unpicklable(1)).result()


def _die():
    os._exit(3)


def test_a_child_that_dies_is_reported_with_its_exit_code():
    with pytest.raises(RuntimeError, match="exit code 3"):
        Forked(_die).result()


def test_cancel_stops_the_child():
    forked = Forked(__import__("time").sleep, 60)
    forked.cancel()
    assert forked._process is None


def _forked_in_a_pool_worker(value):
    forked = Forked(_value_and_pid, _Unpicklable(value))
    return forked._process is None, forked.result()[0]


def test_a_daemonic_pool_worker_computes_it_itself():
    import multiprocessing
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_forked_in_a_pool_worker, (5,)) == (True, 10)
