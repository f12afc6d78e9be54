"""Augmentation: determinism per generator, what each step does to pixels, and the per-dataset recipes."""

import pytest
import torch
import torch.nn.functional as F

from hbnn.quant.augment import (Augmentation, dataset_normalization, normalize, random_crop, random_horizontal_flip,
                                random_rotation, rotate, standard_augmentation)
from hbnn.quant.data import DATASET_NAMES, load_dataset


def images(n=6, channels=3, height=5, width=5, seed=0):
    return torch.rand(n, channels, height, width, generator=torch.Generator().manual_seed(seed))


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("augmentation", [
    standard_augmentation("cifar10"),
    Augmentation(flip=True, crop_padding=2, rotation_degrees=15.0, mean=(0.5,) * 3, std=(0.25,) * 3),
])
def test_same_seed_same_result_other_seed_other_result(augmentation):
    x = images(n=16, height=8, width=8)
    first = augmentation(x, generator(3))
    assert torch.equal(first, augmentation(x, generator(3)))
    assert not torch.equal(first, augmentation(x, generator(4)))
    assert first.shape == x.shape and torch.equal(x, images(n=16, height=8, width=8))  # input left alone


def test_flip_mirrors_rows():
    x = images()
    assert torch.equal(random_horizontal_flip(x, generator(), p=1.0), x.flip(-1))
    assert torch.equal(random_horizontal_flip(x, generator(), p=0.0), x)
    mixed = random_horizontal_flip(images(n=64), generator(), p=0.5)
    flipped = torch.tensor([torch.equal(m, o.flip(-1)) for m, o in zip(mixed, images(n=64))])
    kept = torch.tensor([torch.equal(m, o) for m, o in zip(mixed, images(n=64))])
    assert torch.all(flipped ^ kept) and 16 < int(flipped.sum()) < 48


def test_crop_keeps_shape_and_shifts_content_with_zero_padding():
    x = images(n=200, channels=2, height=4, width=5) + 1  # no zeros, so padding is recognisable
    padding = 2
    out = random_crop(x, generator(), size=(4, 5), padding=padding)
    assert out.shape == x.shape
    padded = F.pad(x, (padding,) * 4)
    offsets = set()
    for sample, (crop, source) in enumerate(zip(out, padded)):
        matches = [(dy, dx) for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)
                   if torch.equal(crop, source[:, dy:dy + 4, dx:dx + 5])]
        assert len(matches) == 1, f"sample {sample} is not one window of the padded image"
        offsets.add(matches[0])
        if matches[0] != (padding, padding):  # shifted: some border pixels are the zero padding
            assert (crop == 0).any()
    assert len(offsets) == (2 * padding + 1) ** 2  # every offset is used, per sample


def test_crop_to_a_smaller_window_and_bad_sizes():
    x = images(n=4, height=6, width=6)
    assert random_crop(x, generator(), size=3, padding=0).shape == (4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"random_crop: size \(9, 9\) does not fit images of \(6, 6\) padded by 1"):
        random_crop(x, generator(), size=9, padding=1)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        random_crop(x, generator(), size=6, padding=-1)


def test_rotation_by_zero_is_identity_and_by_right_angles_matches_rot90():
    # Rotation resamples with grid_sample (float interpolation of a data augmentation, not part of any integer
    # inference path), so only the zero-angle shortcut is exact; the others are float-vs-float comparisons.
    x = images(height=7, width=7)
    assert torch.equal(random_rotation(x, generator(), max_degrees=0), x)
    quarter = rotate(x, torch.full((len(x),), 90.0))
    assert torch.allclose(quarter, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)
    wide = images(height=4, width=6)
    assert torch.allclose(rotate(wide, torch.full((len(wide),), 180.0)), wide.flip(-2, -1), atol=1e-5)
    assert torch.allclose(rotate(x, torch.zeros(len(x))), x, atol=1e-6)


def test_random_rotation_angles_vary_per_sample_within_the_bound():
    x = images(n=1, height=9, width=9).expand(32, -1, -1, -1)
    out = random_rotation(x, generator(), max_degrees=30)
    assert out.shape == x.shape
    assert len({tuple(o.flatten()[:5].tolist()) for o in out}) == 32
    # The centre pixel is the rotation's fixed point.
    assert torch.allclose(out[:, :, 4, 4], x[:, :, 4, 4], atol=1e-5)


def test_normalize_matches_formula():
    x = images(channels=3)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = normalize(x, mean, std)
    for c in range(3):
        assert torch.allclose(out[:, c], (x[:, c] - mean[c]) / std[c])
    with pytest.raises(ValueError, match="images have 3 channels but mean has 1"):
        normalize(x, (0.5,), (0.5,))
    with pytest.raises(ValueError, match="std must be positive"):
        normalize(x, mean, (0.5, 0.0, 1.0))


def test_standard_recipes():
    cifar = standard_augmentation("cifar100")
    assert cifar.flip and cifar.crop_padding == 4 and cifar.rotation_degrees == 0
    assert (cifar.mean, cifar.std) == dataset_normalization("cifar100") and len(cifar.mean) == 3
    fashion = standard_augmentation("fashion-mnist")
    assert not fashion.flip and fashion.crop_padding == 2 and (fashion.mean, fashion.std) == ((0.2860,), (0.3530,))
    assert standard_augmentation("mnist").crop_padding == 2
    for name in ("digits", "synthetic"):
        x = load_dataset("synthetic").train_images[:4]
        assert standard_augmentation(name) == Augmentation() and torch.equal(Augmentation()(x, generator()), x)
    for name in DATASET_NAMES:
        mean, std = dataset_normalization(name)
        assert len(mean) == len(std) == (3 if name.startswith("cifar") else 1)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; choose one of digits"):
        standard_augmentation("imagenet")


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_computed_normalization_matches_the_training_set(name):
    pixels = load_dataset(name).train_x.double()
    (mean,), (std,) = dataset_normalization(name)
    assert abs(pixels.mean().item() - mean) < 1e-4 and abs(pixels.std(unbiased=False).item() - std) < 1e-4


def test_augmentation_applies_to_dataset_images_and_rejects_bad_input():
    dataset = load_dataset("digits")
    augmented = standard_augmentation("mnist")(dataset.train_images[:10], generator())
    assert augmented.shape == (10, 1, 8, 8)
    with pytest.raises(ValueError, match=r"expected a float batch of shape \(N, C, H, W\).*train_images"):
        Augmentation(flip=True)(dataset.train_x[:10], generator())
    with pytest.raises(ValueError, match="both mean and std"):
        Augmentation(mean=(0.5,))
    with pytest.raises(ValueError, match="crop_padding must be >= 0"):
        Augmentation(crop_padding=-1)
