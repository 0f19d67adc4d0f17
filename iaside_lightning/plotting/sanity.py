"""The DiffROAR figure (attribution sanity checks): accuracies of the top-k and bottom-k unmasked inputs, and
DiffROAR, against the fraction unmasked."""

import math
from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from iaside_lightning.functional.sanity.diffroar_result import DiffROARResult
from iaside_lightning.plotting.common import DPI, zero_line

__all__ = ["plot_diffroar"]

#: Size (inches) of a new DiffROAR figure: accuracy and DiffROAR side by side.
_FIGSIZE = (10.0, 4.0)


def plot_diffroar(
    result: DiffROARResult,
    ax: Optional[Sequence[Axes]] = None,
    *,
    label: Optional[str] = None,
    title: Optional[str] = None,
    interval: Optional[float] = None,
    shift: float = 1.0,
) -> tuple[Figure, tuple[Axes, Axes]]:
    """Paper-style DiffROAR figure: accuracy of top-k (solid) and bottom-k (dashed) unmasked inputs against the
    fraction unmasked ``k`` on the left, DiffROAR with a zero line on the right; error bars are +-1 std over runs, or
    confidence intervals with ``interval``.

    Call it again with the returned pair of axes and a ``label`` to overlay attribution methods or models (a
    ``shift`` per curve keeps their error bars apart). A new figure is 10 x 4 inches with the title "DiffROAR
    (retrained, ...)" or "DiffROAR proxy (no retraining)".

    Args:
        result: a :class:`~iaside_lightning.functional.sanity.diffroar_result.DiffROARResult`.
        ax: pair ``(accuracy_axes, diffroar_axes)`` to draw into; a new figure is made when ``None``.
        label: name of this curve in the legends (e.g. the attribution method).
        title: figure title (default: says whether the models were retrained and what the error bars are).
        interval: error bars of half-width ``interval`` standard errors of the mean over runs (for the DiffROAR panel,
            of the paired differences), e.g. ``t_quantile(repeats - 1)`` (2.776 for 5 runs) for 95% t intervals;
            ``None``: +-1 std over runs.
        shift: the curve is drawn at ``shift * k`` (e.g. 0.96 and 1.04 for two methods on a log ``k`` axis), so
            overlaid error bars do not hide each other; the ticks still read ``k``.

    Returns:
        ``(fig, (accuracy_axes, diffroar_axes))``.

    Raises:
        TypeError: if ``result`` is not a ``DiffROARResult``.
        ValueError: if ``ax`` is not a pair of axes, or ``interval`` or ``shift`` is not a positive finite number.

    Example:
        >>> result = DiffROARResult(torch.tensor([0.1, 1.0]), torch.tensor([[0.9], [0.97]]),
        ...                         torch.tensor([[0.6], [0.97]]), retrained=False)
        >>> fig, (acc, diff) = plot_diffroar(result, label="gradient")
        >>> fig.get_suptitle(), [text.get_text() for text in acc.get_legend().get_texts()]
        ('DiffROAR proxy (no retraining)', ['gradient: top-k', 'gradient: bottom-k'])
    """
    if not isinstance(result, DiffROARResult):
        raise TypeError(f"`result` must be a DiffROARResult, got {type(result).__name__}.")
    for name, value in (("interval", interval), ("shift", shift)):
        invalid = isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf
        if value is not None and invalid:
            raise ValueError(f"`{name}` must be a positive finite number, got {value!r}.")
    if ax is None:
        fig = Figure(figsize=_FIGSIZE, dpi=DPI, layout="constrained")
        acc_ax, diff_ax = fig.subplots(1, 2)
        zero_line(diff_ax)
        if title is None:
            bars_text = "std" if interval is None else f"{interval:.3g} s.e."
            title = (
                f"DiffROAR (retrained, mean $\\pm$ {bars_text} over {result.repeats} runs)"
                if result.retrained
                else "DiffROAR proxy (no retraining)"
            )
    else:
        if len(ax) != 2:
            raise ValueError("`ax` must be the pair (accuracy_axes, diffroar_axes) returned by a previous call.")
        acc_ax, diff_ax = ax
        fig = acc_ax.figure.figure
    levels = result.levels.numpy() * shift
    if interval is None:
        top_bars, bottom_bars, diff_bars = result.top_std, result.bottom_std, result.diff_std
    else:
        top_bars, bottom_bars, diff_bars = (interval * s for s in (result.top_sem, result.bottom_sem, result.diff_sem))
    prefix = "" if label is None else f"{label}: "
    bars = {"capsize": 3, "markersize": 4, "linewidth": 1.5}
    (line, *_) = acc_ax.errorbar(
        levels, result.top_mean.numpy(), _bars(top_bars, result.repeats), marker="o", label=f"{prefix}top-k",
        **bars,
    )  # fmt: skip
    acc_ax.errorbar(
        levels, result.bottom_mean.numpy(), _bars(bottom_bars, result.repeats), marker="s", linestyle="--",
        color=line.get_color(), label=f"{prefix}bottom-k", **bars,
    )  # fmt: skip
    diff_ax.errorbar(
        levels, result.diff_mean.numpy(), _bars(diff_bars, result.repeats), marker="o", color=line.get_color(),
        label="DiffROAR" if label is None else label, **bars,
    )  # fmt: skip
    acc_ax.set_ylabel("Test accuracy of retrained models" if result.retrained else "Accuracy of the model itself")
    diff_ax.set_ylabel("DiffROAR = top-k $-$ bottom-k accuracy")
    for axes in (acc_ax, diff_ax):
        axes.set_xlabel(f"Fraction unmasked $k$ ({result.per}s kept)")
        axes.legend(fontsize=8)
    if title is not None:
        fig.suptitle(title)
    return fig, (acc_ax, diff_ax)


def _bars(half_widths: torch.Tensor, repeats: int) -> Optional[np.ndarray]:
    """Error bar half-heights, ``None`` with a single run."""
    return None if repeats < 2 else half_widths.numpy()
