"""Training: learns, is deterministic, reports per-epoch records."""

import pytest
import torch

from hbnn.quant import evaluate, load_dataset, train
from hbnn.quant.models import build_model


def binary_mlp(side, hidden, classes):
    """The binary mlp on side x side single-channel images."""
    return build_model("mlp", precision="binary", in_channels=1, num_classes=classes, image_size=side,
                       hidden=list(hidden))


def test_short_training_on_digits_beats_chance():
    dataset = load_dataset("digits")
    torch.manual_seed(0)
    model = binary_mlp(8, [64], 10)
    history = train(model, dataset, epochs=4, seed=0, progress=False)
    assert history[-1]["test_acc"] > 0.6  # chance is 0.1
    assert evaluate(model, dataset.test_x, dataset.test_y) == history[-1]["test_acc"]
    assert not model.training


def _train_synthetic(seed, log=None):
    dataset = load_dataset("synthetic")
    torch.manual_seed(123)
    model = binary_mlp(4, [32], 4)
    history = train(model, dataset, epochs=3, batch_size=32, seed=seed, progress=False, log=log)
    return model, history


def test_training_on_synthetic_records_every_epoch():
    logged = []
    model, history = _train_synthetic(seed=0, log=logged.append)
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert logged == history
    for record in history:
        assert set(record) == {"epoch", "loss", "train_acc", "test_acc", "seconds"}
        assert 0.0 <= record["train_acc"] <= 1.0 and record["seconds"] >= 0.0
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["test_acc"] > 0.9  # separable prototypes; chance is 0.25


def test_training_is_deterministic_for_a_seed():
    model_a, history_a = _train_synthetic(seed=5)
    model_b, history_b = _train_synthetic(seed=5)
    drop_time = lambda history: [{k: v for k, v in r.items() if k != "seconds"} for r in history]  # noqa: E731
    assert drop_time(history_a) == drop_time(history_b)
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert all(torch.equal(state_a[name], state_b[name]) for name in state_a)
    _, history_c = _train_synthetic(seed=6)  # a different shuffle gives a different run
    assert drop_time(history_c) != drop_time(history_a)


def test_evaluate_restores_training_mode_and_counts_correct_argmax():
    model = binary_mlp(4, [8], 4)
    x = torch.rand(10, 16)
    model.eval()
    predictions = model(x).argmax(dim=1)
    y = predictions.clone()
    y[:3] = (y[:3] + 1) % 4
    model.train()
    assert evaluate(model, x, y) == pytest.approx(0.7)
    assert model.training


def test_mismatched_dataset_and_bad_arguments_are_rejected():
    dataset = load_dataset("synthetic")
    with pytest.raises(ValueError, match=r"16 features but the model's input width .* is 64"):
        train(binary_mlp(8, [8], 4), dataset, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"4 classes but the model's num_classes is 10"):
        train(binary_mlp(4, [8], 10), dataset, epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train(binary_mlp(4, [8], 4), dataset, epochs=0, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        train(binary_mlp(4, [8], 4), dataset, epochs=1, batch_size=1, progress=False)


def test_progress_bar_shows_epoch_and_metrics(capsys):
    dataset = load_dataset("synthetic")
    train(binary_mlp(4, [8], 4), dataset, epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "test=" in err
    train(binary_mlp(4, [8], 4), dataset, epochs=1, progress=False)
    assert capsys.readouterr().err == ""
