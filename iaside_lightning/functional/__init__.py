"""Pure tensor functions (no Lightning): I-ASIDE (bands, coalitions, Shapley values, scores, engine, spectral SNR),
boundary search and attributions (BIG), boundary geometry, attribution localization and DiffROAR's unmasking."""

from iaside_lightning.functional.spectral.bands import (
    BandLayout,
    band_edges,
    band_images,
    band_layout,
    band_masks,
    band_sizes,
    normalized_radius,
    ring_index,
)
from iaside_lightning.functional.boundary.attributions import (
    boundary_integrated_gradients,
    boundary_saliency,
    integrated_gradients,
)
from iaside_lightning.functional.attacks import pgd_attack
from iaside_lightning.functional.boundary.geometry import BoundaryGeometryResult, boundary_geometry
from iaside_lightning.functional.boundary.options import (
    BOUNDARY_PRESETS,
    PAPER_EPSILONS,
    BoundaryGeometryOptions,
    BoundarySearchOptions,
)
from iaside_lightning.functional.boundary.search import BoundarySearchResult, boundary_search
from iaside_lightning.functional.spectral.coalitions import coalition_matrix, derangement, fill_images
from iaside_lightning.functional.spectral.engine import coalition_values, spectral_shapley, spectral_shapley_statistics
from iaside_lightning.functional.spectral.options import SpectralOptions
from iaside_lightning.functional.spectral.estimators import estimate_shapley, kernel_shapley, permutation_shapley
from iaside_lightning.functional.gradients import input_gradient
from iaside_lightning.functional.memorization import (
    MemorizationOptions,
    MemorizationResult,
    lowpass_coalitions,
    memorization_audit,
    memorization_scores,
    select_cutoffs,
)
from iaside_lightning.functional.sanity.localization import (
    LocalizationScores,
    RegionShares,
    attribution_localization,
    attribution_region_shares,
    shuffle_pixels,
)
from iaside_lightning.functional.sanity.options import DiffROAROptions
from iaside_lightning.functional.model_mode import evaluation_mode
from iaside_lightning.functional.spectral.result import SpectralShapleyResult, compute_result
from iaside_lightning.functional.spectral.scores import (
    ScoreErrors,
    score_standard_errors,
    spectral_balance,
    spectral_importance_distribution,
    spectral_robustness_score,
)
from iaside_lightning.functional.spectral.shapley import (
    ShapleyStatistics,
    per_sample_shapley,
    shapley_statistics,
    shapley_weights,
    sum_statistics,
)
from iaside_lightning.functional.spectral.snr import band_power, spectral_snr
from iaside_lightning.functional.sanity.unmasking import apply_unmasking, random_attributions, unmask, unmasking_masks
from iaside_lightning.functional.spectral.values import sample_values

__all__ = [
    "BOUNDARY_PRESETS",
    "BandLayout",
    "BoundaryGeometryOptions",
    "BoundaryGeometryResult",
    "BoundarySearchOptions",
    "BoundarySearchResult",
    "DiffROAROptions",
    "LocalizationScores",
    "MemorizationOptions",
    "MemorizationResult",
    "PAPER_EPSILONS",
    "RegionShares",
    "ScoreErrors",
    "ShapleyStatistics",
    "SpectralOptions",
    "SpectralShapleyResult",
    "apply_unmasking",
    "attribution_localization",
    "attribution_region_shares",
    "band_edges",
    "band_images",
    "band_layout",
    "band_masks",
    "band_power",
    "band_sizes",
    "boundary_geometry",
    "boundary_integrated_gradients",
    "boundary_saliency",
    "boundary_search",
    "coalition_matrix",
    "coalition_values",
    "compute_result",
    "derangement",
    "estimate_shapley",
    "evaluation_mode",
    "fill_images",
    "input_gradient",
    "integrated_gradients",
    "kernel_shapley",
    "lowpass_coalitions",
    "memorization_audit",
    "memorization_scores",
    "normalized_radius",
    "per_sample_shapley",
    "permutation_shapley",
    "pgd_attack",
    "random_attributions",
    "ring_index",
    "sample_values",
    "score_standard_errors",
    "select_cutoffs",
    "shapley_statistics",
    "shapley_weights",
    "shuffle_pixels",
    "spectral_balance",
    "spectral_importance_distribution",
    "spectral_robustness_score",
    "spectral_shapley",
    "spectral_shapley_statistics",
    "spectral_snr",
    "sum_statistics",
    "unmask",
    "unmasking_masks",
]
