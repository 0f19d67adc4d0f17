"""What every figure shares: the new figure's size, the zero line and the conversion of the plotted values."""

from collections.abc import Mapping, Sequence
from typing import Optional, Union

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

__all__ = ["ArrayLike", "DPI", "FIGSIZE", "figure_and_axes", "to_numpy", "vector", "zero_line"]

ArrayLike = Union[Tensor, np.ndarray, Sequence[float]]

#: Size (inches) and resolution of a new single-axes figure.
FIGSIZE = (6.0, 4.0)
DPI = 100
_ZERO_LINE = "iaside-zero-line"


def figure_and_axes(ax: Optional[Axes], margins: Optional[Mapping[str, float]] = None) -> tuple[Figure, Axes]:
    """The figure owning ``ax`` (its root figure, for axes in a sub-figure), or a new figure with one axes placed
    within ``margins`` (fractions of the figure, as for ``Figure.subplots_adjust``).

    Example:
        >>> fig, ax = figure_and_axes(None, {"left": 0.2})
        >>> fig.get_size_inches().tolist(), figure_and_axes(ax)[0] is fig
        ([6.0, 4.0], True)
    """
    if ax is not None:
        return ax.figure.figure, ax  # ``SubFigure.figure`` is the root figure, ``Figure.figure`` itself
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    if margins is not None:
        fig.subplots_adjust(**margins)
    return fig, fig.add_subplot()


def zero_line(ax: Axes) -> None:
    """A thin horizontal line at 0, drawn once per axes however many curves are overlaid.

    Example:
        >>> _, ax = figure_and_axes(None)
        >>> zero_line(ax)
        >>> zero_line(ax)
        >>> len(ax.get_lines())
        1
    """
    if not any(line.get_gid() == _ZERO_LINE for line in ax.get_lines()):
        ax.axhline(0.0, color="0.4", linewidth=0.8, zorder=0, gid=_ZERO_LINE)


def to_numpy(values: ArrayLike) -> np.ndarray:
    """``values`` as a NumPy array; tensors are detached and converted to float64 on the CPU.

    Example:
        >>> to_numpy(torch.tensor([1, 2])).dtype
        dtype('float64')
    """
    return values.detach().to("cpu", torch.float64).numpy() if isinstance(values, Tensor) else np.asarray(values)


def vector(values: ArrayLike, name: str, size: Optional[int] = None) -> np.ndarray:
    """``values`` as a 1-D float64 array, optionally of a given length; errors name the argument ``name``.

    Example:
        >>> vector([1, 2], "phi", size=3)
        Traceback (most recent call last):
        ...
        ValueError: `phi` must be a 1-D sequence of length 3, got shape (2,).
    """
    array = np.asarray(to_numpy(values), dtype=np.float64)
    if array.ndim != 1 or array.size < 1 or (size is not None and array.size != size):
        expected = "a non-empty 1-D sequence" if size is None else f"a 1-D sequence of length {size}"
        raise ValueError(f"`{name}` must be {expected}, got shape {array.shape}.")
    return array
