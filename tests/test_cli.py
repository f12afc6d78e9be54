"""The `hbnn` command line: the four steps chained, and errors that name what is wrong."""
import json
import re

import pytest

from hbnn.cli import main
from hbnn.quant import load_checkpoint


def test_train_compile_sim_report(tmp_path, capsys):
    checkpoint = tmp_path / "model.pt"
    assert main(["train", "--dataset", "synthetic", "--hidden", "16", "--epochs", "2", "--quiet",
                 "--out", str(checkpoint)]) == 0
    assert checkpoint.exists() and json.loads(checkpoint.with_suffix(".history.json").read_text())
    build = tmp_path / "build"
    assert main(["compile", str(checkpoint), "--out", str(build), "--folding", "fc1=2x4"]) == 0
    assert main(["sim", str(build), "--count", "12"]) == 0
    verdict = json.loads((build / "sim.json").read_text())
    assert verdict["bit_exact"] and verdict["cycles_match"] and verdict["mismatches"] == 0
    assert main(["report", str(build)]) == 0
    assert json.loads((build / "report.json").read_text())["luts"] > 0
    out = capsys.readouterr().out
    assert "mismatches" in out and "bit-exact" in out and "LUT (logic)" in out


def test_corrupt_checkpoint_is_named(tmp_path, capsys):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    assert main(["compile", str(bad), "--out", str(tmp_path / "b")]) == 2
    assert f"hbnn compile: error: checkpoint {bad}" in capsys.readouterr().err


def test_bad_folding_is_named(tmp_path, tiny_checkpoint, capsys):
    assert main(["compile", str(tiny_checkpoint), "--out", str(tmp_path / "b"), "--folding", "fc1=7x1"]) == 2
    err = capsys.readouterr().err
    assert "layer 'fc1'" in err and "pe=7 does not divide its 24 output rows" in err


def test_malformed_folding_option():
    with pytest.raises(SystemExit):
        main(["compile", "x.pt", "--folding", "fc1"])


def test_sim_on_a_folder_that_is_not_a_build(tmp_path, capsys):
    assert main(["sim", str(tmp_path)]) == 2
    assert "is not an hbnn build folder" in capsys.readouterr().err


def test_train_a_residual_zoo_model_resume_and_compile_it(tmp_path, capsys):
    checkpoint = tmp_path / "resnet14.pt"
    arguments = ["train", "--dataset", "synthetic", "--model", "resnet14", "--precision", "hybrid",
                 "--shortcuts", "hybrid", "--epochs", "1", "--quiet", "--out", str(checkpoint)]
    assert main(arguments) == 0
    history = checkpoint.with_suffix(".history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,train_acc,test_acc,seconds" and len(history) == 2
    metrics = json.loads(checkpoint.with_suffix(".metrics.json").read_text())
    assert metrics["totals"]["bops"] > 0  # the hybrid's binary convolutions
    assert main(arguments + ["--resume"]) == 0  # a finished run resumes to itself
    assert len(checkpoint.with_suffix(".history.csv").read_text().splitlines()) == 2
    assert main(arguments[:-5] + ["--epochs", "2", "--quiet", "--out", str(checkpoint), "--resume"]) == 2
    assert "settings differ (saved, now): {'epochs': (1, 2)}" in capsys.readouterr().err
    assert main(["compile", str(checkpoint), "--out", str(tmp_path / "b")]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    # shortcuts=hybrid: block 2's shortcut is the only residual add, and its short branch gets the bypass FIFO
    assert [add["name"] for add in manifest["residual_adds"]] == ["block2.add.sum"]
    assert manifest["residual_adds"][0]["bypass_fifos"]


def test_select_writes_a_plan_and_plan_show_reads_it(tmp_path, capsys):
    checkpoint = tmp_path / "cresnet20.pt"
    assert main(["train", "--dataset", "synthetic", "--model", "cresnet20", "--epochs", "1", "--quiet",
                 "--out", str(checkpoint)]) == 0
    plan = tmp_path / "plan.json"
    assert main(["select", str(checkpoint), "--method", "rear", "--budget", "flops:0.5", "--calibration", "32",
                 "--out", str(plan)]) == 0
    saved = json.loads(plan.read_text())
    assert saved["selection"]["method"] == "rear" and saved["selection"]["cost"] <= saved["selection"]["limit"]
    assert saved["layers"]["stage3.2.conv2"] == "binary" and saved["layers"]["fc"] == "int8"
    capsys.readouterr()
    assert main(["plan", "show", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "selected by rear under budget flops:0.5" in out and "fully binarized" in out and "total" in out
    hybrid = tmp_path / "hybrid.pt"
    assert main(["train", "--dataset", "synthetic", "--plan", str(plan), "--epochs", "1", "--quiet",
                 "--out", str(hybrid)]) == 0
    trained = json.loads(hybrid.with_suffix(".metrics.json").read_text())
    assert trained["totals"]["flops"] == saved["selection"]["cost"]  # the planned network, as budgeted
    # A hardware budget on a conv network prices it as hbnn compile builds it for the board.
    assert main(["select", str(checkpoint), "--method", "front", "--budget", "dsps:100000", "--board", "kv260",
                 "--out", str(tmp_path / "p2.json")]) == 0
    assert re.search(r"cost [\d,]+ of 100,000 DSPs; 0 layer\(s\) binarized", capsys.readouterr().out)
    assert main(["select", str(checkpoint), "--method", "rear", "--budget", "flops:0.001", "--out",
                 str(tmp_path / "p3.json")]) == 2
    assert "over the budget" in capsys.readouterr().err


def test_train_defaults_to_the_binary_mlp_and_takes_its_other_variants(tmp_path, capsys):
    binary = tmp_path / "binary.pt"
    assert main(["train", "--dataset", "synthetic", "--hidden", "16", "--epochs", "1", "--quiet",
                 "--out", str(binary)]) == 0
    assert "training mlp 16-16-4 (binary, full precision int8)" in capsys.readouterr().out
    model, meta = load_checkpoint(binary)
    assert model.variant == "binary" and model.hidden == (16,) and meta["spec"]["hidden"] == [16]
    hybrid = tmp_path / "hybrid.pt"
    assert main(["train", "--dataset", "synthetic", "--precision", "hybrid", "--hidden", "16,8", "--epochs", "1",
                 "--quiet", "--out", str(hybrid)]) == 0
    model, _ = load_checkpoint(hybrid)
    assert {name: model.precision_of(name).name for name in model.binarizable_layers()} == \
        {"fc1": "int8", "fc2": "binary", "fc3": "int8"}
    capsys.readouterr()
    assert main(["train", "--dataset", "synthetic", "--precision", "ternary", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "t.pt")]) == 2
    assert "precision of mlp must be one of fp, hybrid, binary, not 'ternary'" in capsys.readouterr().err


def test_select_on_the_mlp_and_train_its_plan(tmp_path, capsys):
    fp = tmp_path / "fp.pt"
    assert main(["train", "--dataset", "synthetic", "--precision", "fp", "--hidden", "16,16,16", "--epochs", "1",
                 "--quiet", "--out", str(fp)]) == 0
    plan = tmp_path / "plan.json"
    assert main(["select", str(fp), "--method", "hbn", "--budget", "flops:0.9", "--calibration", "32",
                 "--out", str(plan)]) == 0
    saved = json.loads(plan.read_text())
    assert saved["model"]["name"] == "mlp" and saved["model"]["options"] == {"hidden": [16, 16, 16]}
    assert list(saved["layers"]) == ["fc1", "fc2", "fc3", "fc4"]
    assert saved["layers"]["fc1"] == saved["layers"]["fc4"] == "int8"
    assert saved["selection"]["cost"] <= saved["selection"]["limit"]
    hybrid = tmp_path / "hybrid.pt"
    assert main(["train", "--dataset", "synthetic", "--plan", str(plan), "--epochs", "1", "--quiet",
                 "--out", str(hybrid)]) == 0
    model, _ = load_checkpoint(hybrid)
    assert model.hidden == (16, 16, 16)
    assert {name: model.precision_of(name).name for name in model.binarizable_layers()} == saved["layers"]
    capsys.readouterr()
    # Selection starts from full precision: the planned network has binarized layers.
    assert main(["select", str(hybrid), "--method", "hbn", "--budget", "flops:0.9", "--out",
                 str(tmp_path / "again.json")]) == 2
    assert "selection starts from a network trained at full precision" in capsys.readouterr().err


def test_sweep_budgets_are_of_one_kind(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--budgets", "luts:1000,dsps:2"])
    assert "mixes budget kinds (dsps, luts)" in capsys.readouterr().err
