"""Rank correlations with percentile bootstrap intervals that resample single models or whole groups of them.

Shared statistics of the examples that correlate a score with robustness across trained models, where several
seeds of one training recipe are not independent models: every interval is computed twice, resampling models and
resampling recipes (all seeds of a drawn recipe together).
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy.stats import f_oneway, rankdata

__all__ = ["Estimate", "SpreadSummary", "bootstrap", "partial_spearman", "seed_spread", "spearman"]


class Estimate(NamedTuple):
    """A statistic and its percentile bootstrap 95% intervals."""

    value: float
    by_model: tuple[float, float]  #: resampling models (rows) with replacement
    by_group: tuple[float, float]  #: resampling groups (recipes) with replacement, their rows together


class SpreadSummary(NamedTuple):
    """How much a per-model quantity varies between seeds of a recipe against between recipes."""

    within: float  #: pooled standard deviation between seeds of one recipe
    between: float  #: standard deviation of the recipes' means
    noise_floor: float  #: ``within / sqrt(seeds)``: the ``between`` that seed noise alone would give
    f_statistic: float  #: one-way ANOVA F of recipe against seed variation
    p_value: float  #: its p-value


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) <= 1e-12 * max(1.0, np.abs(x).max()) or np.ptp(y) <= 1e-12 * max(1.0, np.abs(y).max()):
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson's of the average ranks); NaN when either variable is constant.

    Example:
        >>> round(spearman([1, 2, 3, 4], [1, 3, 2, 4]), 6)
        0.8
    """
    return _pearson(rankdata(x), rankdata(y))


def partial_spearman(x: Sequence[float], y: Sequence[float], control: Sequence[float]) -> float:
    """Spearman partial correlation of ``x`` and ``y`` given ``control``.

    All three are rank-transformed; the ranks of ``x`` and of ``y`` are each regressed (least squares, with an
    intercept) on the ranks of ``control``, and the result is the Pearson correlation of the two residuals: how
    ``x`` and ``y`` go together beyond what both share with ``control``.

    Example:
        >>> x, y, control = [1, 3, 2, 4, 6, 5], [2, 1, 4, 3, 5, 6], [1, 2, 3, 4, 5, 6]
        >>> round(spearman(x, y), 2), round(partial_spearman(x, y, control), 2)  # their agreement is the control's
        (0.66, -0.59)
    """
    design = np.column_stack([np.ones(len(control)), rankdata(control)])

    def residual(values: Sequence[float]) -> np.ndarray:
        ranks = rankdata(values)
        return ranks - design @ np.linalg.lstsq(design, ranks, rcond=None)[0]

    return _pearson(residual(x), residual(y))


def bootstrap(
    statistic: Callable[[np.ndarray], float], groups: Sequence[str], num_resamples: int = 2000, seed: int = 0
) -> Estimate:
    """``statistic`` of all rows, with percentile bootstrap 95% intervals resampling rows and resampling groups.

    Args:
        statistic: maps an index array of rows (with repeats) to a number; NaN (undefined, e.g. a constant
            resample) drops the resample.
        groups: the group (recipe) of each row.
        num_resamples: bootstrap resamples per interval.
        seed: seed of the resampling.

    Raises:
        ValueError: if there are fewer than 2 rows or ``num_resamples < 1``.

    Example:
        >>> x = np.array([1.0, 2.0, 3.0, 4.0])
        >>> estimate = bootstrap(lambda rows: float(x[rows].mean()), ["a", "a", "b", "b"], num_resamples=200)
        >>> estimate.value, 1.0 <= estimate.by_model[0] <= 2.5 <= estimate.by_model[1] <= 4.0
        (2.5, True)
    """
    if len(groups) < 2 or num_resamples < 1:
        raise ValueError(f"need at least 2 rows and 1 resample, got {len(groups)} rows, {num_resamples} resamples.")
    labels = np.asarray(groups)
    members = [np.flatnonzero(labels == g) for g in dict.fromkeys(groups)]
    rng = np.random.default_rng(seed)

    def interval(draw: Callable[[], np.ndarray]) -> tuple[float, float]:
        draws = np.array([statistic(draw()) for _ in range(num_resamples)])
        draws = draws[np.isfinite(draws)]
        low, high = np.percentile(draws, [2.5, 97.5]) if draws.size else (np.nan, np.nan)
        return float(low), float(high)

    by_model = interval(lambda: rng.integers(0, labels.size, labels.size))
    by_group = interval(lambda: np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))]))
    return Estimate(statistic(np.arange(labels.size)), by_model, by_group)


def seed_spread(values: Sequence[float], groups: Sequence[str]) -> SpreadSummary:
    """Seed-to-seed against recipe-to-recipe variation of ``values`` (each group needs >= 2 rows).

    Example:
        >>> spread = seed_spread([1.0, 1.2, 2.0, 2.2, 3.0, 3.2], ["a", "a", "b", "b", "c", "c"])
        >>> round(spread.within, 3), round(spread.between, 3), spread.p_value < 0.01
        (0.141, 1.0, True)
    """
    labels, array = np.asarray(groups), np.asarray(values, dtype=float)
    samples = [array[labels == g] for g in dict.fromkeys(groups)]
    if len(samples) < 2 or min(s.size for s in samples) < 2:
        raise ValueError("seed_spread needs at least 2 groups of at least 2 rows each.")
    within = float(np.sqrt(np.mean([s.var(ddof=1) for s in samples])))
    between = float(np.std([s.mean() for s in samples], ddof=1))
    test = f_oneway(*samples)
    seeds = np.mean([s.size for s in samples])
    return SpreadSummary(within, between, within / float(np.sqrt(seeds)), float(test.statistic), float(test.pvalue))
