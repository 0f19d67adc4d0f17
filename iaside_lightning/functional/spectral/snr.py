"""Spectral signal-to-noise ratio of a perturbation, band by band (method.md section 6).

For clean images ``x`` and perturbed images ``x'``, band ``k`` has ``SNR_k = ||m_k X||^2 / ||m_k (X' - X)||^2``
with ``X = rfft2(x)`` and the band masks ``m_k`` of :func:`~iaside_lightning.functional.spectral.bands.band_masks`. Powers
are Parseval-normalised, so a band's power is the energy (sum of squares) of its band image in pixel space and the
powers of all bands add up to the image's energy.
"""

from typing import Literal

import torch
from torch import Tensor

from iaside_lightning.functional.checks import check_images
from iaside_lightning.functional.spectral.bands import BandEdges, BandShape, band_masks

__all__ = ["Reduction", "band_power", "spectral_snr"]

Reduction = Literal["mean", "none"]

#: Perturbation power below ``(ROUNDING_FACTOR * eps)^2`` times the energy of the clean plus the perturbed images
#: (``eps`` of the input dtype) is rounding error, not signal: the band counts as unperturbed (+inf dB).
ROUNDING_FACTOR = 16.0


def band_power(
    images: Tensor,
    *,
    num_bands: int = 8,
    band_shape: BandShape = "square",
    band_edges: BandEdges = "rings",
) -> Tensor:
    """Energy of every band of every image: ``||b_k||^2`` summed over channels and pixels, ``b_k`` the band image.

    Computed on the ``rfft2`` half-spectrum in float64, each bin weighted by how often it occurs in the full
    spectrum (twice, except the columns of zero and Nyquist frequency), divided by ``H * W`` (Parseval).

    Args:
        images: float tensor ``[B, C, H, W]``.
        num_bands: number of bands ``M``.
        band_shape: ``"square"`` (the paper's) or ``"circle"``.
        band_edges: ``"rings"`` (the default, as in the Shapley analysis), ``"linear"``, ``"log"`` or an increasing
            sequence of ``M + 1`` normalised radii from 0 to 1.

    Returns:
        Float64 tensor ``[B, M]``; each row sums to the image's energy ``(x ** 2).sum()``.

    Raises:
        TypeError: if ``images`` is not a 4-D floating-point tensor.
        ValueError: if the images are too small for ``M`` bands or an option is invalid.

    Example:
        >>> x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
        >>> power = band_power(x, num_bands=4)
        >>> power.shape, torch.allclose(power.sum(1), (x**2).sum((1, 2, 3)))
        (torch.Size([2, 4]), True)
    """
    check_images(images, "images")
    height, width = images.shape[-2:]
    masks = band_masks(height, width, num_bands, band_shape, band_edges).to(images.device, torch.float64)
    multiplicity = torch.full((width // 2 + 1,), 2.0, dtype=torch.float64, device=images.device)
    multiplicity[0] = 1.0
    if width % 2 == 0:
        multiplicity[-1] = 1.0
    spectrum = torch.fft.rfft2(images.to(torch.float64))
    power = spectrum.real**2 + spectrum.imag**2
    return torch.einsum("bchw,mhw->bm", power, masks * multiplicity) / (height * width)


def spectral_snr(
    clean: Tensor,
    perturbed: Tensor,
    *,
    num_bands: int = 8,
    band_shape: BandShape = "square",
    band_edges: BandEdges = "rings",
    reduction: Reduction = "mean",
) -> Tensor:
    """Per-band signal-to-noise ratio in dB of perturbed images against clean ones.

    ``SNR_k = 10 log10(P_k(x) / P_k(x' - x))`` with ``P_k`` the energy in band ``k`` (see :func:`band_power`). With
    ``reduction="mean"`` both energies are summed over the data set before the ratio (the ratio of mean powers);
    with ``"none"`` every image gets its own ratio. A band in which the perturbation has no energy gets ``+inf`` dB
    (also when the clean band is empty); energy below the rounding floor of the input dtype,
    ``(16 eps)^2 (||x||^2 + ||x'||^2)``, counts as none. A perturbation in a band where the clean images have no
    energy gives ``-inf`` dB.

    Bands are cut in the space the images arrive in: pass pixel-space images (e.g. in ``[0, 1]``), not normalised
    ones, to compare with the paper.

    Args:
        clean: float tensor ``[B, C, H, W]`` of clean images.
        perturbed: float tensor of the same shape: the perturbed images (corrupted, noisy or adversarial).
        num_bands: number of bands ``M``.
        band_shape: ``"square"`` (the paper's) or ``"circle"``.
        band_edges: ``"rings"`` (the default, as in the Shapley analysis), ``"linear"``, ``"log"`` or an increasing
            sequence of ``M + 1`` normalised radii from 0 to 1.
        reduction: ``"mean"`` (one SNR per band over the data set) or ``"none"`` (one per image and band).

    Returns:
        Float64 tensor on the images' device, ``[M]`` for ``"mean"``, ``[B, M]`` for ``"none"``, lowest band first.
        Band edges in cycles per pixel are ``0.5 * band_edges(num_bands, band_edges, size=(H, W), band_shape=...)``.

    Raises:
        TypeError: if an input is not a 4-D floating-point tensor.
        ValueError: if the shapes differ, an input is empty or not finite, or an option is invalid.

    Example:
        >>> clean = torch.rand(4, 1, 32, 32)
        >>> snr = spectral_snr(clean, clean + 0.1 * torch.randn(4, 1, 32, 32), num_bands=4)
        >>> snr.shape, bool(snr[0] > snr[-1])  # white noise on images with most energy at low frequency
        (torch.Size([4]), True)
    """
    check_images(clean, "clean")
    check_images(perturbed, "perturbed")
    if clean.shape != perturbed.shape:
        raise ValueError(
            f"`clean` and `perturbed` must have the same shape [B, C, H, W], got {tuple(clean.shape)} and "
            f"{tuple(perturbed.shape)}. Pass each perturbed image beside its own clean image."
        )
    if reduction not in ("mean", "none"):
        raise ValueError(f"`reduction` must be 'mean' or 'none', got {reduction!r}.")
    options = {"num_bands": num_bands, "band_shape": band_shape, "band_edges": band_edges}
    signal = band_power(clean, **options)
    noise = band_power(perturbed.to(torch.float64) - clean.to(torch.float64), **options)
    energy = (clean.to(torch.float64) ** 2 + perturbed.to(torch.float64) ** 2).sum((1, 2, 3))
    if reduction == "mean":
        signal, noise, energy = signal.sum(0), noise.sum(0), energy.sum(0)
    eps = max(torch.finfo(clean.dtype).eps, torch.finfo(perturbed.dtype).eps)
    floor = (ROUNDING_FACTOR * eps) ** 2 * energy
    snr = 10.0 * torch.log10(signal / noise)
    return torch.where(noise <= floor[..., None], torch.full_like(snr, float("inf")), snr)
