"""Training-time image augmentation on float (N, C, H, W) batches, in plain torch.

Every random choice is drawn from the torch.Generator passed in, one draw per sample, so a batch is augmented the
same way for the same generator state. Draws are made on the generator's device and moved to the batch's device.
No function modifies its input; a step that has nothing to do may return the input itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .data import DATASET_NAMES

__all__ = [
    "Augmentation",
    "dataset_normalization",
    "normalize",
    "random_crop",
    "random_horizontal_flip",
    "random_rotation",
    "rotate",
    "standard_augmentation",
]

# Per-channel (mean, std) of the training pixels in [0, 1], population std over all pixels of all images.
# CIFAR-10/100, MNIST, Fashion-MNIST: the values in common use. (CIFAR-10's often-quoted std (0.2023, 0.1994, 0.2010)
# is the mean of per-image stds, not the std of the pixels; we use the latter.) Fashion-MNIST's was checked
# against the Debian-packaged training set (0.28604, 0.35302).
# digits and synthetic have no standard values: computed here from load_dataset(name).train_x (tests re-check them).
NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "digits": ((0.3054,), (0.3761,)),  # computed
    "synthetic": ((0.3097,), (0.3732,)),  # computed
}


def dataset_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of the named dataset's training pixels, for normalize()."""
    try:
        return NORMALIZATION[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}") from None


def _check_images(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"{what}: expected a float batch of shape (N, C, H, W), got {x.dtype} of shape "
                         f"{tuple(x.shape)} (Dataset.train_images gives that shape)")


def _uniform(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """n draws from [0, 1) made on the generator's device, so results do not depend on where x lives."""
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def random_horizontal_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability p."""
    _check_images(x, "random_horizontal_flip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_horizontal_flip: p must be in [0, 1], got {p}")
    flip = _uniform(len(x), generator, x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_crop(x: torch.Tensor, generator: torch.Generator, size: int | tuple[int, int],
                padding: int) -> torch.Tensor:
    """Zero-pad each side by padding, then cut a size (or (height, width)) window at a random offset per image."""
    _check_images(x, "random_crop")
    height, width = (size, size) if isinstance(size, int) else size
    if padding < 0:
        raise ValueError(f"random_crop: padding must be >= 0, got {padding}")
    padded = F.pad(x, (padding, padding, padding, padding))
    room_y, room_x = padded.shape[-2] - height, padded.shape[-1] - width
    if height < 1 or width < 1 or room_y < 0 or room_x < 0:
        raise ValueError(f"random_crop: size {(height, width)} does not fit images of {tuple(x.shape[-2:])} "
                         f"padded by {padding}")
    n = len(x)
    # Offsets 0..room inclusive, each equally likely; floor of uniform * (room + 1), clamped against rounding up.
    top = (_uniform(n, generator, x.device) * (room_y + 1)).long().clamp_(max=room_y)
    left = (_uniform(n, generator, x.device) * (room_x + 1)).long().clamp_(max=room_x)
    rows = top[:, None] + torch.arange(height, device=x.device)  # (N, height)
    cols = left[:, None] + torch.arange(width, device=x.device)  # (N, width)
    samples = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indices around the channel slice put their dimensions first: (N, height, width, C).
    crops = padded[samples, :, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2).contiguous()


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate image i counterclockwise (as displayed, row 0 at the top) by degrees[i] about its centre.

    Bilinear sampling; corners that come from outside the image are 0. 90 degrees matches torch.rot90 on a square.
    """
    _check_images(x, "rotate")
    height, width = x.shape[-2:]
    radians = degrees.to(device=x.device, dtype=x.dtype) * (math.pi / 180)
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(cos)
    # affine_grid maps output to input coordinates normalised to [-1, 1] per axis; the height/width ratios make the
    # rotation rigid in pixels rather than in those stretched coordinates when the image is not square.
    theta = torch.stack([torch.stack([cos, -sin * (height / width), zero], dim=-1),
                         torch.stack([sin * (width / height), cos, zero], dim=-1)], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_rotation(x: torch.Tensor, generator: torch.Generator, max_degrees: float) -> torch.Tensor:
    """Rotate each image by an angle drawn uniformly from [-max_degrees, max_degrees]; max_degrees 0 returns x."""
    _check_images(x, "random_rotation")
    if max_degrees < 0:
        raise ValueError(f"random_rotation: max_degrees must be >= 0, got {max_degrees}")
    if max_degrees == 0:
        return x  # exact identity, and no resampling blur
    degrees = (_uniform(len(x), generator, x.device) * 2 - 1) * max_degrees
    return rotate(x, degrees)


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(x - mean[c]) / std[c] for each channel c."""
    _check_images(x, "normalize")
    channels = x.shape[1]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"normalize: images have {channels} channels but mean has {len(mean)} and std "
                         f"{len(std)} values")
    if min(std) <= 0:
        raise ValueError(f"normalize: std must be positive, got {tuple(std)}")
    mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device)[None, :, None, None]
    std_t = torch.tensor(std, dtype=x.dtype, device=x.device)[None, :, None, None]
    return (x - mean_t) / std_t


@dataclass(frozen=True)
class Augmentation:
    """Random rotation, then random crop (back to the input size), then random horizontal flip, then normalize.

    Normalization comes last so that the pixels rotation and crop bring in from outside are 0, i.e. black, as in
    the usual pipelines that pad before normalizing. A step that is off draws nothing from the generator.
    """
    flip: bool = False
    crop_padding: int = 0
    rotation_degrees: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.crop_padding < 0:
            raise ValueError(f"Augmentation: crop_padding must be >= 0, got {self.crop_padding}")
        if self.rotation_degrees < 0:
            raise ValueError(f"Augmentation: rotation_degrees must be >= 0, got {self.rotation_degrees}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("Augmentation: give both mean and std, or neither")
        if self.mean is not None and len(self.mean) != len(self.std):
            raise ValueError(f"Augmentation: mean has {len(self.mean)} values but std has {len(self.std)}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _check_images(x, "Augmentation")
        if self.rotation_degrees:
            x = random_rotation(x, generator, self.rotation_degrees)
        if self.crop_padding:
            x = random_crop(x, generator, tuple(x.shape[-2:]), self.crop_padding)
        if self.flip:
            x = random_horizontal_flip(x, generator)
        return self.preprocess(x)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic part (normalization), which evaluation must apply too."""
        if self.mean is not None:
            x = normalize(x, self.mean, self.std)
        return x


def standard_augmentation(dataset_name: str) -> Augmentation:
    """The training augmentation commonly used for the dataset in the (binary) network literature.

    CIFAR-10/100: random crop with 4 pixels of zero padding, horizontal flip, normalize.
    MNIST, Fashion-MNIST: random crop with 2 pixels of padding, normalize (no flip: a mirrored digit is another
    glyph; Fashion-MNIST follows the same recipe; rotation is available but off by default).
    digits, synthetic: none (tiny images, where a shift of one pixel is already a large change).
    NAME@SIZE (padded images): NAME's.
    """
    dataset_name = dataset_name.partition("@")[0]
    if dataset_name in ("cifar10", "cifar100"):
        mean, std = dataset_normalization(dataset_name)
        return Augmentation(flip=True, crop_padding=4, mean=mean, std=std)
    if dataset_name in ("mnist", "fashion-mnist"):
        mean, std = dataset_normalization(dataset_name)
        return Augmentation(crop_padding=2, rotation_degrees=0.0, mean=mean, std=std)
    if dataset_name in ("digits", "synthetic"):
        return Augmentation()
    raise ValueError(f"unknown dataset {dataset_name!r}; choose one of {', '.join(DATASET_NAMES)}")
