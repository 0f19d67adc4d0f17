"""AUROC with ties and a two-level bootstrap (seeds, then samples within a seed) for the memorisation study.

Not an example itself (see ``memorization.py``). A bootstrap replicate draws the seeds with replacement and, within
every run, the probe samples with replacement (multinomial weights), and averages the runs' AUROCs; every score of a
replicate sees the same draws, so differences between two detectors are paired.
"""

import torch
from torch import Tensor

__all__ = ["Bootstrap", "interval", "weighted_auroc"]


def weighted_auroc(scores: Tensor, positive: Tensor, weights: Tensor) -> Tensor:
    """AUROC of ``scores`` ``[n]`` for ``positive`` ``[n]`` under sample weights ``[R, n]``: one value per row.

    ``P(s_pos > s_neg) + P(s_pos = s_neg) / 2`` with every pair weighted by the product of its samples' weights
    (ties count a half, as in the Mann-Whitney statistic).

    Example:
        >>> s, y = torch.tensor([0.1, 0.4, 0.4, 0.9]), torch.tensor([False, False, True, True])
        >>> weighted_auroc(s, y, torch.ones(1, 4)).tolist()
        [0.875]
    """
    levels, inverse = torch.unique(scores.double(), return_inverse=True)
    rows = weights.shape[0]
    pos, neg = (
        torch.zeros(rows, len(levels), dtype=torch.float64).index_add_(1, inverse[side], weights[:, side].double())
        for side in (positive, ~positive)
    )
    below = neg.cumsum(1) - neg  # negative weight strictly below each level
    wins = (pos * (below + neg / 2)).sum(1)
    return wins / (pos.sum(1) * neg.sum(1))


class Bootstrap:
    """Fixed bootstrap draws for ``S`` runs with ``n_s`` probe samples each, reused for every score.

    Args:
        sizes: probe size of each run.
        replicates: bootstrap replicates ``R``.
        seed: seed of the draws.
    """

    def __init__(self, sizes: list[int], replicates: int = 2000, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.seed_draws = torch.randint(len(sizes), (replicates, len(sizes)), generator=generator)
        self.weights = [
            torch.zeros(replicates, n).scatter_add_(
                1, torch.randint(n, (replicates, n), generator=generator), torch.ones(replicates, n)
            )
            for n in sizes
        ]

    def replicates(self, scores: list[Tensor], positives: list[Tensor]) -> tuple[float, Tensor]:
        """(mean over runs of each run's AUROC, ``[R]`` bootstrap replicates of that mean)."""
        point = sum(float(weighted_auroc(s, p, torch.ones(1, len(s)))[0]) for s, p in zip(scores, positives))
        point /= len(scores)
        per_run = torch.stack([weighted_auroc(s, p, w) for s, p, w in zip(scores, positives, self.weights)], 1)
        return point, per_run.gather(1, self.seed_draws).mean(1)


def interval(replicates: Tensor) -> tuple[float, float]:
    """Percentile 95% interval of bootstrap replicates."""
    low, high = torch.quantile(replicates.double(), torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return low, high
