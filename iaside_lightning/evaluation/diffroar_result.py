"""The result of DiffROAR (retrained or proxy) and its paper-style figure."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["DiffROARResult", "plot_diffroar"]


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
    def diff_mean(self) -> Tensor:
        """DiffROAR per level ``[L]``: mean over runs of ``top - bottom``."""
        return self.diff.mean(dim=1)

    @property
    def diff_std(self) -> Tensor:
        """Sample standard deviation of DiffROAR over runs ``[L]``; NaN with a single run."""
        return _std(self.diff)

    def rows(self) -> list[dict[str, float]]:
        """One dict per level: ``{"k", "top", "bottom", "diff", "std"}`` (means over runs, std of the diff)."""
        columns = (self.levels, self.top_mean, self.bottom_mean, self.diff_mean, self.diff_std)
        return [dict(zip(("k", "top", "bottom", "diff", "std"), map(float, row))) for row in zip(*columns)]

    def plot(
        self, ax: Optional[Sequence["Axes"]] = None, *, label: Optional[str] = None, title: Optional[str] = None
    ) -> tuple["Figure", tuple["Axes", "Axes"]]:
        """Accuracies and DiffROAR against ``k``; see :func:`plot_diffroar`."""
        return plot_diffroar(self, ax, label=label, title=title)


def plot_diffroar(
    result: DiffROARResult,
    ax: Optional[Sequence["Axes"]] = None,
    *,
    label: Optional[str] = None,
    title: Optional[str] = None,
) -> tuple["Figure", tuple["Axes", "Axes"]]:
    """Paper-style DiffROAR figure: accuracy of top-k (solid) and bottom-k (dashed) unmasked inputs against the
    fraction unmasked ``k`` on the left, DiffROAR with a zero line on the right; error bars are +-1 std over runs.

    Call it again with the returned pair of axes and a ``label`` to overlay attribution methods or models. A new
    figure is 10 x 4 inches with the title "DiffROAR (retrained, ...)" or "DiffROAR proxy (no retraining)".

    Args:
        result: a :class:`DiffROARResult`.
        ax: pair ``(accuracy_axes, diffroar_axes)`` to draw into; a new figure is made when ``None``.
        label: name of this curve in the legends (e.g. the attribution method).
        title: figure title (default: says whether the models were retrained).

    Returns:
        ``(fig, (accuracy_axes, diffroar_axes))``.

    Example:
        >>> result = DiffROARResult(torch.tensor([0.1, 1.0]), torch.tensor([[0.9], [0.97]]),
        ...                         torch.tensor([[0.6], [0.97]]), retrained=False)
        >>> fig, (acc, diff) = plot_diffroar(result, label="gradient")
        >>> fig.get_suptitle(), [text.get_text() for text in acc.get_legend().get_texts()]
        ('DiffROAR proxy (no retraining)', ['gradient: top-k', 'gradient: bottom-k'])
    """
    if not isinstance(result, DiffROARResult):
        raise TypeError(f"`result` must be a DiffROARResult, got {type(result).__name__}.")
    if ax is None:
        try:
            from matplotlib.figure import Figure
        except ImportError as err:
            raise ModuleNotFoundError("Plotting needs matplotlib: install it with `pip install matplotlib`.") from err
        fig = Figure(figsize=(10.0, 4.0), dpi=100, layout="constrained")
        acc_ax, diff_ax = fig.subplots(1, 2)
        diff_ax.axhline(0.0, color="0.4", linewidth=0.8, zorder=0)
        if title is None:
            title = (
                f"DiffROAR (retrained, mean $\\pm$ std over {result.repeats} runs)"
                if result.retrained
                else "DiffROAR proxy (no retraining)"
            )
    else:
        if len(ax) != 2:
            raise ValueError("`ax` must be the pair (accuracy_axes, diffroar_axes) returned by a previous call.")
        acc_ax, diff_ax = ax
        fig = acc_ax.figure.figure
    levels = result.levels.numpy()
    prefix = "" if label is None else f"{label}: "
    bars = {"capsize": 3, "markersize": 4, "linewidth": 1.5}
    (line, *_) = acc_ax.errorbar(
        levels, result.top_mean.numpy(), _bars(result.top), marker="o", label=f"{prefix}top-k", **bars
    )
    acc_ax.errorbar(
        levels, result.bottom_mean.numpy(), _bars(result.bottom), marker="s", linestyle="--", color=line.get_color(),
        label=f"{prefix}bottom-k", **bars,
    )
    diff_ax.errorbar(
        levels, result.diff_mean.numpy(), _bars(result.diff), marker="o", color=line.get_color(),
        label="DiffROAR" if label is None else label, **bars,
    )
    acc_ax.set_ylabel("Test accuracy of retrained models" if result.retrained else "Accuracy of the model itself")
    diff_ax.set_ylabel("DiffROAR = top-k $-$ bottom-k accuracy")
    for axes in (acc_ax, diff_ax):
        axes.set_xlabel(f"Fraction unmasked $k$ ({result.per}s kept)")
        axes.legend(fontsize=8)
    if title is not None:
        fig.suptitle(title)
    return fig, (acc_ax, diff_ax)


def _std(values: Tensor) -> Tensor:
    """Sample standard deviation over dim 1; NaN where there is a single column."""
    if values.shape[1] < 2:
        return torch.full(values.shape[:1], math.nan, dtype=values.dtype)
    return values.std(dim=1)


def _bars(values: Tensor) -> Optional[np.ndarray]:
    """Error bar half-heights (std over runs), ``None`` with a single run."""
    return None if values.shape[1] < 2 else _std(values).numpy()
