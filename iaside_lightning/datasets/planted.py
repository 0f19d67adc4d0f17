"""Synthetic images with known ground truth: the class lives only in chosen frequency bands.

Every image is a natural-looking ``1/f^alpha`` background (random phases, class-independent) plus a class texture:
a class-specific power profile over the frequencies of the planted band(s), with random phases per image. Outside the planted bands nothing depends on the label, so a model
that classifies well must draw its predictive power from those bands: its Shapley values should peak there.
"""

from collections.abc import Sequence
from typing import Union

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from iaside_lightning.functional.spectral.bands import BandEdges, BandShape, band_masks

__all__ = ["PlantedBandDataset", "make_planted_band_images"]


def make_planted_band_images(
    num_samples: int,
    *,
    num_classes: int = 4,
    image_size: Union[int, tuple[int, int]] = 32,
    channels: int = 1,
    planted_bands: Union[int, Sequence[int]] = 2,
    num_bands: int = 8,
    band_shape: BandShape = "square",
    band_edges: BandEdges = "rings",
    alpha: float = 1.0,
    signal_strength: float = 0.5,
    seed: int = 0,
    class_seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Generate ``(images, labels)`` whose class is encoded only in ``planted_bands``.

    Args:
        num_samples: number of images.
        num_classes: number of classes (each has its own band-limited pattern).
        image_size: ``H`` (square) or ``(H, W)``.
        channels: image channels.
        planted_bands: band index or indices (0 = lowest) carrying the class signal.
        num_bands: number of bands ``M`` of the band partition the signal is planted in.
        band_shape: band geometry, as in :func:`~iaside_lightning.functional.spectral.bands.band_masks`.
        band_edges: band edges, as in :func:`~iaside_lightning.functional.spectral.bands.band_edges`; the default matches
            the analysis' default, so that planted band ``k`` is analysed band ``k``.
        alpha: exponent of the background's amplitude spectrum ``1/f^alpha`` (1 is typical of natural images).
        signal_strength: RMS of the class texture relative to the background's RMS; each image draws its own
            amplitude uniformly from ``[0.5, 1.5] * signal_strength``.
        seed: seed of the samples (backgrounds, labels, phases, amplitudes): use different seeds for training and
            validation data.
        class_seed: seed of the class definitions (power profiles); keep it equal across splits.

    Returns:
        ``images`` float32 ``[N, C, H, W]`` with pixel values around 0.5, and ``labels`` int64 ``[N]``
        (balanced, shuffled).

    Example:
        >>> x, y = make_planted_band_images(8, image_size=(16, 24), channels=3, planted_bands=[1, 2], num_bands=4)
        >>> x.shape, y.shape, x.dtype
        (torch.Size([8, 3, 16, 24]), torch.Size([8]), torch.float32)
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    planted = [planted_bands] if isinstance(planted_bands, int) else list(planted_bands)
    if num_samples < 1 or num_classes < 2 or channels < 1:
        raise ValueError(
            f"Need num_samples >= 1, num_classes >= 2 and channels >= 1, got {num_samples}, {num_classes}, {channels}."
        )
    if not planted or any(not 0 <= k < num_bands for k in planted):
        raise ValueError(f"`planted_bands` must be indices in [0, {num_bands}), got {planted_bands!r}.")
    if signal_strength < 0:
        raise ValueError(f"`signal_strength` must be >= 0, got {signal_strength!r}.")
    masks = band_masks(height, width, num_bands, band_shape, band_edges)
    bins = masks[planted].any(dim=0)
    bins[:, 0] = False  # column 0 (and the Nyquist column) hold conjugate pairs; use the free half-plane only
    if width % 2 == 0:
        bins[:, -1] = False
    if int(bins.sum()) < 2:
        raise ValueError(f"Band(s) {planted} of a {height}x{width} image hold too few frequencies to plant a class.")
    generator = torch.Generator().manual_seed(seed)
    background = _power_law_noise(num_samples, channels, height, width, alpha, generator)
    # Each class has its own random power profile over the planted bins; every image draws fresh random phases,
    # so the class is a band-limited texture (translation invariant), not a fixed picture.
    class_generator = torch.Generator().manual_seed(class_seed)
    profiles = torch.rand(num_classes, channels, int(bins.sum()), generator=class_generator) ** 2
    labels = torch.arange(num_samples) % num_classes
    labels = labels[torch.randperm(num_samples, generator=generator)]
    phases = torch.rand(num_samples, channels, int(bins.sum()), generator=generator) * (2 * torch.pi)
    spectrum = torch.zeros(num_samples, channels, height, width // 2 + 1, dtype=torch.complex64)
    spectrum[..., bins] = profiles[labels].sqrt() * torch.exp(1j * phases)
    signal = torch.fft.irfft2(spectrum, s=(height, width))
    signal = signal / signal.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    amplitude = (0.5 + torch.rand(num_samples, generator=generator)) * signal_strength
    images = 0.5 + 0.15 * (background + amplitude[:, None, None, None] * signal)
    return images.float(), labels


def _power_law_noise(num: int, channels: int, height: int, width: int, alpha: float, generator: torch.Generator) -> Tensor:
    """Zero-mean, unit-RMS images with amplitude spectrum ``1 / f^alpha`` and random phases."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    radius = torch.sqrt(fy**2 + fx**2)
    amplitude = radius.clamp_min(1.0 / max(height, width)).pow(-alpha)
    amplitude[0, 0] = 0.0
    white = torch.randn(num, channels, height, width, generator=generator)
    noise = torch.fft.irfft2(torch.fft.rfft2(white) * amplitude, s=(height, width))
    return noise / noise.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()


class PlantedBandDataset(TensorDataset):
    """A :class:`~torch.utils.data.TensorDataset` of ``(image, label)`` pairs from
    :func:`make_planted_band_images`; all keyword arguments are passed through.

    Example:
        >>> ds = PlantedBandDataset(10, planted_bands=3, image_size=32)
        >>> image, label = ds[0]
        >>> image.shape, len(ds)
        (torch.Size([1, 32, 32]), 10)
    """

    def __init__(self, num_samples: int, **kwargs: object) -> None:
        images, labels = make_planted_band_images(num_samples, **kwargs)  # type: ignore[arg-type]
        super().__init__(images, labels)
