"""Exact Shapley values from per-sample coalition values, and their exactly reducible statistics.

Shapley values are linear in the value function and the value function is a mean over samples, so the Shapley
values of the mean are the mean of per-sample Shapley values. Sums of per-sample values (and of their outer
products, for the covariance of the mean) are therefore sufficient statistics that reduce exactly across processes
by summation.
"""

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.spectral.coalitions import coalition_matrix

__all__ = ["ShapleyStatistics", "per_sample_shapley", "shapley_statistics", "shapley_weights", "sum_statistics"]


def shapley_weights(num_bands: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The ``[2^M, M]`` matrix ``W`` with ``phi = v @ W`` for coalition values ``v`` indexed as in
    :func:`~iaside_lightning.functional.spectral.coalitions.coalition_matrix`.

    ``W[S, k] = w(|S| - 1)`` if ``k in S`` else ``-w(|S|)``, with ``w(s) = s! (M - s - 1)! / M!``.

    Example:
        >>> shapley_weights(2)
        tensor([[-0.5000, -0.5000],
                [ 0.5000, -0.5000],
                [-0.5000,  0.5000],
                [ 0.5000,  0.5000]], dtype=torch.float64)
    """
    members = coalition_matrix(num_bands, dtype=torch.int64)
    size = members.sum(dim=1, keepdim=True)
    w = torch.tensor(
        [math.factorial(s) * math.factorial(num_bands - s - 1) / math.factorial(num_bands) for s in range(num_bands)]
        + [0.0],
        dtype=dtype,
    )
    return torch.where(members.bool(), w[(size - 1).clamp(min=0)], -w[size])


def per_sample_shapley(values: Tensor) -> Tensor:
    """Exact Shapley values of every sample from its ``2^M`` coalition values.

    Args:
        values: ``[B, 2^M]`` coalition values (column ``s`` is the coalition with bit ``k`` set for band ``k``).

    Returns:
        ``[B, M]`` float64 Shapley values; each row sums to ``v(all) - v(empty)`` (efficiency).

    Example:
        >>> v = torch.tensor([[0.0, 1.0, 2.0, 3.0]])  # additive: band 0 adds 1, band 1 adds 2
        >>> per_sample_shapley(v)
        tensor([[1., 2.]], dtype=torch.float64)
    """
    num_coalitions = values.shape[-1]
    num_bands = num_coalitions.bit_length() - 1
    if values.ndim != 2 or num_bands < 1 or 2**num_bands != num_coalitions:
        raise ValueError(f"`values` must have shape [B, 2^M], got {tuple(values.shape)}.")
    return values.to(torch.float64) @ shapley_weights(num_bands).to(values.device)


class ShapleyStatistics(NamedTuple):
    """Sums over samples that determine the result exactly; add two of them to merge disjoint sample sets."""

    phi_sum: Tensor  #: ``[M]`` sum of per-sample Shapley values (or of their estimates)
    #: ``[M, M]`` sum of their outer products ``phi_i phi_i^T`` (for the covariance of ``phi`` and of every score)
    phi_outer_sum: Tensor
    value_sum: Tensor  #: ``[2^M]`` sum of coalition values (exact); ``[2]``: empty and full only (sampled)
    count: Tensor  #: scalar number of samples
    #: ``[M, M]`` sum over batches of the estimator's covariance of each batch's ``phi`` sum; ``None`` means zero
    estimator_cov_sum: Optional[Tensor] = None


def shapley_statistics(values: Tensor) -> ShapleyStatistics:
    """Sufficient statistics of a batch of per-sample coalition values ``[B, 2^M]`` (float64)."""
    phi = per_sample_shapley(values)
    return ShapleyStatistics(
        phi_sum=phi.sum(0),
        phi_outer_sum=phi.T @ phi,
        value_sum=values.to(torch.float64).sum(0),
        count=torch.tensor(float(values.shape[0]), dtype=torch.float64, device=values.device),
        estimator_cov_sum=phi.new_zeros(phi.shape[1], phi.shape[1]),
    )


def sum_statistics(first: ShapleyStatistics, second: ShapleyStatistics) -> ShapleyStatistics:
    """Statistics of the union of two disjoint sample sets."""
    return ShapleyStatistics(*(b if a is None else a if b is None else a + b for a, b in zip(first, second)))
