"""Training side of hbnn: binary layers, the BinaryMLP, datasets, training and checkpoints."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import Dataset, DatasetNotFoundError, default_dataset_name, load_dataset
from .idx import read_idx
from .layers import BinaryAct, BinaryWeight, ExactBatchNorm1d, binary_activation, binary_linear
from .mlp import BinaryMLP
from .train import evaluate, train

__all__ = [
    "BinaryAct",
    "BinaryMLP",
    "BinaryWeight",
    "CheckpointError",
    "Dataset",
    "DatasetNotFoundError",
    "ExactBatchNorm1d",
    "binary_activation",
    "binary_linear",
    "default_dataset_name",
    "evaluate",
    "load_checkpoint",
    "load_dataset",
    "read_idx",
    "save_checkpoint",
    "train",
]
