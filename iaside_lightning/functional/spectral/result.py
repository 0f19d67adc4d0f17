"""The result of a spectral Shapley analysis and its computation from summed statistics."""

import warnings
from dataclasses import dataclass, fields
from typing import Optional, Union

import torch
from torch import Tensor

from iaside_lightning.functional.spectral.bands import BandLayout
from iaside_lightning.functional.spectral.scores import (
    score_standard_errors,
    spectral_balance,
    spectral_importance_distribution,
    spectral_robustness_score,
)
from iaside_lightning.functional.spectral.shapley import ShapleyStatistics

__all__ = ["NO_SAMPLE_MESSAGE", "SpectralShapleyResult", "compute_result"]

NO_SAMPLE_MESSAGE = "No sample was seen: spectral Shapley values need at least one (image, label) pair."


@dataclass
class SpectralShapleyResult:
    """Spectral importance of a model on a set of samples (all tensors float64, on the CPU).

    Every score comes with a standard error as an estimate of its value on the data distribution (NaN when fewer
    than 2 samples were seen). Those of ``phi`` come from the sample covariance of the per-sample Shapley values
    (plus the estimator's covariance for sampled estimators); those of ``psi``, SRS, signed SRS and the balance are
    propagated from that covariance by a seeded Monte Carlo (see
    :func:`~iaside_lightning.functional.spectral.scores.score_standard_errors`, which also says where it breaks down).

    Attributes:
        phi: Shapley value of each band in nats (for ``value="log_prob"``), shape ``[M]``, lowest band first.
        stderr: standard error of ``phi``, ``[M]``.
        psi: spectral importance distribution ``(phi - min phi) / sum(phi - min phi)``, ``[M]``.
        psi_degenerate: ``True`` when all ``phi`` were equal and ``psi`` was set to uniform.
        srs: spectral robustness score (paper formula, ``beta``), scalar. Its attainable range depends on ``M``.
        srs_signed: signed SRS: positive leans to low frequencies, negative to high ones.
        balance: spectral balance in ``[-1, 1]`` (see :func:`~iaside_lightning.functional.spectral.scores.spectral_balance`):
            like signed SRS but harmful bands (negative ``phi``) count against robustness, and comparable across M.
        v_empty: mean value of the empty coalition (only the fill).
        v_full: mean value of the full coalition (the unmodified image).
        coalition_values: mean value of every coalition, ``[2^M]`` (row order of ``coalition_matrix``); ``None``
            for sampled estimators, which see only some coalitions.
        band_frequencies: the band edges in cycles per pixel, ``[M + 1]`` from 0 to 0.5 (the option ``band_edges``
            is their spec on the normalised radius; this is where they fell on the image's frequency grid, half those
            radii). The deprecated ``band_edges`` reads the same tensor.
        num_samples: number of samples behind the estimate.
        estimator_stderr: standard error of ``phi`` due to coalition sampling alone, ``[M]``, as an estimate of the
            exact Shapley values of these samples (zero for exact enumeration).
        phi_covariance: covariance of ``phi`` ``[M, M]`` (``stderr`` is the root of its diagonal).
        psi_stderr: standard error of ``psi``, ``[M]``.
        srs_stderr: standard error of ``srs``.
        srs_signed_stderr: standard error of ``srs_signed``.
        balance_stderr: standard error of ``balance``.
        band_bins: ``rfft2`` bins per band ``[M]`` (of the half spectrum ``rfft2`` returns); ``None`` when the
            result was computed from band edges alone.
        band_rings: frequency rings per band ``[M]`` (see :func:`~iaside_lightning.functional.spectral.bands.ring_index`);
            ``None`` like ``band_bins``.
        phi_per_sample: each sample's Shapley values ``[B, M]`` (exact ones, or the estimator's estimates); only
            from ``spectral_shapley(..., per_sample=True)``, else ``None``. With the exact estimator each row sums to
            that sample's ``v(full) - v(empty)`` and their mean is ``phi``.
        values_per_sample: each sample's coalition values ``[B, N]``, columns in the row order of ``coalitions``;
            ``None`` like ``phi_per_sample``.
        coalitions: 0/1 int64 indicators ``[N, M]`` of the coalitions behind ``values_per_sample``: all ``2^M``
            (the order of ``coalition_matrix``) for the exact estimator, the distinct coalitions a sampled estimator
            evaluated otherwise; ``None`` like ``phi_per_sample``.
    """

    phi: Tensor
    stderr: Tensor
    psi: Tensor
    psi_degenerate: bool
    srs: Tensor
    srs_signed: Tensor
    v_empty: Tensor
    v_full: Tensor
    coalition_values: Optional[Tensor]
    band_frequencies: Tensor
    num_samples: int
    estimator_stderr: Tensor
    balance: Tensor
    phi_covariance: Tensor
    psi_stderr: Tensor
    srs_stderr: Tensor
    srs_signed_stderr: Tensor
    balance_stderr: Tensor
    band_bins: Optional[Tensor]
    band_rings: Optional[Tensor]
    phi_per_sample: Optional[Tensor] = None
    values_per_sample: Optional[Tensor] = None
    coalitions: Optional[Tensor] = None

    def as_dict(self) -> dict[str, Tensor]:
        """Every field as a flat ``{name: tensor}`` (fields that are ``None`` left out), for wrappers and loggers
        that expect a dict of tensors.

        Example:
            >>> import torch
            >>> from iaside_lightning.functional import spectral_shapley
            >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 16, 3))
            >>> result = spectral_shapley(model, torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 0]), num_bands=3)
            >>> flat = result.as_dict()
            >>> flat["srs_stderr"].ndim, flat["phi"].shape, flat["num_samples"].item()
            (0, torch.Size([3]), 4)
        """
        return {
            field.name: value if isinstance(value, Tensor) else torch.tensor(value)
            for field in fields(self)
            if (value := getattr(self, field.name)) is not None
        }

    @property
    def num_bands(self) -> int:
        """Number of bands ``M``."""
        return int(self.phi.numel())

    @property
    def band_centers(self) -> Tensor:
        """Centre frequency of each band in cycles per pixel, ``[M]``."""
        return (self.band_frequencies[1:] + self.band_frequencies[:-1]) / 2

    @property
    def band_edges(self) -> Tensor:
        """Deprecated name of :attr:`band_frequencies` (which avoids confusion with the option ``band_edges``, a spec
        on the normalised radius).

        Example:
            >>> import pytest
            >>> from iaside_lightning.functional import spectral_shapley
            >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8 * 8, 2))
            >>> result = spectral_shapley(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), num_bands=2)
            >>> with pytest.warns(DeprecationWarning, match="band_frequencies"):
            ...     assert result.band_edges is result.band_frequencies
        """
        warnings.warn(
            "`SpectralShapleyResult.band_edges` is deprecated and will be removed in a future release: read "
            "`band_frequencies` (the same band edges in cycles per pixel).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.band_frequencies


def compute_result(
    stats: ShapleyStatistics, layout: Union[BandLayout, Tensor], beta: float = 0.75
) -> SpectralShapleyResult:
    """Turn summed statistics into a :class:`SpectralShapleyResult`.

    Args:
        stats: summed statistics (see :func:`~iaside_lightning.functional.spectral.shapley.shapley_statistics`).
        layout: the bands the statistics were computed with (see
            :func:`~iaside_lightning.functional.spectral.bands.band_layout`), or just their edges on the normalised radius
            ``[M + 1]`` (the result's ``band_bins`` and ``band_rings`` are then ``None``).
        beta: decay of the SRS band weights.

    Raises:
        ValueError: if no sample was seen.
    """
    count = float(stats.count)
    if count <= 0:
        raise ValueError(NO_SAMPLE_MESSAGE)
    phi_sum, outer_sum, value_sum = (t.detach().to("cpu", torch.float64) for t in stats[:3])
    phi = phi_sum / count
    num_bands = phi.numel()
    sampling = stats.estimator_cov_sum
    estimator_cov = (
        torch.zeros(num_bands, num_bands, dtype=torch.float64)
        if sampling is None
        else sampling.detach().to("cpu", torch.float64) / count**2
    )
    if count >= 2:
        sample_cov = (outer_sum - count * torch.outer(phi, phi)) / (count - 1)
        covariance = sample_cov / count + estimator_cov
    else:
        covariance = torch.full((num_bands, num_bands), float("nan"), dtype=torch.float64)
    psi, degenerate = spectral_importance_distribution(phi)
    errors = score_standard_errors(phi, covariance, beta)
    values = value_sum / count
    edges = layout.edges if isinstance(layout, BandLayout) else layout
    bins, rings = (layout.bins.clone(), layout.rings.clone()) if isinstance(layout, BandLayout) else (None, None)
    return SpectralShapleyResult(
        phi=phi,
        stderr=covariance.diagonal().clamp_min(0.0).sqrt(),
        psi=psi,
        psi_degenerate=degenerate,
        srs=spectral_robustness_score(psi, beta),
        srs_signed=spectral_robustness_score(psi, beta, signed=True),
        v_empty=values[0],
        v_full=values[-1],
        coalition_values=values if values.numel() == 2**num_bands else None,
        band_frequencies=edges.detach().to("cpu", torch.float64) * 0.5,
        num_samples=int(round(count)),
        estimator_stderr=estimator_cov.diagonal().clamp_min(0.0).sqrt(),
        balance=spectral_balance(phi),
        phi_covariance=covariance,
        psi_stderr=errors.psi,
        srs_stderr=errors.srs,
        srs_signed_stderr=errors.srs_signed,
        balance_stderr=errors.balance,
        band_bins=bins,
        band_rings=rings,
    )
