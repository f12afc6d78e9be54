"""Shared fixtures: one tiny trained model, compiled once per test session (Verilator and Yosys are slow to start)."""
import pathlib

import pytest
import torch

from hbnn.boards import get_board
from hbnn.compiler.build import compile_checkpoint
from hbnn.compiler.ir import Folding
from hbnn.quant import BinaryMLP, load_dataset, save_checkpoint, train


@pytest.fixture(scope="session")
def synthetic():
    return load_dataset("synthetic")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, synthetic) -> pathlib.Path:
    torch.manual_seed(0)
    model = BinaryMLP((synthetic.train_x.shape[1], 24, 16, synthetic.classes))
    train(model, synthetic, epochs=3, seed=0, progress=False)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, model, {"dataset": "synthetic", "data_root": None})
    return path


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory, tiny_checkpoint) -> pathlib.Path:
    """Mixed foldings on purpose: fully folded (PE=SIMD=1) and fully parallel layers in one design."""
    out = tmp_path_factory.mktemp("build")
    compile_checkpoint(tiny_checkpoint, out, get_board("pynq-z2"),
                       {"layers.0": Folding(pe=1, simd=1), "layers.3": Folding(pe=16, simd=24)})
    return out
