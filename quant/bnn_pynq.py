"""Brevitas' bnn_pynq networks (FINN's TFC, SFC, LFC and CNV), as FINN users have them, with random weights.

`brevitas_examples.bnn_pynq` builds them (torch's own BatchNorm1d/2d, BNN-PYNQ's TensorNorm at the end); nothing is
downloaded: the weights are random and the batch-norm statistics drawn so that every channel's threshold lands
inside its accumulator range (a mean near the middle, a spread a fraction of the range), otherwise a sign after a
batch norm with default statistics is nearly constant and checks little. `export` writes the QONNX graph with
Brevitas' own `export_qonnx`.
"""
from __future__ import annotations

import contextlib
import io
import pathlib
import warnings

import torch

__all__ = ["BNN_PYNQ_NETWORKS", "bnn_pynq_model", "export_model", "export_bnn_pynq", "load_brevitas_weights"]

BNN_PYNQ_NETWORKS = ("tfc_1w1a", "sfc_1w1a", "lfc_1w1a", "cnv_1w1a", "tfc_1w2a", "cnv_2w2a")


def _draw_batch_norms(model: torch.nn.Module, generator: torch.Generator) -> None:
    previous_width = None
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) or type(module).__name__ in ("QuantLinear",
                                                                                                "QuantConv2d"):
            previous_width = weight[0].numel()
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            channels = module.num_features
            spread = max(previous_width or 1, 1) ** 0.5  # a +-1 dot product of n terms spreads about sqrt(n)
            with torch.no_grad():
                module.running_mean.copy_((torch.rand(channels, generator=generator) - 0.5) * spread)
                module.running_var.copy_((0.25 + torch.rand(channels, generator=generator)) * spread ** 2)
                module.weight.copy_(torch.rand(channels, generator=generator) * 2 - 1)
                module.bias.copy_((torch.rand(channels, generator=generator) - 0.5) * 0.5)


def bnn_pynq_model(name: str, seed: int = 0) -> torch.nn.Module:
    """The network in eval mode, random weights (Brevitas' own init, seeded) and drawn batch-norm statistics."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    if name not in BNN_PYNQ_NETWORKS:
        raise ValueError(f"unknown bnn_pynq network {name!r}; choose from {', '.join(BNN_PYNQ_NETWORKS)}")
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = model_with_cfg(name, pretrained=False)
    _draw_batch_norms(model, torch.Generator().manual_seed(seed))
    return model.eval()


def export_model(model: torch.nn.Module, name: str, path: str | pathlib.Path) -> pathlib.Path:
    """A bnn_pynq network's QONNX export (Brevitas' export_qonnx), one image per batch."""
    from brevitas.export import export_qonnx

    shape = (1, 3, 32, 32) if name.startswith("cnv") else (1, 1, 28, 28)
    path = pathlib.Path(path)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # torch.onnx's progress lines
        warnings.simplefilter("ignore")
        export_qonnx(model.eval(), torch.rand(shape), export_path=str(path))
    return path


def export_bnn_pynq(name: str, path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """The network with random weights (bnn_pynq_model), exported to QONNX."""
    return export_model(bnn_pynq_model(name, seed), name, path)


def load_brevitas_weights(model: torch.nn.Module, path: str | pathlib.Path) -> None:
    """Weights from a state dict, or from Brevitas' bnn_pynq training checkpoint (a dict with "state_dict"), loaded
    with weights_only=True: tensors only, no code runs."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: not a PyTorch state dict loadable with weights_only=True ({error})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path}: its tensors do not fit the network: {error}") from None
    model.eval()
