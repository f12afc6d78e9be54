"""Datasets for training: pixels as float32 (N, features) tensors in [0, 1] and int64 labels.

Each dataset also knows its image_shape (C, H, W); train_images / test_images view the same pixels as images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .idx import read_idx

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "DATASET_NAMES",
    "FASHION_MNIST_ROOT",
    "default_dataset_name",
    "load_dataset",
    "read_idx",
]

# Where the Debian/Ubuntu package dataset-fashion-mnist installs its four gzipped IDX files.
FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")

DATASET_NAMES = ("digits", "fashion-mnist", "mnist", "synthetic", "cifar10", "cifar100")
CIFAR_NAMES = ("cifar10", "cifar100")

# Logical IDX file -> its standard name (without .gz). Some mirrors write "train-images.idx3-ubyte" instead.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# How deep below the root to look for the IDX files, e.g. root/fashion-mnist/raw/... from torchvision downloads.
SEARCH_DEPTH = 3

HOW_TO_GET = {
    "fashion-mnist": (
        "install them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, puts them in "
        f"{FASHION_MNIST_ROOT}), or download the four files from https://github.com/zalandoresearch/fashion-mnist "
        "and pass their directory with --data-root (root= in Python)"
    ),
    "mnist": (
        "download the four files from http://yann.lecun.com/exdb/mnist/ (or a mirror) "
        "and pass their directory with --data-root (root= in Python)"
    ),
}


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not where they were looked for; the message says where and how to get them."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors with == is elementwise, not a bool
class Dataset:
    name: str
    train_x: torch.Tensor  # float32 (N, features), pixels in [0, 1], each row an image flattened in (C, H, W) order
    train_y: torch.Tensor  # int64 (N,), labels in [0, classes)
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: int
    image_shape: tuple[int, int, int]  # (channels, height, width)

    def __post_init__(self):
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"dataset {self.name!r}: image_shape must be (channels, height, width), "
                             f"got {self.image_shape}")
        for split, x in (("train_x", self.train_x), ("test_x", self.test_x)):
            if x.ndim != 2 or x.shape[1] != self.features:
                raise ValueError(f"dataset {self.name!r}: {split} must be (N, {self.features}) for images of "
                                 f"shape {self.image_shape}, got {tuple(x.shape)}")

    @property
    def features(self) -> int:
        return int(np.prod(self.image_shape))

    @property
    def train_images(self) -> torch.Tensor:
        """train_x as (N, C, H, W), sharing its memory."""
        return self.train_x.view(len(self.train_x), *self.image_shape)

    @property
    def test_images(self) -> torch.Tensor:
        """test_x as (N, C, H, W), sharing its memory."""
        return self.test_x.view(len(self.test_x), *self.image_shape)


def load_dataset(name: str, root: str | Path | None = None) -> Dataset:
    """Load a dataset by name: "digits", "fashion-mnist", "mnist" (root required), "synthetic", "cifar10" or
    "cifar100" (root required); "NAME@SIZE" pads NAME's images with zeros, centred, to SIZE x SIZE (as LeNet padded
    MNIST's 28x28 digits to 32x32; CNV needs 32x32).

    root is the directory holding the IDX files (searched a few levels deep), or for CIFAR the extracted
    cifar-10-batches-py / cifar-100-python folder or its parent; it is ignored by digits and synthetic.
    """
    if "@" in name:
        base, _, size = name.partition("@")
        if not size.isdigit() or int(size) < 1:
            raise ValueError(f"dataset {name!r}: the size after '@' must be a positive integer")
        return padded(load_dataset(base, root), int(size))
    if name == "digits":
        return _load_digits()
    if name == "synthetic":
        return _make_synthetic()
    if name == "fashion-mnist":
        return _load_idx_dataset(name, Path(root) if root is not None else FASHION_MNIST_ROOT)
    if name == "mnist":
        if root is None:
            raise DatasetNotFoundError(f"mnist has no default location: {HOW_TO_GET['mnist']}")
        return _load_idx_dataset(name, Path(root))
    if name in CIFAR_NAMES:
        from .cifar import load_cifar  # imported here: cifar.py imports Dataset from this module
        return load_cifar(name, root)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")


def padded(dataset: Dataset, size: int) -> Dataset:
    """The dataset with every image zero-padded to size x size, centred (an odd margin puts the extra row and
    column after the image); named NAME@SIZE."""
    channels, height, width = dataset.image_shape
    if size < max(height, width):
        raise ValueError(f"dataset {dataset.name!r}: cannot pad {height}x{width} images to {size}x{size}")
    top, left = (size - height) // 2, (size - width) // 2
    margins = (left, size - width - left, top, size - height - top)

    def pad(x: torch.Tensor) -> torch.Tensor:
        images = x.view(len(x), channels, height, width)
        return torch.nn.functional.pad(images, margins).reshape(len(x), -1).contiguous()

    return Dataset(f"{dataset.name}@{size}", pad(dataset.train_x), dataset.train_y, pad(dataset.test_x),
                   dataset.test_y, dataset.classes, (channels, size, size))


def default_dataset_name() -> str:
    """"fashion-mnist" when its files are present at the default root, else "digits" (bundled with scikit-learn)."""
    try:
        _find_idx_files("fashion-mnist", FASHION_MNIST_ROOT)
    except DatasetNotFoundError:
        return "digits"
    return "fashion-mnist"


def _load_digits() -> Dataset:
    # Imported here: scikit-learn is slow to import and only this dataset needs it.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # 8x8 pixels with values 0..16
    y = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=360, random_state=0, stratify=y)
    return Dataset("digits", torch.from_numpy(train_x), torch.from_numpy(train_y),
                   torch.from_numpy(test_x), torch.from_numpy(test_y), classes=10, image_shape=(1, 8, 8))


def _make_synthetic(train_per_class: int = 100, test_per_class: int = 25) -> Dataset:
    """4 classes of 4x4 images: fixed binary prototypes plus Gaussian noise, separable after thresholding at 0.5."""
    rng = np.random.default_rng(0)
    classes, features = 4, 16
    # Prototypes are 4 disjoint blocks of 4 lit pixels, so any two differ in 8 pixels.
    prototypes = np.zeros((classes, features), dtype=np.float32)
    for c, pixels in enumerate(rng.permutation(features).reshape(classes, features // classes)):
        prototypes[c, pixels] = 1.0

    def sample(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = np.repeat(np.arange(classes), per_class)
        rng.shuffle(y)
        x = np.clip(prototypes[y] + rng.normal(0.0, 0.3, size=(len(y), features)), 0.0, 1.0)
        return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))

    train_x, train_y = sample(train_per_class)
    test_x, test_y = sample(test_per_class)
    return Dataset("synthetic", train_x, train_y, test_x, test_y, classes=classes, image_shape=(1, 4, 4))


def _candidate_names(standard: str) -> list[str]:
    dotted = standard.replace("-idx", ".idx", 1)  # train-images.idx3-ubyte
    return [standard + ".gz", standard, dotted + ".gz", dotted]


def _find_idx_files(name: str, root: Path) -> dict[str, Path]:
    """Map each logical IDX file to its path under root (directly in root first, then up to SEARCH_DEPTH below)."""
    wanted = ", ".join(f"{standard}[.gz]" for standard in IDX_FILES.values())
    if not root.is_dir():
        raise DatasetNotFoundError(f"{name}: directory {root} does not exist (it should hold {wanted}); "
                                   f"{HOW_TO_GET[name]}")
    found: dict[str, Path] = {}
    for directory in _directories_breadth_first(root, SEARCH_DEPTH):
        for key, standard in IDX_FILES.items():
            if key in found:
                continue
            for candidate in _candidate_names(standard):
                if (directory / candidate).is_file():
                    found[key] = directory / candidate
                    break
        if len(found) == len(IDX_FILES):
            return found
    missing = ", ".join(f"{IDX_FILES[key]}[.gz]" for key in IDX_FILES if key not in found)
    raise DatasetNotFoundError(f"{name}: no {missing} in {root} or its subdirectories up to {SEARCH_DEPTH} "
                               f"levels deep (it needs {wanted}); {HOW_TO_GET[name]}")


def _directories_breadth_first(root: Path, depth: int):
    level = [root]
    for _ in range(depth + 1):
        next_level = []
        for directory in level:
            yield directory
            try:
                with os.scandir(directory) as entries:
                    next_level += sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
            except OSError:  # unreadable subdirectory: skip it rather than fail the whole search
                continue
        level = next_level


def _load_idx_dataset(name: str, root: Path) -> Dataset:
    paths = _find_idx_files(name, root)
    train_x, image_shape = _images(paths["train_images"])
    test_x, test_shape = _images(paths["test_images"])
    if test_shape != image_shape:
        raise ValueError(f"{paths['test_images']}: images are {test_shape}, "
                         f"but {paths['train_images']} has {image_shape}")
    train_y = _labels(paths["train_labels"], len(train_x), paths["train_images"])
    test_y = _labels(paths["test_labels"], len(test_x), paths["test_images"])
    return Dataset(name, train_x, train_y, test_x, test_y, classes=10, image_shape=image_shape)


def _images(path: Path) -> tuple[torch.Tensor, tuple[int, int, int]]:
    array = read_idx(path)
    if array.ndim != 3 or array.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 images of shape (N, rows, cols), "
                         f"got {array.dtype} of shape {array.shape}")
    pixels = array.reshape(len(array), -1).astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(pixels), (1, int(array.shape[1]), int(array.shape[2]))  # grayscale: one channel


def _labels(path: Path, count: int, images_path: Path) -> torch.Tensor:
    array = read_idx(path)
    if array.ndim != 1 or array.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 labels of shape (N,), got {array.dtype} of shape {array.shape}")
    if len(array) != count:
        raise ValueError(f"{path}: {len(array)} labels, but {images_path} has {count} images")
    if array.size and array.max() >= 10:
        raise ValueError(f"{path}: label {int(array.max())} out of range 0..9")
    return torch.from_numpy(array.astype(np.int64))
