"""Checkpoints: exact round trip, and CheckpointError naming the file for anything else."""

import fractions
import os

import pytest
import torch

from hbnn.quant import CheckpointError, load_checkpoint, save_checkpoint
from hbnn.quant.models import build_model


def mlp(hidden=(12, 8), variant="binary"):
    """An mlp on 4x4 single-channel images, 4 classes."""
    return build_model("mlp", precision=variant, in_channels=1, num_classes=4, image_size=4, hidden=list(hidden))


def _trained_looking_model():
    torch.manual_seed(0)
    model = mlp()
    model.train()
    for _ in range(3):  # move the batch-norm running statistics away from their initial values
        model(torch.rand(32, 16))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return model.eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    model = _trained_looking_model()
    meta = {"dataset": "synthetic", "epochs": 3, "test_acc": 0.93, "history": [{"epoch": 1, "loss": 1.5}],
            "note": None, "ok": True}
    path = tmp_path / "runs" / "model.pt"
    save_checkpoint(path, model, meta)
    assert os.listdir(path.parent) == ["model.pt"]  # no leftover partial file

    loaded, loaded_meta = load_checkpoint(path)
    assert not loaded.training
    assert loaded_meta == meta
    assert loaded.config() == model.config()
    x = torch.rand(64, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert torch.equal(loaded.logit_scale, model.logit_scale)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.pt"
    with pytest.raises(CheckpointError, match=rf"{path}.*no such file"):
        load_checkpoint(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(os.urandom(256))
    with pytest.raises(CheckpointError, match=str(path)) as caught:
        load_checkpoint(path)
    assert isinstance(caught.value, ValueError)


def test_dict_without_format_key(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"state_dict": mlp(hidden=[2]).state_dict()}, path)
    with pytest.raises(CheckpointError, match=rf"{path}.*not an hbnn-checkpoint"):
        load_checkpoint(path)


class Exploit:
    """Unpickling this would call os.mkdir: a weights-only load must refuse it."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


def test_pickled_code_is_never_executed(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "was-executed"
    torch.save({"format": "hbnn-checkpoint", "version": 1, "meta": Exploit(str(marker))}, path)
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
    assert not marker.exists()


def test_pickled_arbitrary_class(tmp_path):
    path = tmp_path / "fraction.pt"
    model = mlp(hidden=[2])
    torch.save({"format": "hbnn-checkpoint", "version": 1, "model": model.config(),
                "state_dict": model.state_dict(), "meta": {"ratio": fractions.Fraction(1, 3)}}, path)
    with pytest.raises(CheckpointError, match=rf"{path}.*weights-only"):
        load_checkpoint(path)


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(version=2), "unsupported version 2"),
    (lambda p: p["model"].update(name="cnn"), "bad model config: unknown model 'cnn'"),
    (lambda p: p["model"]["options"].update(hidden=[0]), r"bad model config: hidden\[0\] must be a positive"),
    (lambda p: p.update(state_dict=mlp(hidden=(9, 8)).state_dict()), "weights do not fit"),
    (lambda p: p["state_dict"].pop("logit_scale"), "logit_scale"),
    (lambda p: p.pop("meta"), "'meta' is missing"),
])
def test_invalid_contents(tmp_path, change, message):
    path = tmp_path / "edited.pt"
    save_checkpoint(path, mlp(), {})
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=rf"{path}.*{message}"):
        load_checkpoint(path)


@pytest.mark.parametrize("meta, message", [
    ({"acc": torch.tensor(0.5)}, r"meta\['acc'\] is a Tensor"),
    ({"loss": float("nan")}, "NaN"),
    ({1: "x"}, "keys must be strings"),
    ([1, 2], "meta must be a dict"),
])
def test_meta_must_be_json_able(tmp_path, meta, message):
    with pytest.raises(TypeError, match=message):
        save_checkpoint(tmp_path / "m.pt", mlp(hidden=[2]), meta)
    assert not (tmp_path / "m.pt").exists()


def test_a_binary_mlp_checkpoint_of_the_retired_class_says_to_retrain(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": "hbnn-checkpoint", "version": 1, "meta": {}, "state_dict": {},
                "model": {"kind": "binary_mlp", "sizes": [64, 128, 96, 10], "input_threshold": 0.5}}, path)
    with pytest.raises(CheckpointError, match=rf"{path}: model kind 'binary_mlp' .* no longer supported; retrain "
                                              r"it as the zoo's mlp: hbnn train --model mlp --precision binary "
                                              r"--hidden 128,96$"):
        load_checkpoint(path)
