"""The result of DiffROAR, retrained or proxy: accuracies of the top-k and bottom-k unmasked inputs per level."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

__all__ = ["DiffROARResult"]


@dataclass(frozen=True, eq=False)
class DiffROARResult:
    """Predictive power of the top-k and bottom-k unmasked inputs at each level ``k``, one column per repeat.

    Attributes:
        levels: fractions unmasked ``k``, increasing, ``[L]``.
        top: accuracy on top-k unmasked inputs ``[L, R]`` (run ``r`` of top and bottom share seed and initialisation).
        bottom: accuracy on bottom-k unmasked inputs ``[L, R]``.
        retrained: ``True`` for :func:`~iaside_lightning.evaluation.diffroar` (fresh models trained on the masked
            data), ``False`` for :func:`~iaside_lightning.evaluation.diffroar_proxy` (the model under test evaluated
            on masked inputs, one "repeat").
        per: ranking unit, ``"coordinate"`` or ``"pixel"``.

    Example:
        >>> result = DiffROARResult(torch.tensor([0.1, 1.0]), torch.tensor([[0.9, 0.8], [0.95, 0.97]]),
        ...                         torch.tensor([[0.6, 0.7], [0.95, 0.97]]), retrained=True)
        >>> for row in result.rows():
        ...     print({key: round(value, 3) for key, value in row.items()})
        {'k': 0.1, 'top': 0.85, 'bottom': 0.65, 'diff': 0.2, 'std': 0.141}
        {'k': 1.0, 'top': 0.96, 'bottom': 0.96, 'diff': 0.0, 'std': 0.0}
    """

    levels: Tensor
    top: Tensor
    bottom: Tensor
    retrained: bool
    per: str = "coordinate"

    def __post_init__(self) -> None:
        if self.levels.ndim != 1 or self.top.shape != self.bottom.shape or self.top.shape[:1] != self.levels.shape:
            raise ValueError(
                "`top` and `bottom` must both have shape [len(levels), repeats], got "
                f"{tuple(self.top.shape)} and {tuple(self.bottom.shape)} for {self.levels.numel()} levels."
            )

    @property
    def repeats(self) -> int:
        """Number of runs per level and side."""
        return self.top.shape[1]

    @property
    def diff(self) -> Tensor:
        """``top - bottom`` per level and run, ``[L, R]``."""
        return self.top - self.bottom

    @property
    def top_mean(self) -> Tensor:
        """Mean top-k accuracy per level ``[L]``."""
        return self.top.mean(dim=1)

    @property
    def bottom_mean(self) -> Tensor:
        """Mean bottom-k accuracy per level ``[L]``."""
        return self.bottom.mean(dim=1)

    @property
    def top_std(self) -> Tensor:
        """Sample standard deviation of the top-k accuracy over runs ``[L]``; NaN with a single run."""
        return _std(self.top)

    @property
    def bottom_std(self) -> Tensor:
        """Sample standard deviation of the bottom-k accuracy over runs ``[L]``; NaN with a single run."""
        return _std(self.bottom)

    @property
    def diff_mean(self) -> Tensor:
        """DiffROAR per level ``[L]``: mean over runs of ``top - bottom``."""
        return self.diff.mean(dim=1)

    @property
    def diff_std(self) -> Tensor:
        """Sample standard deviation of DiffROAR over runs ``[L]``; NaN with a single run."""
        return _std(self.diff)

    @property
    def top_sem(self) -> Tensor:
        """Standard error of the mean top-k accuracy, ``std / sqrt(repeats)`` ``[L]``; NaN with a single run."""
        return self.top_std / math.sqrt(self.repeats)

    @property
    def bottom_sem(self) -> Tensor:
        """Standard error of the mean bottom-k accuracy ``[L]``; NaN with a single run."""
        return self.bottom_std / math.sqrt(self.repeats)

    @property
    def diff_sem(self) -> Tensor:
        """Standard error of DiffROAR, from the paired per-run differences ``[L]``; NaN with a single run.

        Multiply by a t quantile with ``repeats - 1`` degrees of freedom for a confidence interval (2.776 for a
        95% interval over 5 runs).

        Example:
            >>> result = DiffROARResult(torch.tensor([0.1]), torch.tensor([[0.9, 0.8, 0.7, 0.8]]),
            ...                         torch.tensor([[0.6, 0.6, 0.6, 0.6]]), retrained=True)
            >>> round(float(result.diff_sem[0]), 4)  # std 0.0816 of the differences over sqrt(4) runs
            0.0408
        """
        return self.diff_std / math.sqrt(self.repeats)

    def rows(self) -> list[dict[str, float]]:
        """One dict per level: ``{"k", "top", "bottom", "diff", "std"}`` (means over runs, std of the diff)."""
        columns = (self.levels, self.top_mean, self.bottom_mean, self.diff_mean, self.diff_std)
        return [dict(zip(("k", "top", "bottom", "diff", "std"), map(float, row))) for row in zip(*columns)]

    def plot(
        self, ax: Optional[Sequence[Axes]] = None, *, label: Optional[str] = None, title: Optional[str] = None
    ) -> tuple[Figure, tuple[Axes, Axes]]:
        """Accuracies and DiffROAR against ``k``; see :func:`~iaside_lightning.plotting.plot_diffroar`.

        Example:
            >>> result = DiffROARResult(torch.tensor([0.5]), torch.tensor([[0.9]]), torch.tensor([[0.6]]), False)
            >>> result.plot()[0].get_suptitle()
            'DiffROAR proxy (no retraining)'
        """
        # Imported here, not at the top: the plotting module imports this one.
        from iaside_lightning.plotting.sanity import plot_diffroar

        return plot_diffroar(self, ax, label=label, title=title)


def _std(values: Tensor) -> Tensor:
    """Sample standard deviation over dim 1; NaN where there is a single column."""
    if values.shape[1] < 2:
        return torch.full(values.shape[:1], math.nan, dtype=values.dtype)
    return values.std(dim=1)
