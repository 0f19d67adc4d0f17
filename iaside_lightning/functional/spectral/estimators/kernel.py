"""KernelSHAP: Shapley values as a weighted least-squares fit with the efficiency constraint enforced exactly.

The Shapley values are the ``beta`` minimising ``E_S[(v(S) - v({}) - z_S . beta)^2]`` subject to
``sum(beta) = v(all) - v({})``, where ``z_S`` is the 0/1 indicator of ``S`` and ``S`` follows the Shapley kernel:
size ``s`` with probability proportional to ``1 / (s (M - s))``, then a uniform subset of that size (Lundberg & Lee
2017; Covert & Lee 2021). The few, heavy strata of small and large sizes ``{s, M - s}`` are enumerated with their
exact weights while that pays off; the other sizes are sampled as complementary pairs ``(S, all \\ S)`` until the
budget of distinct coalitions is spent. The estimate is consistent, exact once every stratum fits and exact for
games without interactions of order three or more; it is not unbiased (a ratio of estimated moments, bias of
order 1 / pairs). Its variance is estimated by the sandwich (delta-method) formula over the independent pairs.
"""

import itertools
import math

import torch
from torch import Tensor

from iaside_lightning.functional.spectral.estimators.estimate import (
    MIN_REPLICATES,
    ShapleyEstimate,
    ValueOracle,
    estimator_generator,
    evaluate_coalitions,
)

__all__ = ["kernel_minimum_budget", "kernel_shapley"]

#: Stop drawing coalition pairs after this many pairs per evaluation left (reached only if nearly all are drawn).
_MAX_DRAWS_PER_EVALUATION = 32


def kernel_minimum_budget(num_bands: int) -> int:
    """Fewest evaluations KernelSHAP accepts: the single-band coalitions, their complements, the empty and full
    coalitions and ``MIN_REPLICATES`` sampled pairs, or all ``2^M`` coalitions if fewer.

    Example:
        >>> kernel_minimum_budget(25), kernel_minimum_budget(4)
        (68, 16)
    """
    return min(2 + 2 * num_bands + 2 * MIN_REPLICATES, 2**num_bands)


def kernel_shapley(oracle: ValueOracle, num_bands: int, max_evaluations: int, seed: int = 0) -> ShapleyEstimate:
    """KernelSHAP estimates with at most ``max_evaluations`` distinct coalitions per sample.

    Args:
        oracle: maps coalitions ``[N, M]`` (0/1) to per-sample values ``[B, N]``.
        num_bands: number of players ``M``.
        max_evaluations: most coalitions evaluated per sample, at least ``2 M + 2 + 2 * MIN_REPLICATES`` (or
            ``2^M``, whichever is smaller).
        seed: seed of the sampled coalitions; the same seed gives the same estimate.

    Returns:
        :class:`~iaside_lightning.functional.spectral.estimators.estimate.ShapleyEstimate`; ``sum_covariance`` is zero when
        the budget covers all ``2^M`` coalitions (the fit is then exact).

    Raises:
        ValueError: if the budget is below the minimum above.

    Example:
        >>> weights = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], dtype=torch.float64)
        >>> oracle = lambda z: weights @ z.double().T + (z[:, 0] * z[:, 1]).double()  # one pairwise interaction
        >>> kernel_shapley(oracle, 6, max_evaluations=40).phi
        tensor([[1.5000, 2.5000, 3.0000, 4.0000, 5.0000, 6.0000]], dtype=torch.float64)
    """
    minimum = kernel_minimum_budget(num_bands)
    if max_evaluations < minimum:
        raise ValueError(
            f"estimator='kernel' with num_bands={num_bands} needs max_evaluations >= {minimum} (the single-band "
            f"coalitions, their complements and {MIN_REPLICATES} sampled pairs), got {max_evaluations}."
        )
    size_weight = torch.tensor([1.0 / (s * (num_bands - s)) for s in range(1, num_bands)], dtype=torch.float64)
    size_weight /= size_weight.sum()  # size_weight[s - 1]: kernel probability of size s
    enumerated, weights, sampled_sizes = _enumerated_strata(num_bands, max_evaluations - 2, size_weight)
    rest = _sampled_pairs(num_bands, max_evaluations - 2 - len(enumerated), sampled_sizes, size_weight, seed)
    pairs, rest_mass = rest.shape[0], 1.0 - float(weights.sum())
    members = torch.cat([torch.zeros(1, num_bands), torch.ones(1, num_bands), enumerated, rest, 1 - rest])
    values, distinct = evaluate_coalitions(oracle, members)
    device = values.device
    z = members[2:].to(device=device, dtype=torch.float64)
    w = torch.cat([weights, torch.full((2 * pairs,), rest_mass / max(2 * pairs, 1), dtype=torch.float64)]).to(device)
    v_empty, v_full = values[:, 0], values[:, 1]
    gains = values[:, 2:] - v_empty[:, None]  # [B, N]
    gram = z.T @ (w[:, None] * z)
    inv_gram_b = torch.linalg.solve(gram, (z * w[:, None]).T @ gains.T)  # [M, B]
    inv_gram_1 = torch.linalg.solve(gram, torch.ones(num_bands, 1, dtype=torch.float64, device=device))
    multiplier = (inv_gram_b.sum(0) - (v_full - v_empty)) / inv_gram_1.sum()
    phi = (inv_gram_b - inv_gram_1 * multiplier).T  # [B, M]; rows sum to v_full - v_empty
    if pairs == 0:  # every coalition was enumerated: the fit is exact
        return ShapleyEstimate(phi, phi.new_zeros(num_bands, num_bands), v_empty, v_full, distinct)
    # Sandwich covariance of the batch sum: phi_sum - phi* ~ rest_mass * L mean_j(u_j) over the independent pairs j,
    # with u_j the pair average of z (y - z . phi_sum) and L the constrained inverse Gram matrix (L 1 = 0).
    sampled = slice(z.shape[0] - 2 * pairs, None)
    terms = z[sampled] * (gains.sum(0)[sampled] - z[sampled] @ phi.sum(0))[:, None]
    units = torch.linalg.solve(gram, ((terms[:pairs] + terms[pairs:]) / 2).T)  # [M, P]
    units = units - inv_gram_1 * units.sum(0) / inv_gram_1.sum()
    return ShapleyEstimate(phi, rest_mass**2 * units.cov() / pairs, v_empty, v_full, distinct)


def _enumerated_strata(num_bands: int, budget: int, size_weight: Tensor) -> tuple[Tensor, Tensor, list[int]]:
    """Choose the size strata ``{s, M - s}`` to enumerate, smallest ``s`` first, within ``budget`` coalitions.

    The single-band stratum is always enumerated (it makes the Gram matrix invertible). A further stratum is
    enumerated when it is the last one and fits (the fit is then exact) or when it lowers the variance proxy
    ``rest_mass^2 / rest_pairs`` of the sampled part while leaving at least ``MIN_REPLICATES`` pairs to sample.

    Returns:
        ``(coalitions [E, M], kernel weights [E], sizes left to sample)``.
    """
    rows: list[list[int]] = []
    weights: list[float] = []
    rest_mass = 1.0
    for s in range(1, num_bands // 2 + 1):
        sizes = [s] if 2 * s == num_bands else [s, num_bands - s]
        count = sum(math.comb(num_bands, size) for size in sizes)
        mass = float(size_weight[[size - 1 for size in sizes]].sum())
        pairs_now, pairs_after = (budget - len(rows)) // 2, (budget - len(rows) - count) // 2
        completes = s == num_bands // 2 and pairs_after >= 0
        helps = pairs_after >= MIN_REPLICATES and (rest_mass - mass) ** 2 * pairs_now < rest_mass**2 * pairs_after
        if not (completes or helps or s == 1):
            return (*_as_tensors(rows, weights, num_bands), list(range(s, num_bands - s + 1)))
        rest_mass -= mass
        for size in sizes:
            for combo in itertools.combinations(range(num_bands), size):
                rows.append([1 if k in combo else 0 for k in range(num_bands)])
                weights.append(float(size_weight[size - 1]) / math.comb(num_bands, size))
    return (*_as_tensors(rows, weights, num_bands), [])


def _as_tensors(rows: list[list[int]], weights: list[float], num_bands: int) -> tuple[Tensor, Tensor]:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, num_bands), torch.tensor(weights, dtype=torch.float64)


def _sampled_pairs(num_bands: int, budget: int, sizes: list[int], size_weight: Tensor, seed: int) -> Tensor:
    """Kernel-distributed coalitions ``[P, M]`` of the given sizes whose pairs ``(S, all \\ S)`` hold at most
    ``budget`` distinct coalitions; drawing stops at the first pair that would exceed it."""
    if not sizes:
        return torch.zeros(0, num_bands)
    generator = estimator_generator(seed)
    probs = size_weight[[s - 1 for s in sizes]]
    drawn = torch.zeros(0, num_bands)
    while drawn.shape[0] < _MAX_DRAWS_PER_EVALUATION * budget:
        block = max(budget, 16)
        size = torch.tensor(sizes)[torch.multinomial(probs, block, replacement=True, generator=generator)]
        ranks = torch.rand(block, num_bands, generator=generator).argsort(dim=1).argsort(dim=1)
        drawn = torch.cat([drawn, (ranks < size[:, None]).float()])
        codes = (drawn.to(torch.int64) << torch.arange(num_bands)).sum(1)
        new = _first_occurrences(torch.stack([codes, (2**num_bands - 1) - codes], dim=1).reshape(-1))
        fits = new.reshape(-1, 2).sum(1).cumsum(0) <= budget
        if not bool(fits.all()):
            return drawn[: int(fits.sum())]
    return drawn


def _first_occurrences(codes: Tensor) -> Tensor:
    """``[N]`` 0/1: whether each code appears for the first time at its position."""
    _, inverse = torch.unique(codes, return_inverse=True)
    positions = torch.arange(codes.numel())
    first = torch.full((int(inverse.max()) + 1,), codes.numel(), dtype=torch.int64)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return (first[inverse] == positions).to(torch.int64)
