"""Precision plans: built from a model, applied to a model definition, saved and read back as JSON."""
import json

import pytest
from torch import nn

from hbnn.quant.models import build_model
from hbnn.quant.plan import PlanError, PrecisionPlan, role_of
from hbnn.quant.precision import BINARY, INT8, WEIGHT_BINARY, abc


def tiny(precision="fp", **options):
    return build_model("cresnet20", precision=precision, in_channels=1, num_classes=10, image_size=8, **options)


def test_plan_of_a_model_names_every_layer_in_forward_order():
    model = tiny("binary")
    plan = PrecisionPlan.from_model(model)
    assert list(plan.layers) == model.binarizable_layers()
    assert plan.layers["stem.conv"] == "int8" and plan.layers["stage1.0.conv1"] == "binary"
    assert "layer_precisions" not in plan.model["options"]


def test_applying_a_plan_gives_the_hybrid_network():
    plan = PrecisionPlan.from_model(tiny()).with_layers({"stage1.0.conv2": BINARY, "stage2.1.conv1": "weight-binary",
                                                         "stage3.0.conv1": abc(2, 1)})
    model = plan.build_model()
    assert model.precision_of("stage1.0.conv2") == BINARY
    assert model.precision_of("stage2.1.conv1") == WEIGHT_BINARY
    assert model.precision_of("stage3.0.conv1") == abc(2, 1)
    assert model.precision_of("stage1.0.conv1") == INT8
    assert isinstance(model.stage1[0].act1, nn.Identity)  # conv2 binarizes its input: no ReLU in front
    assert PrecisionPlan.from_model(model).layers == plan.layers


def test_json_round_trip(tmp_path):
    plan = PrecisionPlan.from_model(tiny()).with_layers(
        {"stage1.0.conv1": BINARY}, selection={"method": "front", "budget": "flops:0.5", "scores": {"a": 1.5}})
    path = plan.save(tmp_path / "plan.json")
    again = PrecisionPlan.load(path)
    assert again == plan
    assert json.loads(path.read_text())["format"] == "hbnn-precision-plan"
    assert path.read_text() == again.to_json()  # byte-identical when written again


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format="other"), "not an hbnn precision plan"),
    (lambda d: d.update(version=7), "plan version 7"),
    (lambda d: d["layers"].update({"stage1.0.conv1": "half"}), "plan layer 'stage1.0.conv1'.*unknown precision 'half'"),
    (lambda d: d["layers"].update({"stage1.0.conv1": "Binary"}), "write the precision as 'binary'"),
    (lambda d: d["layers"].pop("fc"), r"no precision for layer\(s\) fc"),
    (lambda d: d["layers"].update({"stage9.conv": "binary"}), "unknown layer 'stage9.conv'"),
    (lambda d: d.update(extra=1), "unknown key"),
])
def test_bad_plan_files_are_named(tmp_path, edit, message):
    data = PrecisionPlan.from_model(tiny()).as_dict()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanError, match=message):
        PrecisionPlan.load(path)


def test_not_json_and_missing_file(tmp_path):
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(PlanError, match="not JSON"):
        PrecisionPlan.load(tmp_path / "x.json")
    with pytest.raises(PlanError, match="no such file"):
        PrecisionPlan.load(tmp_path / "none.json")


def test_table_totals_match_metrics():
    from hbnn.quant.metrics import measure

    plan = PrecisionPlan.from_model(tiny("binary"))
    table = plan.table()
    metrics = measure(plan.build_model(), (1, 8, 8))
    total = table.splitlines()[-1].split()
    assert total[0] == "total" and total[1] == f"{metrics.memory_bits:,}" and total[3] == f"{metrics.flops:,.0f}"
    assert "fully binarized" in table and "full precision" in table


def test_roles():
    assert role_of(INT8) == "full precision" and role_of(BINARY) == "fully binarized"
    assert role_of(WEIGHT_BINARY) == "weight-binarized" and role_of(abc(3, 2)) == "ABC(3,2)"
