"""Training side of hbnn: binary quantizers, datasets, training and checkpoints. The networks, the MLP among them,
are in hbnn.quant.models (MLP is re-exported here)."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import Dataset, DatasetNotFoundError, default_dataset_name, load_dataset
from .idx import read_idx
from .layers import BinaryAct, BinaryWeight, ExactBatchNorm1d
from .models.mlp import MLP
from .train import evaluate, train

__all__ = [
    "BinaryAct",
    "BinaryWeight",
    "CheckpointError",
    "Dataset",
    "DatasetNotFoundError",
    "ExactBatchNorm1d",
    "MLP",
    "default_dataset_name",
    "evaluate",
    "load_checkpoint",
    "load_dataset",
    "read_idx",
    "save_checkpoint",
    "train",
]
