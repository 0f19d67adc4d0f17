"""The result of a spectral Shapley analysis and its computation from summed statistics."""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from iaside_lightning.functional.scores import spectral_importance_distribution, spectral_robustness_score
from iaside_lightning.functional.shapley import ShapleyStatistics

__all__ = ["SpectralShapleyResult", "compute_result"]


@dataclass
class SpectralShapleyResult:
    """Spectral importance of a model on a set of samples (all tensors float64, on the CPU).

    Attributes:
        phi: Shapley value of each band in nats (for ``value="log_prob"``), shape ``[M]``, lowest band first.
        stderr: standard error of ``phi`` as an estimate of the mean over the data distribution, ``[M]``: the
            spread over samples, plus the estimator's own variance for sampled estimators; NaN when fewer than 2
            samples were seen.
        psi: spectral importance distribution ``(phi - min phi) / sum(phi - min phi)``, ``[M]``.
        psi_degenerate: ``True`` when all ``phi`` were equal and ``psi`` was set to uniform.
        srs: spectral robustness score (paper formula, ``beta``), scalar.
        srs_signed: signed SRS: positive leans to low frequencies, negative to high ones.
        v_empty: mean value of the empty coalition (only the fill).
        v_full: mean value of the full coalition (the unmodified image).
        coalition_values: mean value of every coalition, ``[2^M]`` (row order of ``coalition_matrix``); ``None``
            for sampled estimators, which see only some coalitions.
        band_edges: band edges in cycles per pixel, ``[M + 1]`` from 0 to 0.5.
        num_samples: number of samples behind the estimate.
        estimator_stderr: standard error of ``phi`` due to coalition sampling alone, ``[M]``, as an estimate of the
            exact Shapley values of these samples (zero for exact enumeration).
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
    band_edges: Tensor
    num_samples: int
    estimator_stderr: Optional[Tensor] = None

    @property
    def num_bands(self) -> int:
        """Number of bands ``M``."""
        return int(self.phi.numel())

    @property
    def band_centers(self) -> Tensor:
        """Centre frequency of each band in cycles per pixel, ``[M]``."""
        return (self.band_edges[1:] + self.band_edges[:-1]) / 2


def compute_result(stats: ShapleyStatistics, edges: Tensor, beta: float = 0.75) -> SpectralShapleyResult:
    """Turn summed statistics into a :class:`SpectralShapleyResult`.

    Args:
        stats: summed statistics (see :func:`~iaside_lightning.functional.shapley.shapley_statistics`).
        edges: band edges on the normalised radius ``[M + 1]`` (see
            :func:`~iaside_lightning.functional.bands.band_edges`).
        beta: decay of the SRS band weights.

    Raises:
        ValueError: if no sample was seen.
    """
    count = float(stats.count)
    if count <= 0:
        raise ValueError("No sample was seen: spectral Shapley values need at least one (image, label) pair.")
    phi_sum, phi_sq_sum, value_sum = (t.detach().to("cpu", torch.float64) for t in stats[:3])
    phi = phi_sum / count
    sampling_var = stats.estimator_var_sum
    estimator_var = torch.zeros_like(phi) if sampling_var is None else sampling_var.detach().to("cpu", torch.float64)
    estimator_var = estimator_var.clamp_min(0.0) / count**2
    if count >= 2:
        variance = ((phi_sq_sum - count * phi**2) / (count - 1)).clamp_min(0.0)
        stderr = torch.sqrt(variance / count + estimator_var)
    else:
        stderr = torch.full_like(phi, float("nan"))
    psi, degenerate = spectral_importance_distribution(phi)
    values = value_sum / count
    return SpectralShapleyResult(
        phi=phi,
        stderr=stderr,
        psi=psi,
        psi_degenerate=degenerate,
        srs=spectral_robustness_score(psi, beta),
        srs_signed=spectral_robustness_score(psi, beta, signed=True),
        v_empty=values[0],
        v_full=values[-1],
        coalition_values=values if values.numel() == 2 ** phi.numel() else None,
        band_edges=edges.detach().to("cpu", torch.float64) * 0.5,
        num_samples=int(round(count)),
        estimator_stderr=estimator_var.sqrt(),
    )
