"""``spectral_shapley(..., per_sample=True)``: per-sample phi against the brute-force reference, efficiency per
sample, mean equals phi, and the coalitions behind the values of sampled estimators."""

import pytest
import torch
from reference import reference_full_masks, reference_shapley, reference_values

from iaside_lightning.functional import coalition_matrix, coalition_values, spectral_shapley

pytestmark = pytest.mark.usefixtures("single_thread")


def test_per_sample_phi_matches_the_brute_force_reference(make_cnn):
    model = make_cnn(channels=1, classes=3)
    images, labels = torch.rand(5, 1, 12, 12, dtype=torch.float64), torch.tensor([0, 1, 2, 1, 0])
    result = spectral_shapley(model, images, labels, num_bands=3, fill="zero", per_sample=True)
    values = reference_values(model, images, labels, reference_full_masks(12, 12, 3))
    torch.testing.assert_close(result.phi_per_sample, reference_shapley(values, 3), atol=1e-9, rtol=1e-9)
    columns = [frozenset(int(k) for k in row.nonzero()) for row in result.coalitions]
    expected = torch.stack([values[c] for c in columns], 1)
    torch.testing.assert_close(result.values_per_sample, expected, atol=1e-9, rtol=1e-9)


def test_exact_per_sample_outputs_are_efficient_and_average_to_phi(make_cnn):
    model = make_cnn(channels=1, classes=4)
    images, labels = torch.rand(7, 1, 16, 16, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1, 2])
    result = spectral_shapley(model, images, labels, num_bands=4, fill="permute", seed=3, per_sample=True)
    values = result.values_per_sample
    assert result.phi_per_sample.shape == (7, 4) and values.shape == (7, 16) and result.coalitions.shape == (16, 4)
    torch.testing.assert_close(result.phi_per_sample.sum(1), values[:, -1] - values[:, 0])  # efficiency per sample
    torch.testing.assert_close(result.phi_per_sample.mean(0), result.phi)
    torch.testing.assert_close(values.mean(0), result.coalition_values)
    assert torch.equal(result.coalitions, coalition_matrix(4, dtype=torch.int64))
    plain = spectral_shapley(model, images, labels, num_bands=4, fill="permute", seed=3)
    assert plain.phi_per_sample is None and plain.values_per_sample is None and plain.coalitions is None
    torch.testing.assert_close(plain.phi, result.phi, atol=0.0, rtol=0.0)


@pytest.mark.parametrize("estimator", ["permutation", "kernel"])
def test_sampled_per_sample_outputs_name_the_coalitions_they_evaluated(make_cnn, estimator):
    model = make_cnn(channels=1, classes=3)
    images, labels = torch.rand(4, 1, 24, 24, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    result = spectral_shapley(
        model, images, labels, num_bands=9, fill="zero", estimator=estimator, max_coalitions=160, per_sample=True
    )
    torch.testing.assert_close(result.phi_per_sample.mean(0), result.phi)
    coalitions = result.coalitions
    assert coalitions.dtype == torch.int64 and coalitions.shape[1] == 9 and coalitions.shape[0] <= 160
    assert len({tuple(row) for row in coalitions.tolist()}) == coalitions.shape[0]  # distinct
    direct = coalition_values(model, images, labels, num_bands=9, fill="zero", coalitions=coalitions)
    torch.testing.assert_close(result.values_per_sample, direct)


def test_per_sample_must_be_a_bool(make_cnn):
    with pytest.raises(TypeError, match="per_sample"):
        spectral_shapley(make_cnn(), torch.rand(2, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1]), per_sample=1)
