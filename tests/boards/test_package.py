"""`hbnn package`: the deployment folder, its Vivado script for each board, and its PYNQ driver run against the
verilated AXI-Stream top, bit-exact with PyTorch."""
import json
import shutil

import numpy as np
import pytest

from hbnn.boards import BOARDS, get_board
from hbnn.boards.package import DRIVER_FILE, TCL_FILE, PackageError, package_build
from hbnn.boards.pynq_driver import SPEC_FILE, Accelerator
from hbnn.boards.vivado import processing_system, vivado_script
from hbnn.cli import main
from hbnn.hw.lint import lint_verilog
from hbnn.sim.axi_transport import SimulatedDma, check_deployment, pixels_of
from hbnn.sim.flow_control import FlowControl

FILES = {"hbnn_top.v", "hbnn_axis.v", TCL_FILE, DRIVER_FILE, SPEC_FILE, "README.md"}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, tiny_build):
    out = tmp_path_factory.mktemp("deploy") / "deploy"
    spec = package_build(tiny_build, out, log=lambda *_: None)
    return out, spec


def test_the_folder_is_complete_and_the_same_bytes_every_time(deployment, tiny_build, tmp_path):
    out, spec = deployment
    assert {path.name for path in out.iterdir()} == FILES
    assert (out / "hbnn_top.v").read_bytes() == (tiny_build / "hbnn_top.v").read_bytes()
    again = tmp_path / "again"
    package_build(tiny_build, again, log=lambda *_: None)
    for name in FILES:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    assert spec["board"] == "pynq-z2" and spec["input"]["dma_bytes"] == 8
    assert spec["resources"]["axi_top"]["luts"] > 0 and spec["resources"]["axi_top"]["dsps"] == 0
    assert "not run" in (out / "README.md").read_text() and "Accelerator.on_board" in (out / "README.md").read_text()
    axis = (out / "hbnn_axis.v").read_text()  # what Vivado's interface inference reads
    for port in ("s_axis TDATA", "s_axis TLAST", "m_axis TDATA", "m_axis TKEEP", "m_axis TLAST", "m_axis TREADY"):
        assert f'"xilinx.com:interface:axis:1.0 {port}"' in axis
    assert '"POLARITY ACTIVE_LOW"' in axis and "ASSOCIATED_BUSIF s_axis:m_axis" in axis


def test_the_axi_top_lints_clean_with_the_accelerator(deployment):
    out, _ = deployment
    result = lint_verilog(out / "hbnn_axis.v", "hbnn_axis", [out / "hbnn_top.v"])
    assert result.clean, result.output


@pytest.mark.parametrize("batch_images, flow", [(1, FlowControl()), (7, FlowControl(0.3, 0.3, seed=2)),
                                                 (64, FlowControl(0.5, 0.1, seed=3))])
def test_the_driver_on_the_simulated_accelerator_equals_pytorch(deployment, tiny_build, synthetic, batch_images,
                                                                flow):
    out, _ = deployment
    result = check_deployment(out, tiny_build / "model.pt", pixels_of(synthetic.test_x[:40]),
                              synthetic.test_y[:40].numpy(), flows=(flow,), batch_images=batch_images)
    assert result["mismatches"] == 0 and result["outputs_compared"] == 40 * synthetic.classes
    assert result["torch_accuracy"] == result["driver_accuracy"]


def test_the_driver_refuses_images_of_the_wrong_shape_or_type(deployment):
    out, spec = deployment
    accelerator = Accelerator.from_folder(out, SimulatedDma(out))
    with pytest.raises(ValueError, match=r"images must have shape \(N, 16\) or \(N, 4, 4\), not \(2, 3, 3\)"):
        accelerator.scores(np.zeros((2, 3, 3), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8 pixels"):
        accelerator.scores(np.zeros((2, 16), dtype=np.float32))
    with pytest.raises(ValueError, match="batch_images must be 1.."):
        Accelerator.from_folder(out, None, batch_images=spec["max_batch_images"] + 1)


def test_the_pixel_codes_are_the_models_input_codes(deployment, tiny_build, synthetic):
    from hbnn.compiler.lower import network_input_codes
    from hbnn.quant.checkpoint import load_checkpoint

    out, _ = deployment
    model, _ = load_checkpoint(tiny_build / "model.pt")
    accelerator = Accelerator.from_folder(out, None)
    pixels = pixels_of(synthetic.test_x[:20])
    import torch
    codes = network_input_codes(model, "fc1", torch.from_numpy(pixels.astype(np.float32) / np.float32(255)))
    np.testing.assert_array_equal(accelerator.input_codes(pixels).reshape(20, -1), codes)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_the_vivado_script_names_each_boards_part_and_processing_system(name):
    board = get_board(name)
    ps = processing_system(board)
    tcl = vivado_script(board, clock_mhz=board.clock_mhz, verilog=["hbnn_top.v", "hbnn_axis.v"], top="hbnn_axis")
    assert f"-part {board.part} " in tcl and f'"*:{board.vivado_board}:*"' in tcl
    assert f"-vlnv [ip {ps.ip}] ps" in tcl and f"/ps/{ps.memory_port}" in tcl and f"ps/{ps.clock}" in tcl
    assert f"CONFIG.c_m_axis_mm2s_tdata_width {{{8 * ps.dma_bytes}}}" in tcl
    assert "create_bd_cell -type module -reference hbnn_axis accelerator" in tcl
    assert tcl.count("{") == tcl.count("}")
    assert ps.dma_bytes == (8 if board.yosys_family == "xc7" else 16)


def test_a_build_for_another_part_is_refused_and_one_for_the_same_part_retargeted(tiny_build, tmp_path):
    with pytest.raises(PackageError, match="compiled for pynq-z2 .* not zcu104 .* hbnn compile"):
        package_build(tiny_build, tmp_path / "zcu104", board="zcu104", synthesis=False)
    notes = []
    spec = package_build(tiny_build, tmp_path / "z1", board="pynq-z1", synthesis=False, log=notes.append)
    assert spec["board"] == "pynq-z1" and "same part" in notes[0]
    assert "*:pynq-z1:*" in (tmp_path / "z1" / TCL_FILE).read_text()


def test_a_design_over_its_board_or_a_foreign_out_folder_is_refused(tiny_build, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(tiny_build, build)
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["fits_board"] = {"fits": False, "why_not": "BRAM36 999 of 140", "meaning": ""}
    (build / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="does not fit pynq-z2 .*BRAM36 999 of 140"):
        package_build(build, tmp_path / "deploy", synthesis=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(PackageError, match="not an hbnn deployment folder"):
        package_build(tiny_build, tmp_path / "mine", synthesis=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_the_command_packages_and_checks(tiny_build, tmp_path, capsys):
    assert main(["package", str(tiny_build), "--out", str(tmp_path / "deploy"), "--no-synthesis",
                 "--check", "30"]) == 0
    printed = capsys.readouterr().out
    assert "bit-exact" in printed and "README.md" in printed
    check = json.loads((tmp_path / "deploy" / "check.json").read_text())
    assert check["images"] == 30 and check["mismatches"] == 0
