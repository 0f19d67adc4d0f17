"""Pure tensor functions of I-ASIDE (no Lightning): bands, coalitions, Shapley values, scores, engine, spectral SNR."""

from iaside_lightning.functional.bands import band_edges, band_images, band_masks, normalized_radius
from iaside_lightning.functional.coalitions import coalition_matrix, derangement, fill_images
from iaside_lightning.functional.engine import coalition_values, spectral_shapley, spectral_shapley_statistics
from iaside_lightning.functional.estimators import estimate_shapley, kernel_shapley, permutation_shapley
from iaside_lightning.functional.result import SpectralShapleyResult, compute_result
from iaside_lightning.functional.scores import spectral_importance_distribution, spectral_robustness_score
from iaside_lightning.functional.shapley import (
    ShapleyStatistics,
    per_sample_shapley,
    shapley_statistics,
    shapley_weights,
    sum_statistics,
)
from iaside_lightning.functional.snr import band_power, spectral_snr
from iaside_lightning.functional.values import sample_values

__all__ = [
    "ShapleyStatistics",
    "SpectralShapleyResult",
    "band_edges",
    "band_images",
    "band_masks",
    "band_power",
    "coalition_matrix",
    "coalition_values",
    "compute_result",
    "derangement",
    "estimate_shapley",
    "fill_images",
    "kernel_shapley",
    "normalized_radius",
    "per_sample_shapley",
    "permutation_shapley",
    "sample_values",
    "shapley_statistics",
    "shapley_weights",
    "spectral_importance_distribution",
    "spectral_robustness_score",
    "spectral_shapley",
    "spectral_shapley_statistics",
    "spectral_snr",
    "sum_statistics",
]
