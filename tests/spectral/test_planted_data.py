"""Planted-band synthetic data: shapes, determinism, balance, and class information confined to the planted band."""

import pytest
import torch

from iaside_lightning.datasets import PlantedBandDataset, make_planted_band_images
from iaside_lightning.functional import band_masks


@pytest.mark.parametrize(("size", "channels"), [(16, 1), ((12, 20), 3)])
def test_shapes_dtypes_and_range(size, channels):
    images, labels = make_planted_band_images(10, image_size=size, channels=channels, num_classes=3, planted_bands=5)
    height, width = (size, size) if isinstance(size, int) else size
    assert images.shape == (10, channels, height, width) and images.dtype == torch.float32
    assert labels.shape == (10,) and labels.dtype == torch.int64
    assert set(labels.tolist()) <= {0, 1, 2}
    assert abs(float(images.mean()) - 0.5) < 0.05


def test_deterministic_by_seed():
    first = make_planted_band_images(20, planted_bands=3, seed=5)
    again = make_planted_band_images(20, planted_bands=3, seed=5)
    other = make_planted_band_images(20, planted_bands=3, seed=6)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize(("num_samples", "num_classes"), [(40, 4), (23, 4), (10, 3)])
def test_classes_are_balanced_and_shuffled(num_samples, num_classes):
    _, labels = make_planted_band_images(num_samples, num_classes=num_classes, image_size=16)
    counts = torch.bincount(labels, minlength=num_classes)
    assert int(counts.sum()) == num_samples and int(counts.max() - counts.min()) <= 1
    assert not torch.equal(labels, torch.arange(num_samples) % num_classes)


@pytest.mark.parametrize(
    ("planted", "band_shape", "size"), [(1, "square", 16), (3, "circle", 16), ((2, 6), "square", (12, 20))]
)
def test_class_information_lives_only_in_the_planted_bands(planted, band_shape, size):
    """Per-class mean power spectra differ (relative spread across classes) only inside the planted band(s)."""
    images, labels = make_planted_band_images(
        2000, image_size=size, planted_bands=planted, band_shape=band_shape, signal_strength=1.0, seed=3
    )
    height, width = images.shape[-2:]
    power = torch.fft.rfft2(images[:, 0].double()).abs().pow(2)
    class_means = torch.stack([power[labels == c].mean(0) for c in range(4)])
    spread = class_means.std(0) / class_means.mean(0)
    planted_mask = band_masks(height, width, 8, band_shape)[list(planted) if isinstance(planted, tuple) else planted]
    planted_mask = planted_mask.reshape(-1, height, width // 2 + 1).any(0)
    inside = planted_mask.clone()
    inside[:, 0] = False  # the generator plants only in the free half-plane (columns 0 and W/2 are self-paired)
    if width % 2 == 0:
        inside[:, -1] = False
    outside = float(spread[~planted_mask].max())
    assert outside < 0.2, "class-dependent power outside the planted band"
    # Classes draw random power profiles, so a few planted bins may happen to look alike; most must differ.
    assert float(spread[inside].median()) > 3 * outside, "the planted band carries too little class information"


def test_band_zero_of_a_small_image_is_refused():
    # 14x14 has 8 rings: with 8 bands, band 0 holds the DC ring alone, which can carry no class texture.
    with pytest.raises(ValueError, match="too few frequencies"):
        make_planted_band_images(4, image_size=14, planted_bands=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(planted_bands=8), "planted_bands"),
        (dict(planted_bands=[]), "planted_bands"),
        (dict(num_classes=1), "num_classes"),
        (dict(signal_strength=-1.0), "signal_strength"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_planted_band_images(4, image_size=16, **kwargs)


def test_dataset_wraps_the_generator():
    dataset = PlantedBandDataset(12, planted_bands=2, image_size=16, seed=4)
    images, labels = make_planted_band_images(12, planted_bands=2, image_size=16, seed=4)
    assert len(dataset) == 12
    image, label = dataset[3]
    assert torch.equal(image, images[3]) and int(label) == int(labels[3])
