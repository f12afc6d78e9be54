"""A study runs each spec once under its budget, tabulates, and skips finished runs when started again."""
from hbnn.quant.experiment import TrainingSpec
from hbnn.quant.study import run_name, run_study, with_budget


def test_study_runs_tabulates_and_resumes(tmp_path):
    specs = with_budget([TrainingSpec(model="resnet14", precision=p, options={"shortcuts": "none"},
                                      dataset="synthetic") for p in ("fp", "binary")], seconds=0.5)
    rows = run_study(specs, tmp_path, jobs=2, progress=False)
    assert [row["precision"] for row in rows] == ["fp", "binary"]
    assert rows[1]["bops"] > 0 and rows[0]["bops"] == 0
    assert rows[1]["memory_bits"] < rows[0]["memory_bits"]
    table = (tmp_path / "results.md").read_text().splitlines()
    assert len(table) == 4 and "| resnet14 | binary | shortcuts=none |" in table[3]
    # Finished runs are read back, not retrained: deleting a checkpoint does not bring it back.
    (tmp_path / f"{run_name(specs[0])}.pt").unlink()
    again = run_study(specs, tmp_path, jobs=2, progress=False)
    assert again == rows and not (tmp_path / f"{run_name(specs[0])}.pt").exists()
