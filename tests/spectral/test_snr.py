"""Spectral SNR: band powers against a full-spectrum pixel-space reference, confined perturbations, the 1/f slope,
infinities, reductions, bad inputs, and the SNR figure."""

import math

import numpy as np
import pytest
import torch
from torch import Tensor

from reference import reference_full_masks

from iaside_lightning.functional import band_layout, band_power, spectral_snr
from iaside_lightning.plotting import plot_spectral_snr


def _reference_band_images(images: Tensor, num_bands: int, band_shape: str = "square") -> Tensor:
    """``[M, B, C, H, W]``: the real parts of ``ifft2(m_k fft2(x))`` on the full grid."""
    masks = reference_full_masks(images.shape[-2], images.shape[-1], num_bands, band_shape)  # default edges
    spectrum = torch.fft.fft2(images.to(torch.float64))
    return torch.fft.ifft2(spectrum[None] * masks[:, None, None]).real


def _reference_snr_db(clean: Tensor, perturbed: Tensor, num_bands: int, band_shape: str = "square") -> Tensor:
    signal = (_reference_band_images(clean, num_bands, band_shape) ** 2).sum((1, 2, 3, 4))
    noise = (_reference_band_images(perturbed.double() - clean.double(), num_bands, band_shape) ** 2).sum((1, 2, 3, 4))
    return 10 * torch.log10(signal / noise)


@pytest.mark.parametrize(("height", "width"), [(16, 16), (15, 20), (16, 9), (12, 13)])
@pytest.mark.parametrize("band_shape", ["square", "circle"])
def test_band_power_is_the_pixel_space_energy_of_each_band_image(height: int, width: int, band_shape: str) -> None:
    images = torch.randn(3, 2, height, width, dtype=torch.float64)
    power = band_power(images, num_bands=4, band_shape=band_shape)
    expected = (_reference_band_images(images, 4, band_shape) ** 2).sum((2, 3, 4)).T
    torch.testing.assert_close(power, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(power.sum(1), (images**2).sum((1, 2, 3)), rtol=1e-12, atol=0)  # Parseval


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("band", [0, 3, 7])
@pytest.mark.parametrize("band_shape", ["square", "circle"])
def test_a_perturbation_confined_to_one_band_is_infinite_elsewhere(
    dtype: torch.dtype, band: int, band_shape: str
) -> None:
    clean = torch.rand(6, 1, 32, 32, dtype=dtype)
    noise = 0.2 * torch.randn(6, 1, 32, 32, dtype=torch.float64)
    perturbed = (clean.double() + _reference_band_images(noise, 8, band_shape)[band]).to(dtype)
    snr = spectral_snr(clean, perturbed, band_shape=band_shape)

    others = [k for k in range(8) if k != band]
    assert snr.dtype == torch.float64 and snr.shape == (8,)
    assert bool(torch.isposinf(snr[others]).all()), snr
    assert math.isfinite(float(snr[band]))
    expected = _reference_snr_db(clean, perturbed, 8, band_shape)[band]
    torch.testing.assert_close(snr[band], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_white_noise_on_power_law_images_follows_the_expected_per_band_snr_and_slope(alpha: float) -> None:
    """Images with amplitude spectrum ``|f|^-alpha`` plus white noise of std ``sigma``.

    Expected band powers (Parseval-normalised): images ``sum_{bins in k} |f|^-2 alpha`` (a unit white field filtered
    by ``|f|^-alpha``), noise ``sigma^2 n_k`` (``n_k`` bins). So the expected SNR is the band's mean of ``|f|^-2
    alpha`` over ``sigma^2``: flat for white images and falling by about ``20 alpha`` dB per decade of frequency.
    """
    size, num_images, sigma, num_bands = 64, 48, 0.05, 8
    generator = torch.Generator().manual_seed(1)
    fy = torch.fft.fftfreq(size, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(size, dtype=torch.float64)[None, :]
    radius = torch.sqrt(fy**2 + fx**2)
    amplitude = torch.where(radius > 0, radius.clamp(min=1e-12) ** -alpha, torch.zeros_like(radius))  # no DC
    white = torch.randn(num_images, 1, size, size, generator=generator, dtype=torch.float64)
    images = torch.fft.ifft2(torch.fft.fft2(white) * amplitude).real
    perturbed = images + sigma * torch.randn(images.shape, generator=generator, dtype=torch.float64)

    measured = spectral_snr(images, perturbed, num_bands=num_bands)
    masks = reference_full_masks(size, size, num_bands, "square").bool()
    expected = torch.stack([10 * torch.log10((amplitude[m] ** 2).mean() / sigma**2) for m in masks])
    # Sampling error of the band powers; largest in band 0 at alpha = 2, where |f|^-4 puts the power in a few bins.
    torch.testing.assert_close(measured, expected, rtol=0, atol=0.75)

    edges = band_layout(size, size, num_bands).edges.numpy() * 0.5
    centres = (edges[1:] + edges[:-1]) / 2
    slope = np.polyfit(np.log10(centres[1:]), measured[1:].numpy(), 1)[0]  # band 0 holds the lowest frequencies
    expected_slope = np.polyfit(np.log10(centres[1:]), expected[1:].numpy(), 1)[0]
    assert slope == pytest.approx(expected_slope, abs=0.6)
    # the power law's -20 alpha dB/decade, within 10%: square bands average |f|^-2 alpha over squares, not circles
    assert slope == pytest.approx(-20 * alpha, abs=0.1 + 2 * alpha)
    if alpha > 0:
        assert bool((measured.diff() < 0).all()), measured


def test_reduction_none_gives_each_image_its_own_snr_and_mean_pools_the_powers() -> None:
    clean = torch.rand(5, 3, 20, 24, dtype=torch.float64)
    perturbed = (clean + 0.05 * torch.randn_like(clean)).clamp(0, 1)
    per_image = spectral_snr(clean, perturbed, num_bands=4, reduction="none")
    pooled = spectral_snr(clean, perturbed, num_bands=4)

    assert per_image.shape == (5, 4)
    for i in range(5):
        torch.testing.assert_close(per_image[i], spectral_snr(clean[i : i + 1], perturbed[i : i + 1], num_bands=4))
    torch.testing.assert_close(pooled, _reference_snr_db(clean, perturbed, 4))


def test_no_perturbation_is_infinite_and_noise_where_the_images_are_empty_is_minus_infinite() -> None:
    clean = torch.full((2, 1, 16, 16), 0.3, dtype=torch.float64)  # a constant image: energy only at DC (band 0)
    assert bool(torch.isposinf(spectral_snr(clean, clean.clone())).all())
    snr = spectral_snr(clean, clean + 0.01 * torch.randn_like(clean), num_bands=4, reduction="none")
    assert bool(torch.isneginf(snr[:, 1:]).all()) and bool(torch.isfinite(snr[:, 0]).all())


def test_snr_stays_on_the_images_device_and_accepts_mixed_float_dtypes() -> None:
    clean = torch.rand(2, 1, 16, 16)
    snr = spectral_snr(clean, clean.double() + 0.1, num_bands=2)
    assert snr.device == clean.device and snr.dtype == torch.float64
    assert bool(torch.isfinite(snr[0])) and bool(torch.isposinf(snr[1]))  # a constant shift lives at DC only


@pytest.mark.parametrize(
    ("clean", "perturbed", "kwargs", "error", "match"),
    [
        (torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 15), {}, ValueError, "same shape"),
        (torch.rand(2, 1, 16, 16), torch.rand(3, 1, 16, 16), {}, ValueError, "same shape"),
        (torch.rand(1, 16, 16), torch.rand(1, 16, 16), {}, TypeError, "`clean` must be a 4-D"),
        (torch.rand(2, 1, 16, 16), torch.ones(2, 1, 16, 16, dtype=torch.int64), {}, TypeError, "`perturbed`"),
        (torch.rand(2, 1, 16, 16), [[0.0]], {}, TypeError, "`perturbed`.*list"),
        (torch.rand(0, 1, 16, 16), torch.rand(0, 1, 16, 16), {}, ValueError, "empty batch"),
        (torch.rand(2, 1, 16, 16), torch.full((2, 1, 16, 16), float("nan")), {}, ValueError, "NaN"),
        (torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16), {"reduction": "sum"}, ValueError, "'mean' or 'none'"),
        (torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4), {"num_bands": 8}, ValueError, "too small"),
        (torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16), {"band_shape": "hex"}, ValueError, "band_shape"),
    ],
)
def test_bad_inputs_are_refused_with_a_message_naming_the_problem(clean, perturbed, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        spectral_snr(clean, perturbed, **kwargs)


def test_snr_figure_draws_one_line_per_perturbation_and_marks_infinite_bands_at_the_top() -> None:
    edges = np.linspace(0, 0.5, 5)
    fig, ax = plot_spectral_snr(
        {"noise": torch.tensor([30.0, 20.0, 15.0, 10.0]), "blur": [float("inf"), 40.0, 8.0, float("-inf")]},
        band_frequencies=edges,
        title="SNR",
    )
    centres = (edges[1:] + edges[:-1]) / 2
    lines = [line for line in ax.get_lines() if line.get_label() in ("noise", "blur")]
    assert [line.get_label() for line in lines] == ["noise", "blur"]
    np.testing.assert_allclose(lines[0].get_xdata(), centres)
    np.testing.assert_allclose(lines[0].get_ydata(), [30, 20, 15, 10])
    np.testing.assert_allclose(lines[1].get_ydata(), [np.nan, 40, 8, np.nan])
    markers = {line.get_marker(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()
               if line.get_marker() in ("^", "v")}
    assert markers == {"^": ([centres[0]], [1.0]), "v": ([centres[3]], [0.0])}  # axes coordinates: top, bottom
    assert "dB" in ax.get_ylabel() and "cycles/pixel" in ax.get_xlabel() and ax.get_title() == "SNR"
    with pytest.raises(ValueError, match="4 bands"):
        plot_spectral_snr({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 2.0]})
    with pytest.raises(ValueError, match="empty"):
        plot_spectral_snr({})
