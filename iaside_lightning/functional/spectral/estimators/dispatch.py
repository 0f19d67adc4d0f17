"""Choosing a Shapley estimator for a budget of coalition evaluations, and running it on a value oracle."""

from typing import Literal

from iaside_lightning.functional.spectral.coalitions import coalition_matrix
from iaside_lightning.functional.spectral.estimators.estimate import ShapleyEstimate, ValueOracle
from iaside_lightning.functional.spectral.estimators.kernel import kernel_minimum_budget, kernel_shapley
from iaside_lightning.functional.spectral.estimators.permutation import permutation_minimum_budget, permutation_shapley
from iaside_lightning.functional.spectral.shapley import per_sample_shapley

__all__ = ["ESTIMATORS", "Estimator", "estimate_shapley", "minimum_budget", "resolve_estimator"]

Estimator = Literal["exact", "permutation", "kernel", "auto"]
ESTIMATORS = ("exact", "permutation", "kernel", "auto")
#: Largest number of bands the samplers accept (coalitions are encoded as 64-bit integers).
MAX_SAMPLED_BANDS = 62


def resolve_estimator(estimator: Estimator, num_bands: int, max_evaluations: int) -> str:
    """The estimator that runs: ``"auto"`` is ``"exact"`` when ``2^M <= max_evaluations``, else ``"kernel"``.

    KernelSHAP is the sampler of choice because it was about twice as accurate as antithetic permutation sampling
    for the same budget in our measurements (docs/estimators.md).

    Raises:
        ValueError: if ``estimator``, ``num_bands`` or ``max_evaluations`` is invalid.

    Example:
        >>> resolve_estimator("auto", 8, 4096), resolve_estimator("auto", 16, 4096)
        ('exact', 'kernel')
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"`estimator` must be one of {ESTIMATORS}, got {estimator!r}.")
    if estimator == "exact":
        return estimator
    if isinstance(num_bands, bool) or not isinstance(num_bands, int) or not 2 <= num_bands <= MAX_SAMPLED_BANDS:
        raise ValueError(f"`num_bands` must be an integer in [2, {MAX_SAMPLED_BANDS}], got {num_bands!r}.")
    if isinstance(max_evaluations, bool) or not isinstance(max_evaluations, int) or max_evaluations < 1:
        raise ValueError(
            f"The evaluation budget (`max_evaluations`; `max_coalitions` in spectral_shapley) must be a positive "
            f"integer, got {max_evaluations!r}."
        )
    if estimator == "auto":
        return "exact" if 2**num_bands <= max_evaluations else "kernel"
    return estimator


def minimum_budget(estimator: str, num_bands: int) -> int:
    """Fewest coalitions per image (``max_coalitions``) that a resolved estimator (see :func:`resolve_estimator`)
    accepts: the samplers' own minima, ``2^M`` for ``"exact"``.

    Example:
        >>> minimum_budget("kernel", 25), minimum_budget("permutation", 25), minimum_budget("exact", 4)
        (68, 386, 16)
    """
    if estimator == "kernel":
        return kernel_minimum_budget(num_bands)
    if estimator == "permutation":
        return permutation_minimum_budget(num_bands)
    return 2**num_bands


def estimate_shapley(
    oracle: ValueOracle, num_bands: int, estimator: Estimator = "auto", max_evaluations: int = 4096, seed: int = 0
) -> ShapleyEstimate:
    """Per-sample Shapley values of the games given by ``oracle``, exact or sampled within a budget.

    Args:
        oracle: maps 0/1 coalitions ``[N, M]`` to per-sample values ``[B, N]`` (one game per sample).
        num_bands: number of players ``M``.
        estimator: ``"exact"`` (all ``2^M`` coalitions; the budget is not checked), ``"permutation"``
            (antithetic permutation sampling, unbiased), ``"kernel"`` (KernelSHAP, consistent) or ``"auto"``
            (see :func:`resolve_estimator`).
        max_evaluations: most distinct coalitions evaluated per sample by a sampler.
        seed: seed of the sampler; use a different seed for every batch so that errors of batches are independent.

    Returns:
        :class:`~iaside_lightning.functional.spectral.estimators.estimate.ShapleyEstimate`.

    Example:
        >>> import torch
        >>> oracle = lambda z: z.double().sum(1)[None] ** 2  # symmetric: every band gets (M^2) / M = M
        >>> estimate_shapley(oracle, 16, "auto", max_evaluations=600, seed=1).phi[0, :4]
        tensor([16.0000, 16.0000, 16.0000, 16.0000], dtype=torch.float64)
    """
    chosen = resolve_estimator(estimator, num_bands, max_evaluations)
    if chosen == "permutation":
        return permutation_shapley(oracle, num_bands, max_evaluations, seed)
    if chosen == "kernel":
        return kernel_shapley(oracle, num_bands, max_evaluations, seed)
    values = oracle(coalition_matrix(num_bands)).double()
    phi = per_sample_shapley(values)
    return ShapleyEstimate(phi, phi.new_zeros(num_bands, num_bands), values[:, 0], values[:, -1], values.shape[1])
