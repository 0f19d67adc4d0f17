"""I-ASIDE figures: frequency response, band x epoch heat map, SRS curve and spectral SNR.

Every function draws with the object-oriented :class:`matplotlib.figure.Figure` API (never ``pyplot``'s global
state, so nothing leaks and no GUI backend is needed), accepts ``ax=None`` and returns ``(fig, ax)`` like
torchmetrics' ``Metric.plot``. A new figure is 6 x 4 inches at 100 dpi with fixed margins sized for its labels (a
constrained layout tripled the rendering time, which matters for figures logged every epoch). Frequencies are
in cycles per pixel: band edges run from 0 to 0.5 (``SpectralShapleyResult.band_frequencies``); without them, ``M``
equal-width bands are assumed. The caller owns the figure; close it with ``matplotlib.pyplot.close(fig)`` only if
it was registered with pyplot, otherwise simply drop the reference.
"""

from collections.abc import Mapping
from typing import Optional

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from iaside_lightning.plotting.bands import (
    band_frequencies_argument,
    band_frequency_axis,
    band_labels,
    checked_band_frequencies,
)
from iaside_lightning.plotting.common import ArrayLike, figure_and_axes, to_numpy, vector, zero_line

__all__ = ["plot_band_epoch_heatmap", "plot_frequency_response", "plot_spectral_snr", "plot_srs_curve"]

#: Room for rotated band labels below the axes and a title above.
_BAND_AXIS_MARGINS = {"left": 0.13, "right": 0.97, "bottom": 0.24, "top": 0.92}
#: Heat map: room for band labels on the left and, on the right, for the colour bar, its ticks and its label.
_HEATMAP_MARGINS = {"left": 0.2, "right": 0.8, "bottom": 0.12, "top": 0.92}
#: The heat map's colour bar in a new figure: ``[left, bottom, width, height]`` in figure fractions.
_HEATMAP_COLORBAR = (0.83, _HEATMAP_MARGINS["bottom"], 0.025, _HEATMAP_MARGINS["top"] - _HEATMAP_MARGINS["bottom"])


def plot_frequency_response(
    phi: ArrayLike,
    stderr: Optional[ArrayLike] = None,
    band_frequencies: Optional[ArrayLike] = None,
    *,
    band_edges: Optional[ArrayLike] = None,
    ax: Optional[Axes] = None,
    label: Optional[str] = None,
    title: Optional[str] = None,
    unit: str = "nats",
) -> tuple[Figure, Axes]:
    """Shapley value of each band against the band's centre frequency, with 95% error bars.

    Call it again with the returned ``ax`` to overlay several curves (for example several epochs or models). The
    frequency axis is logarithmic when the bands' widths differ by more than a factor of 4 (``band_edges="log"``);
    thin vertical lines mark the band edges.

    Args:
        phi: Shapley value per band, shape ``[M]``, lowest band first.
        stderr: standard error per band ``[M]``; bars span ``phi +- 1.96 * stderr`` (NaN entries get no bar).
        band_frequencies: band edges in cycles per pixel ``[M + 1]``, increasing from 0 to 0.5 (a result's
            ``band_frequencies``); ``band_edges=`` is its deprecated name.
        ax: axes to draw into; a new figure is made when ``None``.
        label: legend entry of this curve; a legend is drawn when given.
        title: axes title.
        unit: unit of ``phi`` for the y label (``"nats"`` for ``value="log_prob"``).

    Returns:
        ``(fig, ax)``.

    Raises:
        ValueError: if the shapes of ``phi``, ``stderr`` and ``band_frequencies`` disagree or the band frequencies are invalid.

    Example:
        >>> fig, ax = plot_frequency_response([0.9, 0.4, 0.1, -0.05], stderr=[0.02] * 4)
        >>> ax.get_xticklabels()[1].get_text()
        '0.12–0.25'
    """
    values = vector(phi, "phi")
    edges = checked_band_frequencies(band_frequencies_argument(band_frequencies, band_edges), values.size)
    errors = None if stderr is None else 1.96 * vector(stderr, "stderr", values.size)
    fig, ax = figure_and_axes(ax, _BAND_AXIS_MARGINS)
    centres = (edges[1:] + edges[:-1]) / 2
    ax.errorbar(centres, values, yerr=errors, marker="o", markersize=4, capsize=3, linewidth=1.5, label=label)
    zero_line(ax)
    band_frequency_axis(ax, edges)
    ax.set_ylabel(f"Shapley value $\\phi$ ({unit})")
    if label is not None:
        ax.legend(fontsize=8)
    if title is not None:
        ax.set_title(title)
    return fig, ax


def plot_band_epoch_heatmap(
    phi_history: ArrayLike,
    epochs: ArrayLike,
    band_frequencies: Optional[ArrayLike] = None,
    *,
    band_edges: Optional[ArrayLike] = None,
    ax: Optional[Axes] = None,
    title: Optional[str] = None,
    unit: str = "nats",
) -> tuple[Figure, Axes]:
    """Shapley value of every band at every evaluated epoch as an image (low frequencies at the bottom).

    The diverging colour map is centred at 0 with symmetric limits ``+-max|phi|``: red bands help the prediction,
    blue bands hurt it. Each column is one evaluation, labelled with its epoch.

    Args:
        phi_history: Shapley values ``[E, M]``, one row per evaluation, lowest band first.
        epochs: epoch of each row ``[E]``.
        band_frequencies: band edges in cycles per pixel ``[M + 1]``, increasing from 0 to 0.5 (a result's
            ``band_frequencies``); ``band_edges=`` is its deprecated name.
        ax: axes to draw into; a new figure is made when ``None``.
        title: axes title.
        unit: unit of ``phi`` for the colour bar label.

    Returns:
        ``(fig, ax)``; the colour bar has its own axes in ``fig``.

    Raises:
        ValueError: if ``phi_history`` is not 2-D or its shape disagrees with ``epochs`` or ``band_frequencies``.

    Example:
        >>> fig, ax = plot_band_epoch_heatmap([[0.5, 0.1], [0.7, -0.2]], epochs=[0, 1])
        >>> [round(limit, 3) for limit in ax.images[0].get_clim()]
        [-0.7, 0.7]
    """
    history = np.asarray(to_numpy(phi_history), dtype=np.float64)
    if history.ndim != 2 or history.shape[0] < 1:
        raise ValueError(f"`phi_history` must have shape [epochs, bands], got shape {history.shape}.")
    steps = vector(epochs, "epochs", history.shape[0])
    edges = checked_band_frequencies(band_frequencies_argument(band_frequencies, band_edges), history.shape[1])
    new_figure = ax is None
    fig, ax = figure_and_axes(ax, _HEATMAP_MARGINS)
    finite = np.abs(history[np.isfinite(history)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    image = ax.imshow(
        history.T, origin="lower", aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit
    )
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True, min_n_ticks=1))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _: f"{steps[int(x)]:g}" if float(x).is_integer() and 0 <= x < steps.size else "")
    )
    ax.set_yticks(np.arange(history.shape[1]), band_labels(edges), fontsize=8)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Band (cycles/pixel)")
    label = f"Shapley value $\\phi$ ({unit})"
    if new_figure:  # fixed colour-bar axes inside the figure, so the label survives saving without a tight box
        ax.figure.colorbar(image, cax=ax.figure.add_axes(_HEATMAP_COLORBAR), label=label)
    else:
        ax.figure.colorbar(image, ax=ax, label=label)
    if title is not None:
        ax.set_title(title)
    return fig, ax


def plot_srs_curve(
    epochs: ArrayLike,
    srs: ArrayLike,
    srs_signed: Optional[ArrayLike] = None,
    *,
    srs_stderr: Optional[ArrayLike] = None,
    srs_signed_stderr: Optional[ArrayLike] = None,
    balance: Optional[ArrayLike] = None,
    balance_stderr: Optional[ArrayLike] = None,
    ax: Optional[Axes] = None,
    label: Optional[str] = None,
) -> tuple[Figure, Axes]:
    """Spectral robustness score against epoch, with 95% bands; signed SRS dashed and the spectral balance dotted,
    in the same colour.

    Call it again with the returned ``ax`` to compare runs.

    Args:
        epochs: epoch of each evaluation ``[E]``.
        srs: spectral robustness score ``[E]``.
        srs_signed: signed score ``[E]`` (positive: importance leans to low frequencies).
        srs_stderr: standard error of ``srs`` ``[E]``; shades ``srs +- 1.96 stderr`` (NaN: no band there).
        srs_signed_stderr: standard error of ``srs_signed`` ``[E]``, shaded likewise.
        balance: spectral balance ``[E]`` (in ``[-1, 1]``; harmful bands count against robustness).
        balance_stderr: standard error of ``balance`` ``[E]``, shaded likewise.
        ax: axes to draw into; a new figure is made when ``None``.
        label: legend name of this run (default ``"SRS"``).

    Returns:
        ``(fig, ax)``.

    Raises:
        ValueError: if the sequences differ in length.

    Example:
        >>> fig, ax = plot_srs_curve([0, 1, 2], [0.10, 0.25, 0.31], srs_signed=[-0.10, 0.25, 0.31],
        ...                          srs_stderr=[0.02, 0.03, 0.02], balance=[0.1, 0.4, 0.5])
        >>> [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
        ['SRS', 'SRS (signed)', 'spectral balance']
        >>> len(ax.collections)  # one 95% band, for the SRS
        1
    """
    steps = vector(epochs, "epochs")
    fig, ax = figure_and_axes(ax, {"left": 0.13, "right": 0.97, "bottom": 0.12, "top": 0.92})
    name = "SRS" if label is None else label
    color = None
    curves = (
        (srs, srs_stderr, "srs", name, "-"),
        (srs_signed, srs_signed_stderr, "srs_signed", f"{name} (signed)", "--"),
        (balance, balance_stderr, "balance", "spectral balance" if label is None else f"{label} (balance)", ":"),
    )
    for values, stderr, argument, legend, style in curves:
        if values is None:
            continue
        score = vector(values, argument, steps.size)
        marker_size = 4 if style == "-" else 3
        (line,) = ax.plot(steps, score, linestyle=style, marker="o", markersize=marker_size, color=color, label=legend)
        color = line.get_color()
        if stderr is not None:
            half = 1.96 * vector(stderr, f"{argument}_stderr", steps.size)
            ax.fill_between(steps, score - half, score + half, color=color, alpha=0.15, linewidth=0)
    if srs_signed is not None or balance is not None:
        zero_line(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Score (shaded: 95% interval)" if srs_stderr is not None else "Spectral robustness score (SRS)")
    ax.legend(fontsize=8)
    return fig, ax


def plot_spectral_snr(
    snr_db_by_name: Mapping[str, ArrayLike],
    band_frequencies: Optional[ArrayLike] = None,
    *,
    band_edges: Optional[ArrayLike] = None,
    ax: Optional[Axes] = None,
    title: Optional[str] = None,
) -> tuple[Figure, Axes]:
    """Per-band signal-to-noise ratio (dB) of one or more perturbations against the band's centre frequency.

    One line per perturbation, in the order given. A band where a perturbation has no energy (``+inf`` dB, see
    :func:`~iaside_lightning.functional.spectral_snr`) is drawn as a hollow triangle pointing up at the top edge of
    the axes, ``-inf`` as one pointing down at the bottom edge; the line skips those bands.

    Args:
        snr_db_by_name: SNR in dB per band ``[M]`` for each perturbation name, lowest band first.
        band_frequencies: band edges in cycles per pixel ``[M + 1]``, increasing from 0 to 0.5 (a result's
            ``band_frequencies``); ``band_edges=`` is its deprecated name.
        ax: axes to draw into; a new figure is made when ``None``.
        title: axes title.

    Returns:
        ``(fig, ax)``.

    Raises:
        ValueError: if no perturbation is given, or the SNR vectors and ``band_frequencies`` disagree in length.

    Example:
        >>> fig, ax = plot_spectral_snr({"noise": [30.0, 21.0, 15.0, 12.0], "blur": [float("inf"), 40.0, 8.0, 2.0]})
        >>> [text.get_text() for text in ax.get_legend().get_texts()]
        ['noise', 'blur']
    """
    if not snr_db_by_name:
        raise ValueError("`snr_db_by_name` is empty: pass {perturbation name: SNR per band in dB}.")
    curves = {name: vector(snr, f"snr_db_by_name[{name!r}]") for name, snr in snr_db_by_name.items()}
    num_bands = next(iter(curves.values())).size
    edges = checked_band_frequencies(band_frequencies_argument(band_frequencies, band_edges), num_bands)
    centres = (edges[1:] + edges[:-1]) / 2
    fig, ax = figure_and_axes(ax, _BAND_AXIS_MARGINS)
    edge_of_axes = ax.get_xaxis_transform()  # x in data, y in axes coordinates
    for name, snr in curves.items():
        if snr.size != num_bands:
            raise ValueError(f"Every SNR vector needs {num_bands} bands, got {snr.size} for {name!r}.")
        (line,) = ax.plot(centres, np.where(np.isfinite(snr), snr, np.nan), marker="o", markersize=4, label=name)
        for value, y, marker in ((np.inf, 1.0, "^"), (-np.inf, 0.0, "v")):
            hits = snr == value
            if hits.any():
                ax.plot(centres[hits], np.full(int(hits.sum()), y), linestyle="none", marker=marker, markersize=7,
                        markerfacecolor="none", color=line.get_color(), transform=edge_of_axes, clip_on=False)
    zero_line(ax)
    band_frequency_axis(ax, edges)
    ax.set_ylabel("SNR (dB)")
    ax.legend(fontsize=8)
    if title is not None:
        ax.set_title(title)
    return fig, ax
