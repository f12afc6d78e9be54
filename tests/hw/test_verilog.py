"""Generated Verilog: lint-clean under `verilator -Wall` with the documented waivers, and synthesizable by Yosys."""

from hbnn.compiler.build import read_manifest
from hbnn.hw.lint import LINT_WAIVERS, lint_verilog
from hbnn.hw.synthesis import resources_from_cells, synthesize


def test_lint_clean_with_documented_waivers(tiny_build):
    manifest = read_manifest(tiny_build)
    result = lint_verilog(tiny_build / manifest["verilog"], manifest["top"])
    assert result.clean, result.output
    # Every waived rule carries a reason in the waiver file.
    lines = LINT_WAIVERS.read_text().splitlines()
    for index, line in enumerate(lines):
        if line.startswith("lint_off"):
            assert any(l.startswith("//") for l in lines[max(0, index - 3):index]), line


def test_lint_reports_real_problems(tmp_path):
    broken = tmp_path / "hbnn_top.v"
    broken.write_text("module hbnn_top(input clk, output y);\nendmodule\n")  # y is never driven
    result = lint_verilog(broken, "hbnn_top")
    assert not result.clean


def test_synthesis_puts_the_int8_multipliers_on_dsp_slices(tiny_build):
    manifest = read_manifest(tiny_build)
    resources = synthesize(tiny_build / manifest["verilog"], manifest["top"], "xc7")
    assert resources.luts > 0 and resources.flip_flops > 0
    assert resources.cells.get("DSP48E1", 0) == manifest["dsp_multipliers"] > 0  # one per int8 lane, none in LUTs


def test_cell_counts_are_summed_by_kind():
    resources = resources_from_cells({"LUT2": 3, "LUT6": 4, "FDRE": 5, "FDSE": 1, "CARRY4": 2, "RAMB18E1": 3,
                                      "RAMB36E1": 1, "DSP48E1": 2, "SRLC32E": 1, "$scopeinfo": 2})
    assert (resources.luts, resources.flip_flops, resources.carry, resources.bram36, resources.dsps,
            resources.lutram) == (7, 6, 2, 2.5, 2, 1)
    assert "$scopeinfo" not in resources.cells


def test_fork_and_add_join_are_lint_clean(tmp_path):
    from amaranth.hdl import signed

    from hbnn.hw.add_join import AddJoin
    from hbnn.hw.fork import Fork
    from hbnn.hw.verilog_export import to_verilog

    for name, dut in (("fork", Fork(element=signed(8), elements=4, readers=2)),
                      ("add_join", AddJoin(a_element=signed(8), b_element=signed(5), elements=4))):
        path = tmp_path / f"{name}.v"
        path.write_text(to_verilog(dut, name))
        result = lint_verilog(path, name)
        assert result.clean, result.output
