"""Shapley value estimators on a value oracle: exact enumeration, antithetic permutations, KernelSHAP.

See docs/estimators.md for their accuracy, their standard errors and how batches combine.
"""

from iaside_lightning.functional.spectral.estimators.dispatch import (
    ESTIMATORS,
    Estimator,
    estimate_shapley,
    minimum_budget,
    resolve_estimator,
)
from iaside_lightning.functional.spectral.estimators.estimate import (
    ShapleyEstimate,
    ValueOracle,
    estimate_statistics,
    evaluate_coalitions,
)
from iaside_lightning.functional.spectral.estimators.kernel import kernel_shapley
from iaside_lightning.functional.spectral.estimators.permutation import permutation_pairs, permutation_shapley

__all__ = [
    "ESTIMATORS",
    "Estimator",
    "ShapleyEstimate",
    "ValueOracle",
    "estimate_shapley",
    "estimate_statistics",
    "evaluate_coalitions",
    "kernel_shapley",
    "minimum_budget",
    "permutation_pairs",
    "permutation_shapley",
    "resolve_estimator",
]
