"""Known answers: trained CNNs on planted-band data, and an additive energy model with analytic Shapley values."""

import pytest
import torch
from reference import reference_full_masks
from torch import nn

from iaside_lightning.datasets import make_planted_band_images
from iaside_lightning.functional import (
    band_images,
    band_masks,
    coalition_matrix,
    coalition_values,
    derangement,
    fill_images,
    per_sample_shapley,
    spectral_shapley,
)

pytestmark = pytest.mark.usefixtures("single_thread")

NUM_BANDS, SIZE, CLASSES = 8, 16, 4


def _train_on_planted_band(planted: int, band_shape: str, zero_mean: bool):
    """A small BatchNorm CNN trained ~1 s with Adam on images whose class lives only in band ``planted``.

    Returns the model (eval mode), validation images as the model sees them, their labels and the
    ``normalization`` to pass to the engine (``None`` for zero-mean data, fed to the model as is).
    """
    torch.manual_seed(0)
    options = dict(image_size=SIZE, planted_bands=planted, num_bands=NUM_BANDS, band_shape=band_shape,
                   num_classes=CLASSES, signal_strength=1.0)
    train_x, train_y = make_planted_band_images(512, seed=1, **options)
    val_x, val_y = make_planted_band_images(32, seed=2, **options)
    if zero_mean:
        train_x, val_x, normalization = train_x - 0.5, val_x - 0.5, None
    else:
        mean, std = float(train_x.mean()), float(train_x.std())
        train_x, val_x, normalization = (train_x - mean) / std, (val_x - mean) / std, ((mean,), (std,))
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, CLASSES),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(4):
        for batch in torch.randperm(len(train_x)).split(64):
            loss = nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval(), val_x, val_y, normalization


def _assert_peak(phi: torch.Tensor, planted: int) -> None:
    others = torch.cat([phi[:planted], phi[planted + 1 :]])
    assert int(phi.argmax()) == planted, f"phi peaks at band {int(phi.argmax())}, planted {planted}: {phi.tolist()}"
    assert float(phi[planted]) > 2 * float(others.abs().max()), f"weak peak: {phi.tolist()}"


@pytest.mark.parametrize(
    ("planted", "band_shape"), [(1, "square"), (3, "square"), (6, "square"), (3, "circle"), (5, "circle")]
)
def test_permute_fill_finds_the_planted_band(planted, band_shape):
    model, images, labels, normalization = _train_on_planted_band(planted, band_shape, zero_mean=False)
    result = spectral_shapley(
        model, images, labels, num_bands=NUM_BANDS, band_shape=band_shape, fill="permute", normalization=normalization
    )
    _assert_peak(result.phi, planted)


@pytest.mark.parametrize(
    ("planted", "band_shape", "fill"), [(2, "square", "zero"), (6, "circle", "zero"), (4, "square", "noise")]
)
def test_zero_and_noise_fill_find_the_planted_band_on_zero_mean_data(planted, band_shape, fill):
    """A blank image is in distribution for zero-mean data, so band 0 (the DC) does not soak up the importance."""
    model, images, labels, _ = _train_on_planted_band(planted, band_shape, zero_mean=True)
    result = spectral_shapley(model, images, labels, num_bands=NUM_BANDS, band_shape=band_shape, fill=fill)
    _assert_peak(result.phi, planted)


class _EnergyModel(nn.Module):
    """Two-class model with ``log p(class 0 | x) = -(eps + c ||k * x||^2)`` for a fixed circular convolution ``k``.

    ``k *`` is diagonal in frequency, so band images stay orthogonal after it and the log-probability of class 0 is
    additive over bands: ``v(S) = -eps - c sum_{k in S} ||k * b_k||^2`` (plus the fill's bands for the others).
    """

    def __init__(self, channels: int, scale: float = 0.05, eps: float = 1e-3):
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 3, padding=1, padding_mode="circular", bias=False).double()
        self.scale, self.eps = scale, eps

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.conv(x).pow(2).sum(dim=(1, 2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        neg_log_p = self.eps + self.energy(x)
        return torch.stack([-neg_log_p, torch.log(-torch.expm1(-neg_log_p))], dim=1)


@pytest.mark.parametrize(
    ("fill", "channels", "band_shape"), [("zero", 2, "square"), ("permute", 1, "circle"), ("noise", 1, "square")]
)
def test_additive_energy_model_has_analytic_shapley_values(fill, channels, band_shape):
    batch, height, width, num_bands = 5, 12, 11, 4
    model = _EnergyModel(channels)
    images = torch.rand(batch, channels, height, width, dtype=torch.float64)
    labels = torch.zeros(batch, dtype=torch.long)
    full = reference_full_masks(height, width, num_bands, band_shape)
    own = torch.fft.ifft2(full[:, None, None] * torch.fft.fft2(images)[None]).real  # [M, B, C, H, W]
    if fill == "zero":
        filled = torch.zeros_like(own)
    elif fill == "permute":
        filled = own[:, derangement(batch, seed=0)]
    else:
        masks = band_masks(height, width, num_bands, band_shape)
        filled = fill_images(band_images(images, masks), masks, "noise", seed=0)
    with torch.no_grad():
        own_energy = torch.stack([model.energy(b) for b in own], dim=1)  # [B, M]
        fill_energy = torch.stack([model.energy(f) for f in filled], dim=1)
    coalitions = coalition_matrix(num_bands, dtype=torch.float64)
    expected_values = -model.eps - own_energy @ coalitions.T - fill_energy @ (1 - coalitions).T

    values = coalition_values(model, images, labels, num_bands=num_bands, band_shape=band_shape, fill=fill)
    torch.testing.assert_close(values, expected_values, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(per_sample_shapley(values), fill_energy - own_energy, atol=1e-9, rtol=1e-9)
    result = spectral_shapley(model, images, labels, num_bands=num_bands, band_shape=band_shape, fill=fill)
    torch.testing.assert_close(result.phi, (fill_energy - own_energy).mean(0), atol=1e-9, rtol=1e-9)
