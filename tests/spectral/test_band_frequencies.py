"""The result's band edges in cycles per pixel are ``band_frequencies``; ``band_edges`` (the option's name) still reads
them with a deprecation warning, and monitor records of older checkpoints load under the new key."""

import pytest
import torch

from iaside_lightning import SpectralRobustnessMonitor
from iaside_lightning.functional import band_edges, compute_result, shapley_statistics, spectral_shapley

MODEL = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 16, 3))
IMAGES, LABELS = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0])


def test_band_frequencies_are_half_the_normalised_radii_of_the_option() -> None:
    result = compute_result(shapley_statistics(torch.rand(5, 2**3, dtype=torch.float64)), band_edges(3, "linear"))
    torch.testing.assert_close(result.band_frequencies, torch.tensor([0, 1 / 6, 1 / 3, 0.5], dtype=torch.float64))
    torch.testing.assert_close(result.band_centers, torch.tensor([1 / 12, 0.25, 5 / 12], dtype=torch.float64))


def test_the_old_result_name_warns_and_reads_the_same_tensor() -> None:
    result = spectral_shapley(MODEL, IMAGES, LABELS, num_bands=3, band_edges="linear")
    with pytest.warns(DeprecationWarning, match="`SpectralShapleyResult.band_edges` is deprecated.*`band_frequencies`"):
        old = result.band_edges
    assert old is result.band_frequencies
    with pytest.raises(AttributeError):
        result.band_edges = old  # type: ignore[misc]  # read-only


def test_as_dict_uses_the_new_key_only() -> None:
    flat = spectral_shapley(MODEL, IMAGES, LABELS, num_bands=3).as_dict()
    assert "band_frequencies" in flat and "band_edges" not in flat


def _record(epoch: int, edges_key: str) -> dict:
    scores = dict.fromkeys(("srs", "srs_signed", "srs_stderr", "srs_signed_stderr", "balance", "balance_stderr"), 0.1)
    return {"epoch": epoch, "step": epoch, "num_samples": 8, "phi": [0.3, 0.2, 0.1], "stderr": [0.01] * 3,
            "psi": [1.0, 0.5, 0.0], "psi_stderr": [0.1] * 3, edges_key: [0.0, 0.1, 0.3, 0.5], **scores}  # fmt: skip


def test_monitor_records_of_older_checkpoints_load_under_the_new_key() -> None:
    monitor = SpectralRobustnessMonitor(num_bands=3)
    monitor.load_state_dict({"history": [_record(0, "band_edges"), _record(1, "band_frequencies")]})
    assert all(r["band_frequencies"] == [0.0, 0.1, 0.3, 0.5] and "band_edges" not in r for r in monitor.history)
    assert set(monitor.figures()) == {"frequency_response", "band_epoch_heatmap", "scores"}
