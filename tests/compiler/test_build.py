"""The build folder: contents, manifest, and byte-identical output for the same model and options."""
import filecmp
import json

import numpy as np
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


def test_manifest_describes_layers_and_memories(tiny_build):
    manifest = read_manifest(tiny_build)
    assert manifest["top"] == "hbnn_top" and (tiny_build / manifest["verilog"]).exists()
    first, last = manifest["layers"][0], manifest["layers"][-1]
    assert (first["pe"], first["simd"]) == (1, 1)
    assert first["weights"]["depth"] == first["in_features"] * first["out_features"]
    lines = (tiny_build / first["weights"]["file"]).read_text().split()
    assert len(lines) == first["weights"]["depth"] and set("".join(lines)) <= set("01")
    assert "thresholds" not in last and last["output"]["type"] == "int"
    assert manifest["cycles"]["initiation_interval"] == max(l["cycles"] for l in manifest["cycles"]["layers"])
    json.dumps(manifest)  # plain JSON all the way down
    assert str(tiny_build) not in (tiny_build / "manifest.json").read_text()


def test_missing_folder_is_a_clear_error(tmp_path):
    try:
        read_manifest(tmp_path)
    except FileNotFoundError as error:
        assert "not an hbnn build folder" in str(error)
    else:
        raise AssertionError("read_manifest accepted an empty folder")


def test_a_build_folder_of_another_manifest_version_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "hbnn-build", "version": 1}))
    with pytest.raises(ValueError, match="version-1 build folder; this hbnn reads version 2: compile the checkpoint"):
        read_manifest(tmp_path)
