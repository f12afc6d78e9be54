"""The build folder: contents, manifest, and byte-identical output for the same model and options."""
import filecmp
import json

import pytest

from hbnn.boards import get_board
from hbnn.compiler.build import compile_checkpoint, read_manifest


def test_build_folder_is_deterministic(tmp_path, tiny_checkpoint):
    first, second = tmp_path / "a", tmp_path / "b"
    compile_checkpoint(tiny_checkpoint, first, get_board("pynq-z2"))
    compile_checkpoint(tiny_checkpoint, second, get_board("pynq-z2"))
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert [str(f) for f in files] == [str(p.relative_to(second)) for p in sorted(second.rglob("*")) if p.is_file()]
    for relative in files:
        assert filecmp.cmp(first / relative, second / relative, shallow=False), relative


def test_manifest_describes_layers_memories_and_streams(tiny_build):
    manifest = read_manifest(tiny_build)
    assert manifest["top"] == "hbnn_top" and (tiny_build / manifest["verilog"]).exists()
    first, hidden, last = manifest["layers"]
    assert [layer["lane"] for layer in manifest["layers"]] == ["multiply", "xnor_popcount", "multiply"]
    assert (first["pe"], first["simd"]) == (1, 1)
    assert first["weight_memory"]["depth"] == first["in_features"] * first["out_features"]
    assert first["weight_memory"]["style"] == "block"  # 384 words
    lines = (tiny_build / first["weight_memory"]["file"]).read_text().split()
    assert len(lines) == first["weight_memory"]["depth"] and all(len(line) == 2 for line in lines)  # int8 words
    assert first["threshold"]["thresholds_per_channel"] == 1 and first["output"] == "bipolar"  # sign for fc2
    assert hidden["threshold"]["thresholds_per_channel"] > 1 and hidden["output"].startswith("int8")
    rows = (tiny_build / hidden["threshold"]["file"]).read_text().splitlines()
    assert len(rows) == hidden["out_features"] and all(row[0] in "+-" for row in rows)
    assert "threshold" not in last and manifest["output"]["kind"] == "signed"
    assert manifest["dsp_multipliers"] == first["pe"] * first["simd"] + last["pe"] * last["simd"]
    assert manifest["input"]["quantizer"]["layer"] == "fc1" and manifest["input"]["kind"] == "signed"
    assert isinstance(manifest["output"]["exponent"], int)
    assert manifest["cycles"]["initiation_interval"] >= max(l["neuron_folds"] * l["synapse_folds"]
                                                            for l in manifest["layers"])
    json.dumps(manifest)  # plain JSON all the way down
    assert str(tiny_build) not in (tiny_build / "manifest.json").read_text()


def test_a_failed_build_leaves_the_previous_folder_whole(tmp_path, tiny_checkpoint, monkeypatch):
    out = tmp_path / "build"
    compile_checkpoint(tiny_checkpoint, out, get_board("pynq-z2"))
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    import hbnn.compiler.build as build

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(build.shutil, "copyfile", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        compile_checkpoint(tiny_checkpoint, out, get_board("pynq-z2"))
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["build"]  # no staging folder left behind


def test_a_design_over_the_board_is_refused_or_built_for_simulation_only(tmp_path, tiny_checkpoint):
    import dataclasses

    from hbnn.compiler.budget import BoardBudgetError

    no_block_ram = dataclasses.replace(get_board("pynq-z2"), bram36=0)
    with pytest.raises(BoardBudgetError, match=r"BRAM36 \(estimated\), more than the 0 of pynq-z2; the costliest "
                                               r"layer is 'fc\d'"):
        compile_checkpoint(tiny_checkpoint, tmp_path / "refused", no_block_ram)
    assert not (tmp_path / "refused").exists()
    _, manifest = compile_checkpoint(tiny_checkpoint, tmp_path / "sim-only", no_block_ram, fit_check=False)
    assert manifest["fits_board"]["fits"] is False and "BRAM36" in manifest["fits_board"]["why_not"]
    assert read_manifest(tmp_path / "sim-only")["fits_board"] == manifest["fits_board"]
    assert (tmp_path / "sim-only" / manifest["verilog"]).exists()
    _, fitting = compile_checkpoint(tiny_checkpoint, tmp_path / "fits", get_board("pynq-z2"), fit_check=False)
    assert fitting["fits_board"]["fits"] is True and fitting["fits_board"]["why_not"] is None
    # Built at the DSP and LUT budgets' folding, not slowed for block RAM it cannot have anyway.
    assert [(layer["pe"], layer["simd"]) for layer in manifest["layers"]] == [
        (layer["pe"], layer["simd"]) for layer in fitting["layers"]]


def test_missing_folder_is_a_clear_error(tmp_path):
    try:
        read_manifest(tmp_path)
    except FileNotFoundError as error:
        assert "not an hbnn build folder" in str(error)
    else:
        raise AssertionError("read_manifest accepted an empty folder")


def test_a_build_folder_of_another_manifest_version_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "hbnn-build", "version": 1}))
    with pytest.raises(ValueError, match="version-1 build folder; this hbnn reads version 6: compile the checkpoint"):
        read_manifest(tmp_path)
