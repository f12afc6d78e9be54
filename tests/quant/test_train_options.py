"""Training options: resume gives the uninterrupted result, L1 and schedules act, image models get augmented batches."""
import pytest
import torch
from torch import nn

from hbnn.quant import load_dataset, train
from hbnn.quant.augment import Augmentation
from hbnn.quant.models import build_model


def tiny_cnn():
    torch.manual_seed(7)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(4 * 16, 4))


def _stop_after(epoch):
    def log(record):
        if record["epoch"] == epoch:
            raise KeyboardInterrupt
    return log


def test_resume_continues_to_the_same_weights(tmp_path):
    dataset = load_dataset("synthetic")
    augment = Augmentation(flip=True, crop_padding=1, rotation_degrees=0.0, mean=None, std=None)
    straight = tiny_cnn()
    history = train(straight, dataset, epochs=4, seed=3, progress=False, augmentation=augment)

    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_cnn(), dataset, epochs=4, seed=3, progress=False, augmentation=augment, state_path=state,
              log=_stop_after(2))
    resumed_model = tiny_cnn()
    resumed = train(resumed_model, dataset, epochs=4, seed=3, progress=False, augmentation=augment,
                    state_path=state, resume=True)
    without_time = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert without_time(resumed) == without_time(history)
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed_model.state_dict()[name]), name


def test_resume_refuses_changed_settings_and_missing_state(tmp_path):
    dataset = load_dataset("synthetic")
    state = tmp_path / "state.pt"
    train(tiny_cnn(), dataset, epochs=1, seed=0, progress=False, state_path=state)
    with pytest.raises(ValueError, match=r"settings differ.*'lr'"):
        train(tiny_cnn(), dataset, epochs=1, lr=0.5, seed=0, progress=False, state_path=state, resume=True)
    with pytest.raises(FileNotFoundError, match="no training state"):
        train(tiny_cnn(), dataset, epochs=1, progress=False, state_path=tmp_path / "none.pt", resume=True)


def test_l1_shrinks_weights_and_schedules_are_checked():
    dataset = load_dataset("synthetic")
    plain, sparse = tiny_cnn(), tiny_cnn()
    train(plain, dataset, epochs=2, seed=0, progress=False, schedule="constant")
    train(sparse, dataset, epochs=2, seed=0, progress=False, schedule="constant", l1=1e-2)
    norm = lambda model: sum(p.abs().sum().item() for p in model.parameters() if p.dim() > 1)  # noqa: E731
    assert norm(sparse) < norm(plain)
    history = train(tiny_cnn(), dataset, epochs=2, seed=0, progress=False, schedule="step")
    assert len(history) == 2
    with pytest.raises(ValueError, match="schedule must be one of cosine, step, constant"):
        train(tiny_cnn(), dataset, epochs=1, progress=False, schedule="linear")


def test_mlp_gets_flat_pixels_and_no_augmentation():
    dataset = load_dataset("synthetic")
    model = build_model("mlp", precision="fp", in_channels=1, num_classes=4, image_size=4, hidden=[8])
    shapes = []
    model.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))

    def augmentation(x, generator):
        raise AssertionError("a flat-input model must not be augmented")

    history = train(model, dataset, epochs=1, progress=False, augmentation=augmentation)
    assert history[0]["test_acc"] > 0.0
    assert shapes and all(len(shape) == 2 and shape[1] == 16 for shape in shapes)


def test_time_budget_stops_training_and_is_exclusive_with_resume(tmp_path):
    dataset = load_dataset("synthetic")
    history = train(tiny_cnn(), dataset, epochs=1000, seed=0, progress=False, time_budget=0.3)
    assert 1 <= len(history) < 1000
    assert history[-1]["train_seconds_total"] >= 0.3
    with pytest.raises(ValueError, match="without resume"):
        train(tiny_cnn(), dataset, epochs=2, progress=False, time_budget=1.0, resume=True, state_path=tmp_path / "s")


def test_evaluation_applies_the_augmentation_normalization():
    """Training on normalized images and testing on raw ones would report chance: the test images get the same
    deterministic preprocessing."""
    dataset = load_dataset("synthetic")
    augment = Augmentation(flip=False, crop_padding=0, rotation_degrees=0.0, mean=(5.0,), std=(0.01,))
    history = train(tiny_cnn(), dataset, epochs=3, seed=0, progress=False, augmentation=augment)
    assert history[-1]["test_acc"] > 0.9
    assert abs(history[-1]["test_acc"] - history[-1]["train_acc"]) < 0.2
