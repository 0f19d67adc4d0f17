"""A peer oracle beside the brute-force reference: captum's exact ``ShapleyValues`` over band coalitions."""

import pytest
import torch
from captum.attr import ShapleyValues
from torch import Tensor, nn

from iaside_lightning.functional import band_images, band_masks, coalition_values, per_sample_shapley


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 12 * 12, 3)).double()


@pytest.mark.parametrize("num_bands", [4, 6])
def test_engine_equals_captum_shapley_values_over_band_indicators(num_bands: int) -> None:
    """Players are the bands: captum switches each band's indicator between 1 (kept) and its baseline 0 (filled
    with zero); the game's value is the log-probability of the label on the resulting image."""
    model = _model()
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(3, 2, 12, 12, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 2, 1])
    bands = band_images(images, band_masks(12, 12, num_bands))  # [M, B, C, H, W]
    engine = per_sample_shapley(coalition_values(model, images, labels, num_bands=num_bands, fill="zero"))
    for i in range(len(labels)):

        def game(indicators: Tensor, i: int = i) -> Tensor:
            coalition_images = torch.einsum("nm,mchw->nchw", indicators, bands[:, i])
            return torch.log_softmax(model(coalition_images), dim=1)[:, labels[i]]

        captum = ShapleyValues(game).attribute(
            torch.ones(1, num_bands, dtype=torch.float64), baselines=torch.zeros(1, num_bands, dtype=torch.float64)
        )
        torch.testing.assert_close(captum[0].to(torch.float64), engine[i], rtol=0, atol=1e-6)  # captum sums in float32
    assert float(engine.abs().max()) > 1e-2  # a game in which the bands matter
