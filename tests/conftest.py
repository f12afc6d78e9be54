"""Shared fixtures: one tiny trained hybrid MLP, compiled once per test session (Verilator and Yosys are slow to start)."""
import pathlib

import pytest
import torch

from hbnn.quant import load_dataset, save_checkpoint, train
from hbnn.quant.models import build_model


@pytest.fixture(scope="session")
def synthetic():
    return load_dataset("synthetic")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, synthetic) -> pathlib.Path:
    """The hybrid mlp 16-24-16-4 (layers fc1, fc2, fc3: int8, binary, int8), trained for 3 epochs."""
    torch.manual_seed(0)
    channels, size, _ = synthetic.image_shape
    model = build_model("mlp", precision="hybrid", in_channels=channels, num_classes=synthetic.classes,
                        image_size=size, hidden=[24, 16])
    train(model, synthetic, epochs=3, seed=0, progress=False)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, model, {"dataset": "synthetic", "data_root": None})
    return path


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory, tiny_checkpoint) -> pathlib.Path:
    """Mixed foldings on purpose: fully folded (PE=SIMD=1) and fully parallel layers in one design."""
    # Imported here, so that tests of the training side do not need the compiler to import.
    from hbnn.boards import get_board
    from hbnn.compiler.build import compile_checkpoint
    from hbnn.compiler.ir import Folding

    out = tmp_path_factory.mktemp("build")
    compile_checkpoint(tiny_checkpoint, out, get_board("pynq-z2"),
                       {"fc1": Folding(pe=1, simd=1), "fc3": Folding(pe=4, simd=16)})
    return out
