"""IDX reading, dataset loading and the errors for missing or malformed data."""

import gzip
import struct

import numpy as np
import pytest
import torch

from hbnn.quant import data
from hbnn.quant.data import Dataset, DatasetNotFoundError, default_dataset_name, load_dataset
from hbnn.quant.idx import read_idx

IDX_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.int32): 0x0C,
                  np.dtype(np.float32): 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode array in the IDX format: 0, 0, type code, ndim, big-endian uint32 dims, big-endian data."""
    header = bytes([0, 0, IDX_TYPE_CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, compress=False):
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.mark.parametrize("array", [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([3, 1, 4, 1, 5], dtype=np.uint8),
    np.array([[-70000, 1], [2, 2**31 - 1]], dtype=np.int32),
    np.array([1.5, -2.25], dtype=np.float32),
    np.zeros((0, 28, 28), dtype=np.uint8),
])
@pytest.mark.parametrize("name, compress", [("a-idx-ubyte", False), ("a-idx-ubyte.gz", True),
                                            ("gzipped-without-suffix", True)])
def test_read_idx_round_trip(tmp_path, array, name, compress):
    result = read_idx(write_idx(tmp_path / name, array, compress))
    assert result.shape == array.shape
    assert result.dtype.isnative and result.dtype == array.dtype
    assert np.array_equal(result, array)


def test_read_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "bad-magic"
    path.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x00")
    with pytest.raises(ValueError, match=rf"{path}.*bad IDX magic"):
        read_idx(path)


def test_read_idx_rejects_unknown_type_code(tmp_path):
    path = tmp_path / "bad-type"
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"\x00\x00")
    with pytest.raises(ValueError, match=r"bad IDX magic.*type code 0x07"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_rejects_truncated_data(tmp_path, compress):
    raw = idx_bytes(np.zeros((3, 4, 4), dtype=np.uint8))[:-5]
    path = tmp_path / ("short.gz" if compress else "short")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(ValueError, match=rf"{path}.*truncated.*needs 48 bytes.*found 43"):
        read_idx(path)


def test_read_idx_rejects_trailing_bytes_and_short_header(tmp_path):
    long = tmp_path / "long"
    long.write_bytes(idx_bytes(np.zeros(4, dtype=np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(long)
    header_only = tmp_path / "header"
    header_only.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">I", 2))
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(header_only)


def test_read_idx_rejects_broken_gzip(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, dtype=np.uint8)))[:-10])
    with pytest.raises(ValueError, match=rf"{path}.*gzip"):
        read_idx(path)


def write_fashion_files(directory, train=7, test=3, rows=28, cols=28, compress=True, dotted=False):
    """Tiny IDX files with the names and formats of the real (Debian-packaged) Fashion-MNIST."""
    rng = np.random.default_rng(1)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, rows, cols), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, rows, cols), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        if dotted:
            name = name.replace("-idx", ".idx", 1)
        write_idx(directory / (name + ".gz" if compress else name), array, compress)
    return arrays


def test_load_fashion_mnist_from_idx_files(tmp_path):
    arrays = write_fashion_files(tmp_path)
    dataset = load_dataset("fashion-mnist", root=tmp_path)
    assert dataset.name == "fashion-mnist"
    assert dataset.classes == 10 and dataset.image_shape == (1, 28, 28) and dataset.features == 784
    assert dataset.train_x.shape == (7, 784) and dataset.test_x.shape == (3, 784)
    assert dataset.train_x.dtype == torch.float32 and dataset.train_y.dtype == torch.int64
    expected = arrays["train-images-idx3-ubyte"].reshape(7, -1).astype(np.float32) / 255
    assert np.array_equal(dataset.train_x.numpy(), expected)
    assert np.array_equal(dataset.test_y.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert float(dataset.train_x.min()) >= 0.0 and float(dataset.train_x.max()) <= 1.0


def test_load_mnist_from_plain_files_in_a_subdirectory(tmp_path):
    arrays = write_fashion_files(tmp_path / "MNIST" / "raw", rows=8, cols=6, compress=False, dotted=True)
    dataset = load_dataset("mnist", root=tmp_path)
    assert dataset.name == "mnist" and dataset.image_shape == (1, 8, 6)
    assert np.array_equal(dataset.train_y.numpy(), arrays["train-labels-idx1-ubyte"])


def test_label_count_mismatch_names_the_file(tmp_path):
    write_fashion_files(tmp_path)
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8), compress=True)
    with pytest.raises(ValueError, match=rf"{labels}: 5 labels.*7 images"):
        load_dataset("fashion-mnist", root=tmp_path)


def test_missing_dataset_error_says_what_where_and_how(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")  # one present file is not reported missing
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset("fashion-mnist", root=tmp_path)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(tmp_path) in message
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in message
    assert "no train-images" not in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--data-root" in message


def test_missing_root_directory_and_mnist_without_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=rf"{tmp_path / 'nowhere'} does not exist"):
        load_dataset("fashion-mnist", root=tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match="--data-root"):
        load_dataset("mnist")


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*digits"):
        load_dataset("cifar")


def test_default_dataset_name_follows_the_default_root(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FASHION_MNIST_ROOT", tmp_path)
    assert default_dataset_name() == "digits"
    write_fashion_files(tmp_path)
    assert default_dataset_name() == "fashion-mnist"


def test_digits_split_is_fixed_and_stratified():
    first, second = load_dataset("digits"), load_dataset("digits")
    assert first.train_x.shape == (1437, 64) and first.test_x.shape == (360, 64)
    assert first.train_y.shape == (1437,) and first.test_y.shape == (360,)
    assert first.classes == 10 and first.image_shape == (1, 8, 8)
    assert first.train_x.dtype == torch.float32 and first.train_y.dtype == torch.int64
    assert float(first.train_x.min()) == 0.0 and float(first.train_x.max()) == 1.0
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)
    assert torch.bincount(first.test_y, minlength=10).min() >= 35  # about 36 of each class


def test_synthetic_is_deterministic_and_well_formed():
    first, second = load_dataset("synthetic"), load_dataset("synthetic")
    assert first.train_x.shape == (400, 16) and first.test_x.shape == (100, 16)
    assert first.classes == 4 and first.image_shape == (1, 4, 4)
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)
    assert float(first.train_x.min()) >= 0.0 and float(first.train_x.max()) <= 1.0
    assert set(first.train_y.tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("name, image_shape", [("digits", (1, 8, 8)), ("synthetic", (1, 4, 4))])
def test_image_views_share_the_flattened_pixels(name, image_shape):
    dataset = load_dataset(name)
    for flat, images in ((dataset.train_x, dataset.train_images), (dataset.test_x, dataset.test_images)):
        assert images.shape == (len(flat), *image_shape)
        assert images.data_ptr() == flat.data_ptr()  # a view, not a copy
        assert torch.equal(images.reshape(len(flat), -1), flat)
    assert dataset.features == int(np.prod(image_shape))


def test_idx_image_views_are_rows_by_columns(tmp_path):
    arrays = write_fashion_files(tmp_path, rows=8, cols=6, compress=False)
    dataset = load_dataset("mnist", root=tmp_path)
    assert dataset.train_images.shape == (7, 1, 8, 6) and dataset.test_images.shape == (3, 1, 8, 6)
    expected = arrays["t10k-images-idx3-ubyte"].astype(np.float32)[:, None] / 255
    assert np.array_equal(dataset.test_images.numpy(), expected)


def test_dataset_checks_image_shape_against_pixels():
    x, y = torch.zeros(2, 12), torch.zeros(2, dtype=torch.int64)
    assert Dataset("ok", x, y, x, y, classes=2, image_shape=(3, 2, 2)).train_images.shape == (2, 3, 2, 2)
    with pytest.raises(ValueError, match=r"'flat': image_shape must be \(channels, height, width\), got \(3, 4\)"):
        Dataset("flat", x, y, x, y, classes=2, image_shape=(3, 4))
    with pytest.raises(ValueError, match=r"'wide': test_x must be \(N, 12\).*got \(2, 13\)"):
        Dataset("wide", x, y, torch.zeros(2, 13), y, classes=2, image_shape=(1, 3, 4))
