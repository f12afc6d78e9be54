"""The sweep: every (method, budget) point once, results and plot written, and resume without redoing points."""
import json
from dataclasses import replace

import pytest

from hbnn.quant.plan import PrecisionPlan
from hbnn.quant.selection import sweep
from hbnn.quant.selection.sweep import SweepSpec, markdown_table, run_sweep

SPEC = SweepSpec(model="cresnet20", dataset="synthetic", methods=("front", "rear"), budgets=(0.01, 0.5),
                 pretrain_epochs=1, finetune_epochs=1, train_subset=64, test_subset=40, calibration=16)


def test_sweep_writes_every_point_and_resumes(tmp_path, monkeypatch):
    rows = run_sweep(SPEC, tmp_path, progress=False)
    assert [row["point"] for row in rows] == ["front-0.01", "front-0.5", "rear-0.01", "rear-0.5"]
    unreachable = [row for row in rows if row["budget"] == 0.01]
    assert all(row["status"] == "unreachable" and "over the budget" in row["message"] for row in unreachable)
    for row in (rows[1], rows[3]):
        assert row["status"] == "ok" and 0 <= row["test_accuracy"] <= 1 and row["flops_fraction"] <= 0.5
    front = PrecisionPlan.load(tmp_path / "plans" / "front-0.5.json")
    rear = PrecisionPlan.load(tmp_path / "plans" / "rear-0.5.json")
    assert front.selection["method"] == "front" and front.binarized()[0] == "stage1.0.conv1"
    assert rear.binarized()[-1] == "stage3.2.conv2"
    assert (tmp_path / "accuracy_vs_budget.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "results.csv").read_text().splitlines()[0].startswith("point,method,budget,status")
    assert "| front | unreachable |" in (tmp_path / "results.md").read_text()

    (tmp_path / "points" / "rear-0.5.json").unlink()
    done = []
    run_point = sweep._run_point
    monkeypatch.setattr(sweep, "_run_point", lambda arguments: done.append(arguments[2:4]) or run_point(arguments))
    again = run_sweep(SPEC, tmp_path, progress=False)
    assert done == [("rear", 0.5)]  # only the missing point is redone
    assert again[:3] == rows[:3]
    assert json.loads((tmp_path / "points" / "rear-0.5.json").read_text())["status"] == "ok"

    with pytest.raises(ValueError, match="other settings.*finetune_epochs"):
        run_sweep(replace(SPEC, finetune_epochs=2), tmp_path, progress=False)


def test_spec_errors():
    with pytest.raises(ValueError, match="unknown method 'best'"):
        SweepSpec(methods=("best",))
    with pytest.raises(ValueError, match=r"fraction in \(0, 1\]"):
        SweepSpec(budgets=(1.5,))
    with pytest.raises(ValueError, match="slimming .* finetune_epochs >= 2"):
        SweepSpec(methods=("slimming",), finetune_epochs=1)


def test_markdown_table():
    rows = [{"method": "a", "budget": 0.1, "status": "ok", "test_accuracy": 0.5, "selection_seconds": 2.0},
            {"method": "a", "budget": 0.2, "status": "unreachable"},
            {"method": "b", "budget": 0.2, "status": "ok", "test_accuracy": 0.75, "selection_seconds": 1.0}]
    table = markdown_table(rows, base_accuracy=0.9)
    assert "| method | 10% FLOPs | 20% FLOPs | mean selection s |" in table
    assert "| a | 0.5000 | unreachable | 2.00 |" in table and "| b |  | 0.7500 | 1.00 |" in table
    assert "0.9000" in table


def test_a_hardware_budget_sweep_prices_and_synthesizes_each_point(tmp_path):
    spec = SweepSpec(model="mlp", dataset="synthetic", methods=("front",), budgets=(10_000_000,),
                     budget_kind="luts", target_cycles=4096, synthesize=True,
                     pretrain_epochs=1, finetune_epochs=1, train_subset=64, test_subset=40, calibration=16)
    row, = run_sweep(spec, tmp_path, progress=False)
    assert row["status"] == "ok" and row["cost"] == row["luts_estimate"] <= 10_000_000
    assert row["luts_synthesized"] > 0 and row["dsps"] > 0  # the first and last layers stay int8
    assert abs(row["luts_estimate"] - row["luts_synthesized"]) / row["luts_synthesized"] < 1  # same design, roughly
    table = (tmp_path / "results.md").read_text()
    assert "| method | 10,000,000 LUTs | mean selection s |" in table
    assert f"| front-1e+07 | 0 | {row['luts_estimate']:,} | {row['luts_synthesized']:,} |" in table
    assert (tmp_path / "accuracy_vs_budget.png").read_bytes()[:4] == b"\x89PNG"


def test_hardware_spec_errors():
    with pytest.raises(ValueError, match="apply to hardware budgets"):
        SweepSpec(budgets=(0.5,), board="pynq-z2")
    with pytest.raises(ValueError, match="slimming prunes to a FLOPs budget"):
        SweepSpec(methods=("slimming",), budgets=(1000,), budget_kind="luts", finetune_epochs=2)
    with pytest.raises(ValueError, match="unknown budget kind 'watts'"):
        SweepSpec(budget_kind="watts")


def _png_width(path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")  # IHDR: width is the first field


def test_a_hardware_sweep_plot_adds_accuracy_against_luts(tmp_path):
    """Hardware budgets: a second panel puts each point at its LUTs (Yosys' where synthesized); FLOPs: one panel."""
    hardware = [{"method": "front", "budget": 30000.0, "status": "ok", "test_accuracy": 0.6, "luts_estimate": 9000,
                 "luts_synthesized": 8000},
                {"method": "rear", "budget": 30000.0, "status": "ok", "test_accuracy": 0.7, "luts_estimate": 12000},
                {"method": "rear", "budget": 10000.0, "status": "unreachable"}]
    flops = [{"method": "front", "budget": 0.5, "status": "ok", "test_accuracy": 0.6}]
    both = sweep.plot_sweep(hardware, tmp_path / "hardware.png", kind="cycles", base_accuracy=0.8)
    one = sweep.plot_sweep(flops, tmp_path / "flops.png")
    assert _png_width(both) == 2 * _png_width(one)
    assert sweep.plot_sweep(hardware, tmp_path / "again.png", kind="cycles",
                            base_accuracy=0.8).read_bytes() == both.read_bytes()  # deterministic
