"""psi and the spectral robustness score, against the formulas of method.md §5 written out with numpy."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iaside_lightning.functional import (
    band_edges,
    compute_result,
    shapley_statistics,
    spectral_importance_distribution,
    spectral_robustness_score,
)

SETTINGS = settings(max_examples=50, deadline=None)


def numpy_srs(psi: np.ndarray, beta: float) -> float:
    """Signed SRS: b_k = beta^k, b^ = b / ||b||_2, D = (||b||_1 / ||b||_2) / M, (b^ . psi - D) / (1 - D)."""
    num_bands = len(psi)
    b = beta ** np.arange(num_bands, dtype=np.float64)
    b_hat = b / np.linalg.norm(b, 2)
    d = (np.linalg.norm(b, 1) / np.linalg.norm(b, 2)) / num_bands
    return float((b_hat @ psi - d) / (1 - d))


@SETTINGS
@given(arrays(np.float64, st.integers(2, 10), elements=st.floats(-20, 20, allow_nan=False)))
def test_psi_definition(phi):
    shifted = phi - phi.min()
    psi, degenerate = spectral_importance_distribution(torch.from_numpy(phi))
    assert psi.shape == phi.shape and bool(torch.isfinite(psi).all())
    np.testing.assert_allclose(psi.sum().item(), 1.0, rtol=1e-12)
    if shifted.sum() > 1e-6 * max(1.0, np.abs(phi).max()):
        assert not degenerate
        np.testing.assert_allclose(psi.numpy(), shifted / shifted.sum(), rtol=1e-9, atol=1e-12)
        assert psi.min().item() == 0.0


@pytest.mark.parametrize("value", [0.0, 3.7, -1e-3, 1e6])
@pytest.mark.parametrize("num_bands", [2, 8])
def test_equal_phi_gives_a_flagged_uniform_psi(value, num_bands):
    psi, degenerate = spectral_importance_distribution(torch.full((num_bands,), value, dtype=torch.float64))
    assert degenerate
    torch.testing.assert_close(psi, torch.full((num_bands,), 1 / num_bands, dtype=torch.float64))
    assert float(spectral_robustness_score(psi, signed=True)) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_a_single_different_band_is_not_degenerate():
    psi, degenerate = spectral_importance_distribution(torch.tensor([0.0, 0.0, 1e-3, 0.0]))
    assert not degenerate
    torch.testing.assert_close(psi, torch.tensor([0.0, 0.0, 1.0, 0.0]))


@pytest.mark.parametrize("phi", [torch.tensor([1.0]), torch.tensor(1.0), torch.tensor([0.0, float("nan")])])
def test_psi_rejects_bad_phi(phi):
    with pytest.raises(ValueError, match="phi"):
        spectral_importance_distribution(phi)


@SETTINGS
@given(
    arrays(np.float64, st.integers(2, 12), elements=st.floats(0, 1)).filter(lambda a: a.sum() > 1e-3),
    st.floats(0.05, 0.95),
)
def test_srs_matches_formula(weights, beta):
    psi = weights / weights.sum()
    expected = numpy_srs(psi, beta)
    signed = spectral_robustness_score(torch.from_numpy(psi), beta, signed=True)
    unsigned = spectral_robustness_score(torch.from_numpy(psi), beta)
    assert float(signed) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert float(unsigned) == pytest.approx(abs(expected), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("num_bands", [2, 4, 8])
@pytest.mark.parametrize("beta", [0.5, 0.75, 0.9])
def test_signed_srs_sign_follows_where_the_mass_is(num_bands, beta):
    low, high = torch.zeros(num_bands, dtype=torch.float64), torch.zeros(num_bands, dtype=torch.float64)
    low[0], high[-1] = 1.0, 1.0
    assert float(spectral_robustness_score(low, beta, signed=True)) > 0
    assert float(spectral_robustness_score(high, beta, signed=True)) < 0
    uniform = torch.full((num_bands,), 1 / num_bands, dtype=torch.float64)
    assert float(spectral_robustness_score(uniform, beta, signed=True)) == pytest.approx(0.0, abs=1e-12)
    # All mass in the lowest band is the most robust distribution: SRS = (1/||b|| - D) / (1 - D).
    assert float(spectral_robustness_score(low, beta)) == pytest.approx(numpy_srs(low.numpy(), beta), rel=1e-12)


@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5, 1.5])
def test_srs_rejects_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        spectral_robustness_score(torch.full((4,), 0.25), beta)


def test_result_scores_follow_from_phi():
    table = torch.randn(6, 16, dtype=torch.float64)
    result = compute_result(shapley_statistics(table), band_edges(4, "linear"), beta=0.6)
    phi = result.phi.numpy()
    psi = (phi - phi.min()) / (phi - phi.min()).sum()
    np.testing.assert_allclose(result.psi.numpy(), psi, rtol=1e-12)
    assert float(result.srs_signed) == pytest.approx(numpy_srs(psi, 0.6), rel=1e-9)
    assert float(result.srs) == pytest.approx(abs(numpy_srs(psi, 0.6)), rel=1e-9)
    assert result.psi_degenerate is False
