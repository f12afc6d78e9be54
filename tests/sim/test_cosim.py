"""The whole chain in Verilator: every output integer equals PyTorch's, and measured cycles equal the model's."""
import json

import numpy as np
import pytest
import torch

from hbnn.sim.design import Design
from hbnn.compiler.build import read_manifest
from hbnn.sim.verify import input_frames, mismatching, torch_outputs, verify_build


def test_trained_model_is_bit_exact_and_cycles_match(tiny_build, synthetic):
    count = 60
    result = verify_build(tiny_build, synthetic.test_x[:count], synthetic.test_y[:count], backpressure=True, seed=1,
                          crosscheck=8)
    assert result.images == count
    assert result.outputs_compared == 2 * count * synthetic.classes
    assert result.mismatches == 0  # every float32 output of PyTorch, from the hardware's integers and exponent
    assert result.torch_accuracy == result.hardware_accuracy
    assert result.torch_accuracy > 1.5 / synthetic.classes  # it learned something: the comparison is not trivial
    assert result.latency == result.predicted_latency
    assert result.gaps_match and result.initiation_interval == result.predicted_initiation_interval
    assert result.engine == "verilator" and result.crosscheck_images == 8 and result.engines_agree
    assert result.passed


def test_cocotb_engine_alone_gives_the_same_verdict(tiny_build, synthetic):
    count = 12
    result = verify_build(tiny_build, synthetic.test_x[:count], synthetic.test_y[:count], engine="cocotb", seed=1)
    assert result.engine == "cocotb" and result.engines_agree is None
    assert result.mismatches == 0 and result.cycles_match


def test_a_wrong_expectation_is_detected(tiny_build, synthetic):
    """The comparison is real: the hardware outputs differ from a model with one weight changed."""
    from hbnn.quant import load_checkpoint

    design = Design.from_build(tiny_build)
    model, _ = load_checkpoint(tiny_build / "model.pt")
    x = synthetic.test_x[:20]
    manifest = read_manifest(tiny_build)
    stimulus = design.stimulus(input_frames(model, x, design, "fc1"))
    run = design.run(stimulus, name="perturbed")
    hardware = design.output.unpack(run.outputs).reshape(stimulus.images, -1)
    assert mismatching(hardware, manifest["output"]["exponent"], torch_outputs(model, x)) == 0
    with torch.no_grad():
        model.fc3.weight[0].neg_()
    assert mismatching(hardware, manifest["output"]["exponent"], torch_outputs(model, x)) > 0


def test_sim_json_and_exit_code_from_the_command(tiny_build, synthetic, capsys):
    from hbnn.cli import main

    assert main(["sim", str(tiny_build), "--count", "16", "--crosscheck", "4", "--quiet", "--waves", "2",
                 "--activity"]) == 0
    record = json.loads((tiny_build / "sim.json").read_text())
    assert record["bit_exact"] and record["cycles_match"] and record["engines_agree"]
    assert record["images"] == 16 and record["crosscheck_images"] == 4
    printed = capsys.readouterr().out
    assert "cocotb cross-check" in printed and "switching activity" in printed
    assert record["waves"] == "waves.fst" and (tiny_build / "waves.fst").stat().st_size > 0
    window = record["activity"]
    interval = record["predicted_initiation_interval"]
    assert window["first_image"] >= 1 and window["first_image"] + window["images"] <= 16
    assert window["cycles"][1] - window["cycles"][0] == window["images"] * interval
    duration = 10 * window["images"] * interval
    assert f"(DURATION {duration})" in (tiny_build / window["file"]).read_text()
    manifest = json.loads((tiny_build / "manifest.json").read_text())
    stages = window["stages"]
    assert [entry["node"] for entry in stages] == [stage["node"] for stage in manifest["cycles"]["stages"]]
    layers = [entry for entry in stages if entry["component"] == "Mvau"]
    assert len(layers) == 3 and all(entry["bits"] > 0 and 0 < entry["toggle_rate"] < 1 for entry in layers)


def test_a_stimulus_of_the_wrong_shape_or_range_is_refused(tiny_build):
    design = Design.from_build(tiny_build)
    transfers, elements = design.input.transfers, design.input.elements
    with pytest.raises(ValueError, match=rf"build .* takes images of shape \(transfers, elements\) = \({transfers}, "
                                         rf"{elements}\).*stimulus has shape \({transfers}, 7\)"):
        design.stimulus(np.ones((3, transfers, 7), dtype=np.int64))
    with pytest.raises(ValueError, match=rf"stimulus has shape \({transfers + 1}, "):
        design.stimulus(np.ones((3, transfers + 1, elements), dtype=np.int64))
    with pytest.raises(ValueError, match=r"signed 8-bit elements must lie in -128..127"):
        design.stimulus(np.full((3, transfers, elements), 200, dtype=np.int64))
