"""A study runs each spec once under its budget, tabulates, and skips finished runs when started again."""
from hbnn.quant.experiment import TrainingSpec
from hbnn.quant.study import markdown_table, run_name, run_study, with_budget, with_seeds


def test_study_runs_tabulates_and_resumes(tmp_path):
    specs = with_budget([TrainingSpec(model="resnet14", precision=p, options={"shortcuts": "none"},
                                      dataset="synthetic") for p in ("fp", "binary")], seconds=0.5)
    rows = run_study(specs, tmp_path, jobs=2, progress=False)
    assert [row["precision"] for row in rows] == ["fp", "binary"]
    assert rows[1]["bops"] > 0 and rows[0]["bops"] == 0
    assert rows[1]["memory_bits"] < rows[0]["memory_bits"]
    table = (tmp_path / "results.md").read_text().splitlines()
    assert len(table) == 4 and "| resnet14 | binary | shortcuts=none |" in table[3]
    assert rows[0]["seed"] == 0
    # Finished runs are read back, not retrained: deleting a checkpoint does not bring it back.
    (tmp_path / f"{run_name(specs[0])}.pt").unlink()
    again = run_study(specs, tmp_path, jobs=2, progress=False)
    assert again == rows and not (tmp_path / f"{run_name(specs[0])}.pt").exists()


def test_a_network_trained_with_several_seeds_is_one_row_with_each_seed_and_the_mean():
    specs = with_seeds([TrainingSpec(model="resnet14", precision="fp", dataset="synthetic")], [0, 1])
    assert [spec.seed for spec in specs] == [0, 1] and run_name(specs[0]) != run_name(specs[1])
    cost = {"model": "resnet14", "precision": "fp", "options": "{}", "full_precision": "float", "dataset": "d",
            "memory_bits": 10, "effective_params_32": 1, "flops": 5, "bops": 0}
    rows = [dict(cost, seed=1, test_accuracy=0.5, epochs_run=2, train_seconds=60.2),
            dict(cost, seed=0, test_accuracy=0.75, epochs_run=3, train_seconds=60.1)]
    lines = markdown_table(rows).splitlines()
    assert len(lines) == 3
    assert lines[2] == "| resnet14 | fp | - | 0.6250 | 0.7500 / 0.5000 | 10 | 1 | 5 | 0 | 3 / 2 | 60 |"
