"""Shared by the selection tests."""
import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The networks here are tiny: extra intra-op threads only wait on each other, very long on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
