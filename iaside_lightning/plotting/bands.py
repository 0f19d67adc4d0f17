"""Frequency bands on a figure's axes: checked band edges, ``"lo–hi"`` labels and the per-band frequency axis."""

import warnings
from typing import Optional

import numpy as np
from matplotlib.axes import Axes

from iaside_lightning.plotting.common import ArrayLike, vector

__all__ = ["band_frequencies_argument", "band_frequency_axis", "band_labels", "checked_band_frequencies"]


def band_frequencies_argument(band_frequencies: Optional[ArrayLike], band_edges: Optional[ArrayLike]) -> Optional[ArrayLike]:
    """The plots' band frequencies, also when passed under their deprecated name ``band_edges`` (which warns).

    Example:
        >>> band_frequencies_argument([0.0, 0.5], None)
        [0.0, 0.5]
    """
    if band_edges is None:
        return band_frequencies
    if band_frequencies is not None:
        raise ValueError("Pass `band_frequencies` alone: `band_edges` is its deprecated name.")
    warnings.warn(
        "The plots' `band_edges` argument is now `band_frequencies` (edges in cycles per pixel, a result's "
        "`band_frequencies`); `band_edges` names the option that cuts the bands.",
        DeprecationWarning,
        stacklevel=3,
    )
    return band_edges


def checked_band_frequencies(band_frequencies: Optional[ArrayLike], num_bands: int) -> np.ndarray:
    """Band edges in cycles per pixel, ``[M + 1]``, increasing within ``[0, 0.5]``; equal-width bands when ``None``.

    Example:
        >>> checked_band_frequencies(None, 2).tolist()
        [0.0, 0.25, 0.5]
    """
    if band_frequencies is None:
        return np.linspace(0.0, 0.5, num_bands + 1)
    edges = vector(band_frequencies, "band_frequencies", num_bands + 1)
    if edges[0] < 0 or edges[-1] > 0.5 or not bool(np.all(np.diff(edges) > 0)):
        raise ValueError(
            "`band_frequencies` must increase strictly within [0, 0.5] cycles per pixel (use "
            f"`SpectralShapleyResult.band_frequencies`, not the normalised radius), got {edges.tolist()}."
        )
    return edges


def band_labels(edges: np.ndarray) -> list[str]:
    """``"lo–hi"`` per band with the fewest significant digits (at least 2) that keep all edges distinct.

    Example:
        >>> band_labels(np.array([0.0, 0.125, 0.13, 0.5]))
        ['0–0.12', '0.12–0.13', '0.13–0.5']
    """
    for digits in range(2, 8):
        text = [f"{edge:.{digits}g}" for edge in edges]
        if len(set(text)) == edges.size:
            break
    return [f"{lo}–{hi}" for lo, hi in zip(text[:-1], text[1:])]


def band_frequency_axis(ax: Axes, edges: np.ndarray) -> None:
    """x axis of per-band curves: ticks at band centres labelled with the band, faint lines at the band edges.

    The axis is logarithmic when the widths of the inner bands differ by more than a factor of 4
    (``band_edges="log"``); the first and last band are left out of that test, since the ``"rings"`` rule may leave
    the top band one ring narrower than the others.

    Example:
        >>> from iaside_lightning.plotting.common import figure_and_axes
        >>> _, ax = figure_and_axes(None)
        >>> band_frequency_axis(ax, np.array([0.0, 0.01, 0.1, 0.5]))
        >>> ax.get_xscale(), ax.get_xlabel()
        ('log', 'Band frequency (cycles/pixel)')
    """
    centres = (edges[1:] + edges[:-1]) / 2
    widths = np.diff(edges)
    inner = widths[1:-1] if widths.size > 3 else widths
    if inner.max() > 4 * inner.min():  # e.g. ``band_edges="log"``: equal spacing needs a log axis
        ax.set_xscale("log")
        ax.set_xlim(centres[0] * np.sqrt(centres[0] / centres[1]), edges[-1])
    else:
        ax.set_xlim(edges[0], edges[-1])
    ax.set_xticks(centres, band_labels(edges), rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_xticks(edges[1:-1], [""] * (edges.size - 2), minor=True)
    ax.grid(True, which="minor", axis="x", color="0.9", linewidth=0.8)
    ax.tick_params(axis="x", which="minor", length=0)
    ax.set_xlabel("Band frequency (cycles/pixel)")
