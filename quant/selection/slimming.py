"""Network slimming (Liu et al., "Learning Efficient Convolutional Networks through Network Slimming", 2017): the
pruning baseline that binarization is compared with at equal FLOPs, for cresnet20.

    history, pruning = train_slimmed(model, dataset, 0.5, epochs=40)   # L1 on gammas, prune, fine-tune

Prunable channels are the internal channel of each BasicBlock: conv1's output = bn1's channels = conv2's input.
A block's output channels are added to its shortcut (and the shortcuts chain through a whole stage), so pruning
one would need the same channel pruned throughout the stage; like the paper's ResNet experiments, those are kept.

Pruning is a mask, not surgery: `apply_channel_pruning` sets the pruned channels' bn1 weight and bias to zero and
keeps them there, so that after the ReLU the channel is exactly 0 and conv2 receives nothing from it -- the
network computes what the physically pruned network computes, and FLOPs are counted as if the channels were gone.
This needs act1 to be a ReLU (a full-precision conv2): a binary conv2 reads sign(0) = +1, not "nothing", so
slimming applies to the full-precision network only. (For int8 layers one difference remains: a conv2 whose
per-tensor weight scale is set by a weight of a pruned input channel would get another scale once physically
pruned.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..data import Dataset
from ..metrics import layer_flops, measure
from ..models.cresnet20 import BasicBlock
from ..train import train
from .result import BudgetUnreachableError

__all__ = [
    "ChannelPruning", "add_sparsity_gradient", "apply_channel_pruning", "channels_for_budget", "enforce",
    "prunable_blocks", "sparsity_penalty", "train_slimmed",
]

MODEL_NAME = "cresnet20"


def prunable_blocks(model: nn.Module) -> dict[str, BasicBlock]:
    """{block module name ("stage1.0", ...): block} of a cresnet20, in forward order; ValueError for other models."""
    name = getattr(model, "NAME", type(model).__name__)
    if name != MODEL_NAME:
        raise ValueError(f"network slimming is implemented for {MODEL_NAME} (the internal channels of its basic "
                         f"blocks), not for model {name!r}")
    return {block_name: module for block_name, module in model.named_modules() if isinstance(module, BasicBlock)}


def sparsity_penalty(model: nn.Module) -> torch.Tensor:
    """sum |gamma| over the prunable batch-norms (every block's bn1): the L1 term slimming adds to the loss."""
    return sum(block.bn1.weight.abs().sum() for block in prunable_blocks(model).values())


def add_sparsity_gradient(model: nn.Module, sparsity: float) -> list[RemovableHandle]:
    """Add sparsity * sign(gamma) to the gradient of every prunable gamma, as backward computes it: exactly the
    subgradient of sparsity * sparsity_penalty(model) (sign(0) = 0), without changing the loss that training
    computes. This is how the slimming paper implements its penalty. Remove the returned handles to stop."""
    if not (isinstance(sparsity, (int, float)) and not isinstance(sparsity, bool) and math.isfinite(sparsity)
            and sparsity >= 0):
        raise ValueError(f"sparsity must be a finite number >= 0, not {sparsity!r}")
    handles = []
    for block in prunable_blocks(model).values():
        gamma = block.bn1.weight
        handles.append(gamma.register_hook(lambda grad, gamma=gamma: grad + sparsity * gamma.detach().sign()))
    return handles


@dataclass(frozen=True)
class ChannelPruning:
    """Which internal channels of each block survive, and the FLOPs of the pruned network.

    kept: {block name: kept channel indices, ascending}; every block of the network appears, with >= 1 channel.
    flops: the pruned network's FLOPs (hbnn.quant.metrics' count); reference_flops: the unpruned network's.
    """

    kept: Mapping[str, tuple[int, ...]]
    flops: float
    reference_flops: float

    def __post_init__(self) -> None:
        if not isinstance(self.kept, Mapping):
            raise ValueError(f"kept must map block names to channel indices, not {self.kept!r}")
        kept = {}
        for block, channels in self.kept.items():
            channels = tuple(channels)
            if (not channels or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in channels)
                    or list(channels) != sorted(set(channels))):
                raise ValueError(f"kept[{block!r}] must be ascending, distinct channel indices >= 0, at least one; "
                                 f"got {list(channels)}")
            kept[block] = channels
        object.__setattr__(self, "kept", kept)
        for name in ("flops", "reference_flops"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
            object.__setattr__(self, name, float(value))

    @property
    def fraction(self) -> float:
        """flops / reference_flops."""
        return self.flops / self.reference_flops

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: json.loads(json.dumps(d)) == d."""
        return {"kept": {block: list(channels) for block, channels in self.kept.items()}, "flops": self.flops,
                "reference_flops": self.reference_flops}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChannelPruning:
        if not isinstance(data, Mapping) or set(data) != {"kept", "flops", "reference_flops"}:
            raise ValueError("a channel pruning dict has exactly the keys 'kept', 'flops' and 'reference_flops', "
                             f"not {sorted(data) if isinstance(data, Mapping) else data!r}")
        return cls(kept=data["kept"], flops=data["flops"], reference_flops=data["reference_flops"])


def channels_for_budget(model: nn.Module, input_shape: tuple[int, ...], fraction: float) -> ChannelPruning:
    """Prune the internal channels with the smallest |gamma| (bn1 weight), globally across blocks, until the
    network's FLOPs are at most `fraction` x the unpruned network's; every block keeps at least one channel.

    FLOPs are counted analytically from the layers' MACs (measured once on the unpruned network) at the model's
    precisions, as hbnn.quant.metrics counts them: a block's conv1 does macs * kept / out_channels, its conv2
    macs * kept / in_channels, every other layer is unchanged. Ties in |gamma| go in forward order (block, then
    channel). Raises BudgetUnreachableError, with the cheapest reachable FLOPs, if one channel per block is still
    over the budget.
    """
    blocks = prunable_blocks(model)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a number in (0, 1] of the unpruned network's FLOPs, not {fraction!r}")
    layer_names = set(model.binarizable_layers())
    macs = {layer.name: layer.macs for layer in measure(model, tuple(input_shape)).layers if layer.name in layer_names}
    precisions = {name: model.precision_of(name) for name in macs}
    channels = {name: block.bn1.num_features for name, block in blocks.items()}

    def flops(kept_counts: Mapping[str, int]) -> float:
        scaled = dict(macs)
        for block, count in kept_counts.items():
            for conv in (f"{block}.conv1", f"{block}.conv2"):  # MACs are proportional to the internal channels
                scaled[conv] = macs[conv] * count // channels[block]
        return sum(layer_flops(precisions[name], layer_macs) for name, layer_macs in scaled.items())

    reference = flops(channels)
    limit = fraction * reference
    ranking = sorted((float(magnitude), position, channel, block)
                     for position, (block, module) in enumerate(blocks.items())
                     for channel, magnitude in enumerate(module.bn1.weight.detach().abs().cpu().tolist()))
    counts = dict(channels)
    pruned: dict[str, set[int]] = {block: set() for block in blocks}
    current = reference
    for _, _, channel, block in ranking:
        if current <= limit:
            break
        if counts[block] == 1:
            continue
        pruned[block].add(channel)
        counts[block] -= 1
        current = flops(counts)
    if current > limit:
        minimum = flops({block: 1 for block in blocks})
        raise BudgetUnreachableError(
            f"network slimming: with one channel left in every block the network costs {minimum:,.0f} FLOPs, "
            f"over the budget of {limit:,.0f} ({fraction:g} of {reference:,.0f})")
    kept = {block: tuple(c for c in range(channels[block]) if c not in pruned[block]) for block in blocks}
    return ChannelPruning(kept=kept, flops=current, reference_flops=reference)


def apply_channel_pruning(model: nn.Module, pruning: ChannelPruning) -> None:
    """Mask the pruned channels: zero their bn1 weight and bias, and keep them zero while training.

    Each pruned channel's gradient is zeroed by a hook on bn1.weight and bn1.bias. With zero gradients, Adam's
    moments and steps for those entries stay exactly zero (and weight decay of a zero is zero), so the values stay
    0 under train(), which makes a fresh optimizer; an optimizer that carries momentum from before the pruning
    could still move them: call `enforce(model)` after its steps. The pruned channels are kept as a plain
    attribute of each bn1 (`slimming_pruned`), so the state dict is unchanged. Applying a pruning again replaces
    the previous one.
    """
    blocks = prunable_blocks(model)
    if set(pruning.kept) != set(blocks):
        raise ValueError(f"the pruning names blocks {sorted(pruning.kept)}, the model has {list(blocks)}")
    for name, block in blocks.items():
        if not isinstance(block.act1, nn.ReLU):
            raise ValueError(f"{name}.act1 is {type(block.act1).__name__}, not ReLU: its conv2 reads signs, and a "
                             "zeroed channel gives sign(0) = +1, not nothing; slimming applies to the "
                             "full-precision network")
        bn = block.bn1
        if pruning.kept[name][-1] >= bn.num_features:
            raise ValueError(f"pruning keeps channel {pruning.kept[name][-1]} of {name}, which has "
                             f"{bn.num_features} internal channels")
        for handle in getattr(bn, "slimming_handles", ()):
            handle.remove()
        mask = torch.ones(bn.num_features, dtype=torch.bool)
        mask[list(pruning.kept[name])] = False
        bn.slimming_pruned = mask.nonzero().flatten().to(bn.weight.device)
        bn.slimming_handles = [parameter.register_hook(_zeroing(bn.slimming_pruned))
                               for parameter in (bn.weight, bn.bias)]
    enforce(model)


def enforce(model: nn.Module) -> None:
    """Set the pruned channels' bn1 weight and bias (as apply_channel_pruning recorded them) back to zero."""
    with torch.no_grad():
        for block in prunable_blocks(model).values():
            pruned = getattr(block.bn1, "slimming_pruned", None)
            if pruned is not None:
                block.bn1.weight[pruned] = 0.0
                block.bn1.bias[pruned] = 0.0


def _zeroing(pruned: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    def hook(grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad[pruned.to(grad.device)] = 0.0
        return grad
    return hook


def train_slimmed(model: nn.Module, dataset: Dataset, fraction: float, *, epochs: int, sparsity: float = 1e-4,
                  augmentation: Callable | None = None, seed: int = 0, progress: bool = True,
                  **train_kwargs: Any) -> tuple[list[dict], ChannelPruning]:
    """Network slimming with train(): sparsity training, pruning to `fraction` of the FLOPs, fine-tuning.

    The first ceil(epochs / 2) epochs train with the L1 penalty sparsity * sum |gamma| on the prunable gammas
    (`add_sparsity_gradient`); the channels are then pruned to the budget (`channels_for_budget` on the dataset's
    image shape) and masked (`apply_channel_pruning`), and the remaining epochs (at least 1) fine-tune with the
    mask held. Each phase is one train() call with its own learning-rate schedule and the same seed; the other
    keywords go to both (state_path and resume are refused: the two phases are separate runs).

    Returns (history, pruning): one record per epoch as train() writes them, numbered 1..epochs across both
    phases, with "phase": "sparsity" or "fine-tune" added (the `log` callback, if given, sees the same records).
    """
    blocks = prunable_blocks(model)
    not_relu = [name for name, block in blocks.items() if not isinstance(block.act1, nn.ReLU)]
    if not_relu:
        raise ValueError(f"{not_relu[0]}.act1 is not ReLU (its conv2 binarizes its input): slimming applies to the "
                         "full-precision network")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a number in (0, 1] of the unpruned network's FLOPs, not {fraction!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 2:
        raise ValueError(f"epochs must be an integer >= 2 (at least one to train sparse, one to fine-tune), "
                         f"not {epochs!r}")
    refused = [key for key in ("state_path", "resume") if key in train_kwargs]
    if refused:
        raise ValueError(f"train_slimmed does not take {refused[0]!r}: its two phases are separate training runs")
    user_log = train_kwargs.pop("log", None)
    sparse_epochs = (epochs + 1) // 2

    def run(phase: str, phase_epochs: int, offset: int) -> list[dict]:
        def annotated(record: dict) -> dict:
            return {**record, "epoch": record["epoch"] + offset, "phase": phase}

        def log(record: dict) -> None:
            if user_log is not None:
                user_log(annotated(record))

        records = train(model, dataset, epochs=phase_epochs, augmentation=augmentation, seed=seed,
                        progress=progress, log=log, **train_kwargs)
        return [annotated(record) for record in records]

    handles = add_sparsity_gradient(model, sparsity)
    try:
        history = run("sparsity", sparse_epochs, 0)
    finally:
        for handle in handles:
            handle.remove()
    pruning = channels_for_budget(model, dataset.image_shape, fraction)
    apply_channel_pruning(model, pruning)
    history += run("fine-tune", epochs - sparse_epochs, sparse_epochs)
    enforce(model)
    return history, pruning
