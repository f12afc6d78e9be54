"""CIFAR-10 and CIFAR-100 from the python-pickle batches of https://www.cs.toronto.edu/~kriz/cifar.html.

The batches are pickles, and unpickling can run arbitrary code, so they are read with RestrictedUnpickler: it builds
only dicts, lists, bytes, ints and uint8 numpy arrays and refuses any other global a file asks for.
"""

from __future__ import annotations

import codecs
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# data.py imports this module lazily (inside load_dataset), so importing data.py here is not circular.
from .data import Dataset, DatasetNotFoundError

__all__ = ["CIFAR_LAYOUTS", "CifarLayout", "RestrictedUnpickler", "UnsafePickleError", "load_cifar",
           "read_cifar_batch"]

CIFAR_IMAGE_SHAPE = (3, 32, 32)  # each row of b"data" is 1024 red, 1024 green, 1024 blue bytes, rows top to bottom
CIFAR_FEATURES = 3 * 32 * 32
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant keeps its batches and which key of each batch holds the labels."""
    folder: str  # what the downloaded archive extracts to
    archive: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: bytes
    classes: int

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file)


CIFAR_LAYOUTS = {
    "cifar10": CifarLayout("cifar-10-batches-py", "cifar-10-python.tar.gz",
                           tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", b"labels", 10),
    "cifar100": CifarLayout("cifar-100-python", "cifar-100-python.tar.gz", ("train",), "test", b"fine_labels", 100),
}


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A batch file asked for a global (a function or class to call) that a genuine CIFAR batch never contains."""


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 pickles bytes at protocol 2 as _codecs.encode(text, "latin1"); no other codec is ever needed.
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode with codec {encoding!r} (only latin1 is allowed)")
    return codecs.encode(text, "latin1")


# (module, name) -> object for every global a CIFAR batch needs: the original Python 2 pickles name the first three
# (numpy.core before numpy 2, numpy._core after); batches re-saved by Python 3 at protocol 2 also use _codecs.encode.
_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's array-rebuilding function, found without importing numpy.core
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only ALLOWED_GLOBALS; anything else (os.system, builtins.eval, ...) is refused."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")  # the batches are Python 2 pickles whose str values are bytes
        self.path = path

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(sorted({f"{m}.{n}" for m, n in ALLOWED_GLOBALS}))
            raise UnsafePickleError(
                f"{self.path}: refusing to unpickle: it asks for {module}.{name}, but a CIFAR batch only needs "
                f"{allowed}; this is not a genuine CIFAR batch (re-download it from {CIFAR_URL})") from None


def read_cifar_batch(path: Path, label_key: bytes, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (uint8 images (N, 3072), int64 labels (N,)); ValueError naming the file if malformed."""
    try:
        with open(path, "rb") as file:
            batch = RestrictedUnpickler(file, path).load()
    except UnsafePickleError as exc:
        if str(path) in str(exc):
            raise
        raise UnsafePickleError(f"{path}: refusing to unpickle: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError) as exc:
        raise ValueError(f"{path}: not a readable CIFAR batch pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: a CIFAR batch is a dict, this file holds a {type(batch).__name__}")
    for key in (b"data", label_key):
        if key not in batch:
            found = ", ".join(repr(k) for k in batch) or "none"
            raise ValueError(f"{path}: CIFAR batch has no {key!r} entry (keys: {found})")
    images = batch[b"data"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 \
            or images.shape[1] != CIFAR_FEATURES:
        described = f"{images.dtype} array of shape {images.shape}" if isinstance(images, np.ndarray) \
            else type(images).__name__
        raise ValueError(f"{path}: b'data' must be a uint8 array of shape (N, {CIFAR_FEATURES}), got {described}")
    labels = batch[label_key]
    if not isinstance(labels, list) or not all(type(label) is int for label in labels):
        raise ValueError(f"{path}: {label_key!r} must be a list of ints")
    if len(labels) != len(images):
        raise ValueError(f"{path}: {len(labels)} labels in {label_key!r} but {len(images)} images in b'data'")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except OverflowError:
        raise ValueError(f"{path}: a label in {label_key!r} does not fit in 64 bits") from None
    out_of_range = labels[(labels < 0) | (labels >= classes)]
    if out_of_range.size:
        raise ValueError(f"{path}: label {int(out_of_range[0])} in {label_key!r} out of range 0..{classes - 1}")
    return images, labels


def how_to_get(name: str) -> str:
    layout = CIFAR_LAYOUTS[name]
    return (f"download {layout.archive} (the python version) from {CIFAR_URL}, extract it, and pass the folder "
            f"holding {layout.folder}/ (or {layout.folder}/ itself) with --data-root (root= in Python)")


def find_cifar_folder(name: str, root: str | Path | None) -> Path:
    """The folder holding the batches: root itself if it holds any of them, else root/<layout.folder>."""
    layout = CIFAR_LAYOUTS[name]
    wanted = ", ".join(layout.files)
    if root is None:
        raise DatasetNotFoundError(f"{name} has no default location (it needs {wanted}): {how_to_get(name)}")
    root = Path(root)
    if any((root / file).is_file() for file in layout.files):
        folder = root
    elif (root / layout.folder).is_dir():
        folder = root / layout.folder
    else:
        raise DatasetNotFoundError(f"{name}: neither {root} nor {root / layout.folder} holds {wanted}; "
                                   f"{how_to_get(name)}")
    missing = [file for file in layout.files if not (folder / file).is_file()]
    if missing:
        raise DatasetNotFoundError(f"{name}: no {', '.join(missing)} in {folder} (it needs {wanted}); "
                                   f"{how_to_get(name)}")
    return folder


def load_cifar(name: str, root: str | Path | None) -> Dataset:
    """Load "cifar10" or "cifar100" (fine labels) from root, the extracted archive's folder or its parent."""
    layout = CIFAR_LAYOUTS[name]
    folder = find_cifar_folder(name, root)
    train = [read_cifar_batch(folder / file, layout.label_key, layout.classes) for file in layout.train_files]
    test_images, test_labels = read_cifar_batch(folder / layout.test_file, layout.label_key, layout.classes)
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    return Dataset(name, _to_unit_floats(train_images), torch.from_numpy(train_labels),
                   _to_unit_floats(test_images), torch.from_numpy(test_labels),
                   classes=layout.classes, image_shape=CIFAR_IMAGE_SHAPE)


def _to_unit_floats(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / np.float32(255.0))
