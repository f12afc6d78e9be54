"""Deep memories go to block RAM, shallow ones to LUTs: the rule, and what Yosys makes of it."""
import numpy as np
import pytest
from amaranth.back import verilog

from hbnn.hw.memory_style import LUT_DEPTH, memory_attrs, memory_style
from hbnn.hw.mvau import Mvau
from hbnn.hw.synthesis import synthesize


def test_the_rule():
    assert memory_style(LUT_DEPTH) == "logic" and memory_style(LUT_DEPTH + 1) == "block"
    assert memory_style(8, writable=True) == "distributed"
    assert memory_attrs(200) == {"rom_style": "block"}
    assert memory_attrs(4, writable=True) == {"ram_style": "distributed"}


@pytest.mark.parametrize("pe, in_block_ram", [(1, True), (4, False)])  # weight memory 128 or 32 words deep
def test_yosys_follows_it(tmp_path, pe, in_block_ram):
    weights = np.where(np.random.default_rng(0).random((128, 64)) < 0.5, 1, -1)
    dut = Mvau(weights=weights, weight_kind="binary", input_kind="bipolar", pe=pe, simd=64)
    path = tmp_path / "mvau.v"
    path.write_text(verilog.convert(dut, name="mvau", emit_src=False))
    resources = synthesize(path, "mvau", "xc7")
    assert (resources.bram36 > 0) == in_block_ram, resources.cells
    if not in_block_ram:
        assert resources.luts >= pe * 64  # one LUT per weight bit of a word, at least
