"""CIFAR-10/100 loading from tiny batch files in the real pickle format, and refusal of unsafe pickles."""

import io
import os
import pickle
import pickletools
import shlex
import struct

import numpy as np
import pytest
import torch

from hbnn.quant.cifar import UnsafePickleError
from hbnn.quant.data import DatasetNotFoundError, load_dataset


class Python2StylePickler(pickle._Pickler):
    """Writes bytes and str as Python 2 str (BINSTRING), as cPickle did when the CIFAR batches were made."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str
    dispatch[str] = save_python2_str


def python2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    Python2StylePickler(buffer, protocol=2).dump(obj)
    # numpy 2 names its module numpy._core; the original files, written by numpy 1, say numpy.core.
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def globals_named(raw: bytes) -> set[str]:
    return {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(raw) if op.name == "GLOBAL"}


def cifar_batch(rng, count, label_key, classes, extra=None):
    batch = {b"batch_label": b"training batch 1 of 5",
             label_key: [int(label) for label in rng.integers(0, classes, count)],
             b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
             b"filenames": [f"image_{i}.png".encode() for i in range(count)]}
    batch.update(extra or {})
    return batch


def write_cifar10(folder, train_counts=(2, 1, 3, 1, 2), test_count=3, dumps=python2_pickle):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {f"data_batch_{i}": cifar_batch(rng, count, b"labels", 10) for i, count in enumerate(train_counts, 1)}
    batches["test_batch"] = cifar_batch(rng, test_count, b"labels", 10)
    for name, batch in batches.items():
        (folder / name).write_bytes(dumps(batch))
    return batches


def write_cifar100(folder, train_count=4, test_count=2):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {name: cifar_batch(rng, count, b"fine_labels", 100,
                                 {b"coarse_labels": [int(c) for c in rng.integers(0, 20, count)]})
               for name, count in (("train", train_count), ("test", test_count))}
    for name, batch in batches.items():
        (folder / name).write_bytes(python2_pickle(batch))
    return batches


def test_written_batches_use_the_original_format(tmp_path):
    batches = write_cifar10(tmp_path)
    raw = (tmp_path / "data_batch_1").read_bytes()
    assert raw.startswith(b"\x80\x02}")  # protocol 2, a dict
    assert globals_named(raw) == {"numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype"}
    loaded = pickle.loads(raw, encoding="bytes")  # our own file, so plain pickle is fine here
    assert np.array_equal(loaded[b"data"], batches["data_batch_1"][b"data"])


@pytest.mark.parametrize("root_is_parent", [True, False])
def test_load_cifar10(tmp_path, root_is_parent):
    folder = tmp_path / "cifar-10-batches-py"
    batches = write_cifar10(folder)
    dataset = load_dataset("cifar10", tmp_path if root_is_parent else folder)
    assert dataset.name == "cifar10" and dataset.classes == 10
    assert dataset.image_shape == (3, 32, 32) and dataset.features == 3072
    assert dataset.train_x.shape == (9, 3072) and dataset.test_x.shape == (3, 3072)
    assert dataset.train_images.shape == (9, 3, 32, 32) and dataset.test_images.shape == (3, 3, 32, 32)
    assert dataset.train_x.dtype == torch.float32 and dataset.train_y.dtype == torch.int64
    train_data = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    assert np.array_equal(dataset.train_x.numpy(), train_data.astype(np.float32) / 255)  # batches in order 1..5
    assert dataset.train_y.tolist() == sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    assert dataset.test_y.tolist() == batches["test_batch"][b"labels"]
    # Rows are 1024 red, then green, then blue bytes, each plane row by row.
    image = batches["test_batch"][b"data"][1]
    assert float(dataset.test_images[1, 2, 5, 7]) == image[2 * 1024 + 5 * 32 + 7] / np.float32(255)


def test_load_cifar100_uses_fine_labels(tmp_path):
    batches = write_cifar100(tmp_path / "cifar-100-python")
    for root in (tmp_path, tmp_path / "cifar-100-python"):
        dataset = load_dataset("cifar100", root)
        assert dataset.name == "cifar100" and dataset.classes == 100 and dataset.image_shape == (3, 32, 32)
        assert dataset.train_images.shape == (4, 3, 32, 32) and dataset.test_x.shape == (2, 3072)
        assert dataset.train_y.tolist() == batches["train"][b"fine_labels"]
        assert np.array_equal(dataset.test_x.numpy(), batches["test"][b"data"].astype(np.float32) / 255)


def test_batches_resaved_by_python3_load_too(tmp_path):
    batches = write_cifar10(tmp_path, dumps=lambda batch: pickle.dumps(batch, protocol=2))
    assert "_codecs.encode" in globals_named((tmp_path / "test_batch").read_bytes())
    dataset = load_dataset("cifar10", tmp_path)
    assert dataset.test_y.tolist() == batches["test_batch"][b"labels"]


def test_missing_cifar_folder_says_what_where_and_how(tmp_path):
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset("cifar10", tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message and str(tmp_path / "cifar-10-batches-py") in message
    for name in ("data_batch_1", "data_batch_5", "test_batch", "cifar-10-python.tar.gz",
                 "https://www.cs.toronto.edu/~kriz/cifar.html", "--data-root"):
        assert name in message
    with pytest.raises(DatasetNotFoundError, match=r"cifar100 has no default location.*train, test.*--data-root"):
        load_dataset("cifar100")


def test_missing_batch_is_named(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match=rf"no data_batch_3 in {tmp_path} "):
        load_dataset("cifar10", tmp_path)


class RunsShellCommand:
    """Unpickling this runs a shell command: what a tampered batch could do to pickle.load."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("where", ["whole file", "inside the batch"])
def test_malicious_pickle_is_refused_without_running(tmp_path, where):
    sentinel = tmp_path / "pwned"
    payload = RunsShellCommand(f"touch {shlex.quote(str(sentinel))}")
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    evil = payload if where == "whole file" else {b"labels": [0], b"data": payload}
    (folder / "data_batch_2").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(UnsafePickleError, match=rf"{folder / 'data_batch_2'}: refusing.*(posix|os)\.system"):
        load_dataset("cifar10", tmp_path)
    assert not sentinel.exists()
    # The payload is live: plain pickle would have run it.
    pickle.loads((folder / "data_batch_2").read_bytes())
    assert sentinel.exists()


def test_other_globals_and_codecs_are_refused(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": print}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"test_batch: refusing.*(__builtin__|builtins)\.print"):
        load_dataset("cifar10", tmp_path)
    # _codecs.encode is allowed for the latin1 that Python 3 writes, and for nothing else.
    (tmp_path / "test_batch").write_bytes(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(UnsafePickleError, match=r"test_batch: refusing.*rot13"):
        load_dataset("cifar10", tmp_path)
    assert issubclass(UnsafePickleError, ValueError)


@pytest.mark.parametrize("content, message", [
    (b"not a pickle at all", "not a readable CIFAR batch pickle"),
    (python2_pickle({b"labels": [1]})[:-7], "not a readable CIFAR batch pickle"),
    (python2_pickle([1, 2, 3]), "a CIFAR batch is a dict, this file holds a list"),
    (python2_pickle({b"data": np.zeros((1, 3072), np.uint8)}), r"no b'labels' entry"),
    (python2_pickle({b"data": np.zeros((1, 1024), np.uint8), b"labels": [0]}), r"shape \(N, 3072\)"),
    (python2_pickle({b"data": np.zeros((1, 3072), np.float32), b"labels": [0]}), r"uint8.*got float32"),
    (python2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), r"1 labels.*2 images"),
    (python2_pickle({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}), r"label 10.*out of range 0..9"),
    (python2_pickle({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0.5]}), "must be a list of ints"),
])
def test_malformed_batch_names_the_file(tmp_path, content, message):
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_4").write_bytes(content)
    with pytest.raises(ValueError, match=rf"{tmp_path / 'data_batch_4'}: .*{message}"):
        load_dataset("cifar10", tmp_path)
