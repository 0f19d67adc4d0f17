"""What every Shapley estimator returns, and how a batch of estimates becomes summable statistics.

An estimator asks a *value oracle* for the worth of the coalitions it chooses. The oracle maps 0/1 coalition
indicators ``[N, M]`` to per-sample values ``[B, N]``; every sample of the batch sees the same coalitions (paired
sampling), so the ``B`` per-sample estimates share one random draw and their errors are correlated. Each estimator
therefore also reports its own covariance estimate for the *batch sum* of its estimates, computed from independent
replicates of its random draw (permutation pairs, coalition pairs). Batches drawn with different seeds have
independent errors, so these covariances add up across batches and processes like the other sums.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from iaside_lightning.functional.spectral.shapley import ShapleyStatistics

__all__ = [
    "MIN_REPLICATES",
    "ShapleyEstimate",
    "ValueOracle",
    "estimate_statistics",
    "estimator_generator",
    "evaluate_coalitions",
]

#: Maps 0/1 coalition indicators ``[N, M]`` to per-sample coalition values ``[B, N]`` (float64).
ValueOracle = Callable[[Tensor], Tensor]

#: Fewest independent replicates (permutation pairs, coalition pairs) a sampler draws, for a usable variance.
MIN_REPLICATES = 8
#: Added to the user's seed so that the estimator's draws are independent of the fill's (which uses the seed itself).
_ESTIMATOR_STREAM = 0x5EED_C0A1


class ShapleyEstimate(NamedTuple):
    """Shapley value estimates of one batch.

    ``phi.sum(0)`` is an estimate of the batch's summed exact Shapley values with covariance ``sum_covariance``
    (estimated by the estimator from its own independent replicates; zero for exact enumeration).
    """

    phi: Tensor  #: ``[B, M]`` per-sample estimates; each row sums to ``v(all) - v(empty)``
    sum_covariance: Tensor  #: ``[M, M]`` estimated covariance of ``phi.sum(0)`` over the estimator's random draws
    v_empty: Tensor  #: ``[B]`` value of the empty coalition
    v_full: Tensor  #: ``[B]`` value of the full coalition
    num_evaluations: int  #: distinct coalitions evaluated per sample

    @property
    def sum_variance(self) -> Tensor:
        """``[M]`` estimated variance of ``phi.sum(0)``: the diagonal of ``sum_covariance``."""
        return self.sum_covariance.diagonal()


def estimator_generator(seed: int) -> torch.Generator:
    """The CPU generator of an estimator's draws for ``seed`` (a stream separate from the fill's).

    Example:
        >>> a, b = estimator_generator(3), estimator_generator(3)
        >>> bool(torch.equal(torch.rand(2, generator=a), torch.rand(2, generator=b)))
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an integer, got {seed!r}.")
    return torch.Generator().manual_seed((seed + _ESTIMATOR_STREAM) % 2**63)


def evaluate_coalitions(oracle: ValueOracle, coalitions: Tensor) -> tuple[Tensor, int]:
    """Values ``[B, N]`` of the rows of ``coalitions`` ``[N, M]``, asking the oracle once per distinct coalition.

    Returns:
        ``(values, num_distinct)``; ``values`` is float64.

    Example:
        >>> calls = []
        >>> oracle = lambda z: calls.append(len(z)) or z.sum(1, dtype=torch.float64)[None]
        >>> values, distinct = evaluate_coalitions(oracle, torch.tensor([[1, 0], [0, 1], [1, 0]]))
        >>> values, distinct, calls
        (tensor([[1., 1., 1.]], dtype=torch.float64), 2, [2])
    """
    num_bands = coalitions.shape[1]
    codes = (coalitions.to(torch.int64) << torch.arange(num_bands, device=coalitions.device)).sum(1)
    distinct, inverse = torch.unique(codes, return_inverse=True)
    rows = ((distinct[:, None] >> torch.arange(num_bands, device=codes.device)) & 1).to(coalitions.dtype)
    values = oracle(rows)
    if not isinstance(values, Tensor) or values.ndim != 2 or values.shape[1] != rows.shape[0]:
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise ValueError(
            f"The value oracle must return a tensor [B, N={rows.shape[0]}] of coalition values, got {shape}."
        )
    return values.to(torch.float64)[:, inverse.to(values.device)], int(distinct.numel())


def estimate_statistics(estimate: ShapleyEstimate) -> ShapleyStatistics:
    """Summable statistics of a batch estimate; ``value_sum`` holds only ``[v(empty), v(full)]`` summed.

    Example:
        >>> est = ShapleyEstimate(torch.ones(3, 2), torch.eye(2) / 2, torch.zeros(3), torch.full((3,), 2.0), 7)
        >>> stats = estimate_statistics(est)
        >>> stats.phi_sum.tolist(), stats.value_sum.tolist(), stats.estimator_cov_sum.tolist(), float(stats.count)
        ([3.0, 3.0], [0.0, 6.0], [[0.5, 0.0], [0.0, 0.5]], 3.0)
    """
    phi = estimate.phi.to(torch.float64)
    return ShapleyStatistics(
        phi_sum=phi.sum(0),
        phi_outer_sum=phi.T @ phi,
        value_sum=torch.stack([estimate.v_empty.sum(), estimate.v_full.sum()]).to(torch.float64),
        count=torch.tensor(float(phi.shape[0]), dtype=torch.float64, device=phi.device),
        estimator_cov_sum=estimate.sum_covariance.to(torch.float64),
    )
