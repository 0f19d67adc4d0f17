"""Antithetic permutation sampling of Shapley values.

A permutation ``pi`` of the bands visits the prefixes ``{}, {pi_1}, {pi_1, pi_2}, ..., all``; the gain of each band
when it joins is an unbiased estimate of its Shapley value, and the gains of one permutation sum to
``v(all) - v(empty)``. Each sampled permutation is paired with its reverse (antithetic sampling): the pair average is
exact for games without interactions of order three or more, and the pairs are independent replicates from which
the estimator's own variance is estimated.
"""

import torch

from iaside_lightning.functional.spectral.estimators.estimate import (
    MIN_REPLICATES,
    ShapleyEstimate,
    ValueOracle,
    estimator_generator,
    evaluate_coalitions,
)

__all__ = ["permutation_minimum_budget", "permutation_pairs", "permutation_shapley"]


def permutation_minimum_budget(num_bands: int) -> int:
    """Fewest evaluations antithetic permutation sampling accepts: ``MIN_REPLICATES`` pairs of ``M - 1`` coalitions
    each, plus the empty and full coalitions.

    Example:
        >>> permutation_minimum_budget(25)
        386
    """
    return 2 + 2 * MIN_REPLICATES * (num_bands - 1)


def permutation_pairs(num_bands: int, max_evaluations: int) -> int:
    """Number of antithetic permutation pairs that fit in ``max_evaluations`` coalitions per sample.

    A permutation needs ``M - 1`` coalitions besides the empty and full ones shared by all, so ``P`` pairs need at
    most ``2 + 2 P (M - 1)`` (repeated coalitions are evaluated once and cost less).

    Raises:
        ValueError: if fewer than ``MIN_REPLICATES`` pairs fit (their spread gives the standard error).

    Example:
        >>> permutation_pairs(16, 1310)
        43
    """
    pairs = (max_evaluations - 2) // (2 * (num_bands - 1))
    if pairs < MIN_REPLICATES:
        minimum = permutation_minimum_budget(num_bands)
        raise ValueError(
            f"estimator='permutation' with num_bands={num_bands} needs max_evaluations >= {minimum} "
            f"({MIN_REPLICATES} antithetic permutation pairs), got {max_evaluations}. Raise the budget or use "
            "fewer bands."
        )
    return pairs


def permutation_shapley(oracle: ValueOracle, num_bands: int, max_evaluations: int, seed: int = 0) -> ShapleyEstimate:
    """Unbiased Shapley estimates from :func:`permutation_pairs` antithetic permutation pairs.

    All samples share the same permutations. ``sum_covariance`` is the sample covariance over the independent pairs
    of the pair estimates of the batch sum, divided by the number of pairs.

    Args:
        oracle: maps coalitions ``[N, M]`` (0/1) to per-sample values ``[B, N]``.
        num_bands: number of players ``M``.
        max_evaluations: most coalitions evaluated per sample.
        seed: seed of the permutations; the same seed gives the same estimate.

    Returns:
        :class:`~iaside_lightning.functional.spectral.estimators.estimate.ShapleyEstimate`.

    Example:
        >>> weights = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
        >>> oracle = lambda z: weights @ z.double().T + (z[:, 0] * z[:, 1]).double()  # an interaction of bands 0, 1
        >>> est = permutation_shapley(oracle, 3, max_evaluations=34)
        >>> est.phi, est.sum_variance  # exact: antithetic pairs resolve pairwise interactions
        (tensor([[1.5000, 2.5000, 3.0000]], dtype=torch.float64), tensor([0., 0., 0.], dtype=torch.float64))
    """
    pairs = permutation_pairs(num_bands, max_evaluations)
    generator = estimator_generator(seed)
    forward = torch.rand(pairs, num_bands, generator=generator).argsort(dim=1)
    perms = torch.cat([forward, forward.flip(1)])  # row p + pairs is the reverse of row p
    ranks = perms.argsort(dim=1)  # ranks[p, k]: position of band k in permutation p
    prefixes = ranks[:, None, :] < torch.arange(num_bands + 1)[None, :, None]  # [2P, M + 1, M]
    values, distinct = evaluate_coalitions(oracle, prefixes.reshape(-1, num_bands))
    values = values.reshape(values.shape[0], 2 * pairs, num_bands + 1)
    gains = values.diff(dim=2)  # gains[b, p, j]: gain of band perms[p, j] joining
    per_perm = gains.gather(2, ranks.to(values.device).expand(values.shape[0], -1, -1))
    per_pair = (per_perm[:, :pairs] + per_perm[:, pairs:]) / 2  # [B, P, M], independent over P
    return ShapleyEstimate(
        phi=per_pair.mean(dim=1),
        sum_covariance=per_pair.sum(dim=0).T.cov() / pairs,
        v_empty=values[:, 0, 0],
        v_full=values[:, 0, -1],
        num_evaluations=distinct,
    )
