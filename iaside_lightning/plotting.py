"""Figures: frequency response, band x epoch heat map, SRS curve, spectral SNR, and attribution-map grids.

Every function draws with the object-oriented :class:`matplotlib.figure.Figure` API (never ``pyplot``'s global
state, so nothing leaks and no GUI backend is needed), accepts ``ax=None`` and returns ``(fig, ax)`` like
torchmetrics' ``Metric.plot``. A new figure is 6 x 4 inches at 100 dpi with fixed margins sized for its labels (a
constrained layout tripled the rendering time, which matters for figures logged every epoch). Frequencies are
in cycles per pixel: band edges run from 0 to 0.5 (``SpectralShapleyResult.band_edges``); without them, ``M``
equal-width bands are assumed. The caller owns the figure; close it with ``matplotlib.pyplot.close(fig)`` only if
it was registered with pyplot, otherwise simply drop the reference.
"""

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Optional, Union

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_attribution_grid",
    "plot_band_epoch_heatmap",
    "plot_frequency_response",
    "plot_spectral_snr",
    "plot_srs_curve",
]

ArrayLike = Union[Tensor, np.ndarray, Sequence[float]]

_FIGSIZE = (6.0, 4.0)
_DPI = 100
_ZERO_LINE = "iaside-zero-line"
#: Room for rotated band labels below the axes and a title above.
_BAND_AXIS_MARGINS = {"left": 0.13, "right": 0.97, "bottom": 0.24, "top": 0.92}
#: Heat map: room for band labels on the left and, on the right, for the colour bar, its ticks and its label.
_HEATMAP_MARGINS = {"left": 0.2, "right": 0.8, "bottom": 0.12, "top": 0.92}
#: The heat map's colour bar in a new figure: ``[left, bottom, width, height]`` in figure fractions.
_HEATMAP_COLORBAR = (0.83, _HEATMAP_MARGINS["bottom"], 0.025, _HEATMAP_MARGINS["top"] - _HEATMAP_MARGINS["bottom"])


def plot_frequency_response(
    phi: ArrayLike,
    stderr: Optional[ArrayLike] = None,
    band_edges: Optional[ArrayLike] = None,
    *,
    ax: Optional["Axes"] = None,
    label: Optional[str] = None,
    title: Optional[str] = None,
    unit: str = "nats",
) -> tuple["Figure", "Axes"]:
    """Shapley value of each band against the band's centre frequency, with 95% error bars.

    Call it again with the returned ``ax`` to overlay several curves (for example several epochs or models). The
    frequency axis is logarithmic when the bands' widths differ by more than a factor of 4 (``band_edges="log"``);
    thin vertical lines mark the band edges.

    Args:
        phi: Shapley value per band, shape ``[M]``, lowest band first.
        stderr: standard error per band ``[M]``; bars span ``phi +- 1.96 * stderr`` (NaN entries get no bar).
        band_edges: band edges in cycles per pixel ``[M + 1]``, increasing from 0 to 0.5.
        ax: axes to draw into; a new figure is made when ``None``.
        label: legend entry of this curve; a legend is drawn when given.
        title: axes title.
        unit: unit of ``phi`` for the y label (``"nats"`` for ``value="log_prob"``).

    Returns:
        ``(fig, ax)``.

    Raises:
        ValueError: if the shapes of ``phi``, ``stderr`` and ``band_edges`` disagree or the edges are invalid.

    Example:
        >>> fig, ax = plot_frequency_response(torch.tensor([0.9, 0.4, 0.1, -0.05]), stderr=torch.full((4,), 0.02))
        >>> ax.get_xticklabels()[1].get_text()
        '0.12–0.25'
    """
    values = _vector(phi, "phi")
    edges = _edges(band_edges, values.size)
    errors = None if stderr is None else 1.96 * _vector(stderr, "stderr", values.size)
    fig, ax = _figure_and_axes(ax, _BAND_AXIS_MARGINS)
    centres = (edges[1:] + edges[:-1]) / 2
    ax.errorbar(centres, values, yerr=errors, marker="o", markersize=4, capsize=3, linewidth=1.5, label=label)
    _zero_line(ax)
    _band_frequency_axis(ax, edges)
    ax.set_ylabel(f"Shapley value $\\phi$ ({unit})")
    if label is not None:
        ax.legend(fontsize=8)
    if title is not None:
        ax.set_title(title)
    return fig, ax


def plot_band_epoch_heatmap(
    phi_history: ArrayLike,
    epochs: ArrayLike,
    band_edges: Optional[ArrayLike] = None,
    *,
    ax: Optional["Axes"] = None,
    title: Optional[str] = None,
    unit: str = "nats",
) -> tuple["Figure", "Axes"]:
    """Shapley value of every band at every evaluated epoch as an image (low frequencies at the bottom).

    The diverging colour map is centred at 0 with symmetric limits ``+-max|phi|``: red bands help the prediction,
    blue bands hurt it. Each column is one evaluation, labelled with its epoch.

    Args:
        phi_history: Shapley values ``[E, M]``, one row per evaluation, lowest band first.
        epochs: epoch of each row ``[E]``.
        band_edges: band edges in cycles per pixel ``[M + 1]``, increasing from 0 to 0.5.
        ax: axes to draw into; a new figure is made when ``None``.
        title: axes title.
        unit: unit of ``phi`` for the colour bar label.

    Returns:
        ``(fig, ax)``; the colour bar has its own axes in ``fig``.

    Raises:
        ValueError: if ``phi_history`` is not 2-D or its shape disagrees with ``epochs`` or ``band_edges``.

    Example:
        >>> fig, ax = plot_band_epoch_heatmap(torch.tensor([[0.5, 0.1], [0.7, -0.2]]), epochs=[0, 1])
        >>> [round(limit, 3) for limit in ax.images[0].get_clim()]
        [-0.7, 0.7]
    """
    history = np.asarray(_to_numpy(phi_history), dtype=np.float64)
    if history.ndim != 2 or history.shape[0] < 1:
        raise ValueError(f"`phi_history` must have shape [epochs, bands], got shape {history.shape}.")
    steps = _vector(epochs, "epochs", history.shape[0])
    edges = _edges(band_edges, history.shape[1])
    new_figure = ax is None
    fig, ax = _figure_and_axes(ax, _HEATMAP_MARGINS)
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    finite = np.abs(history[np.isfinite(history)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    image = ax.imshow(
        history.T, origin="lower", aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit
    )
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True, min_n_ticks=1))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _: f"{steps[int(x)]:g}" if float(x).is_integer() and 0 <= x < steps.size else "")
    )
    ax.set_yticks(np.arange(history.shape[1]), _band_labels(edges), fontsize=8)
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
    ax: Optional["Axes"] = None,
    label: Optional[str] = None,
) -> tuple["Figure", "Axes"]:
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
    steps = _vector(epochs, "epochs")
    fig, ax = _figure_and_axes(ax, {"left": 0.13, "right": 0.97, "bottom": 0.12, "top": 0.92})
    from matplotlib.ticker import MaxNLocator

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
        score = _vector(values, argument, steps.size)
        marker_size = 4 if style == "-" else 3
        (line,) = ax.plot(steps, score, linestyle=style, marker="o", markersize=marker_size, color=color, label=legend)
        color = line.get_color()
        if stderr is not None:
            half = 1.96 * _vector(stderr, f"{argument}_stderr", steps.size)
            ax.fill_between(steps, score - half, score + half, color=color, alpha=0.15, linewidth=0)
    if srs_signed is not None or balance is not None:
        _zero_line(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Score (shaded: 95% interval)" if srs_stderr is not None else "Spectral robustness score (SRS)")
    ax.legend(fontsize=8)
    return fig, ax


def plot_spectral_snr(
    snr_db_by_name: Mapping[str, ArrayLike],
    band_edges: Optional[ArrayLike] = None,
    *,
    ax: Optional["Axes"] = None,
    title: Optional[str] = None,
) -> tuple["Figure", "Axes"]:
    """Per-band signal-to-noise ratio (dB) of one or more perturbations against the band's centre frequency.

    One line per perturbation, in the order given. A band where a perturbation has no energy (``+inf`` dB, see
    :func:`~iaside_lightning.functional.spectral_snr`) is drawn as a hollow triangle pointing up at the top edge of
    the axes, ``-inf`` as one pointing down at the bottom edge; the line skips those bands.

    Args:
        snr_db_by_name: SNR in dB per band ``[M]`` for each perturbation name, lowest band first.
        band_edges: band edges in cycles per pixel ``[M + 1]``, increasing from 0 to 0.5.
        ax: axes to draw into; a new figure is made when ``None``.
        title: axes title.

    Returns:
        ``(fig, ax)``.

    Raises:
        ValueError: if no perturbation is given, or the SNR vectors and ``band_edges`` disagree in length.

    Example:
        >>> fig, ax = plot_spectral_snr({"noise": [30.0, 21.0, 15.0, 12.0], "blur": [float("inf"), 40.0, 8.0, 2.0]})
        >>> [text.get_text() for text in ax.get_legend().get_texts()]
        ['noise', 'blur']
    """
    if not snr_db_by_name:
        raise ValueError("`snr_db_by_name` is empty: pass {perturbation name: SNR per band in dB}.")
    curves = {name: _vector(snr, f"snr_db_by_name[{name!r}]") for name, snr in snr_db_by_name.items()}
    num_bands = next(iter(curves.values())).size
    edges = _edges(band_edges, num_bands)
    centres = (edges[1:] + edges[:-1]) / 2
    fig, ax = _figure_and_axes(ax, _BAND_AXIS_MARGINS)
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
    _zero_line(ax)
    _band_frequency_axis(ax, edges)
    ax.set_ylabel("SNR (dB)")
    ax.legend(fontsize=8)
    if title is not None:
        ax.set_title(title)
    return fig, ax


def plot_attribution_grid(
    images: Tensor,
    attributions: Mapping[str, Tensor],
    masks: Optional[Tensor] = None,
    labels: Optional[Sequence[int]] = None,
    title: Optional[str] = None,
) -> tuple["Figure", np.ndarray]:
    """One row per image: the image, then the magnitude ``sum_c |a|`` of each attribution map.

    Each map is scaled to its own 99th percentile (attribution methods differ in scale; the pattern is what
    matters). Ground-truth masks, when given, are outlined in cyan on every panel.

    Args:
        images: ``[N, C, H, W]`` images (any range; each is min-max scaled for display; 1 or 3 channels).
        attributions: ``{method name: [N, C, H, W] attributions}``, one column each, in order.
        masks: optional ``[N, H, W]`` / ``[N, 1, H, W]`` boolean evidence masks.
        labels: optional class per image, shown at the left of its row.
        title: figure title.

    Returns:
        ``(fig, axes)`` with ``axes`` of shape ``[N, 1 + len(attributions)]``.

    Example:
        >>> fig, axes = plot_attribution_grid(torch.rand(2, 1, 8, 8), {"gradient": torch.randn(2, 1, 8, 8)})
        >>> axes.shape
        (2, 2)
    """
    from iaside_lightning.functional.sanity.localization import pixel_saliency

    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3) or len(images) == 0:
        raise ValueError(f"`images` must be a non-empty [N, 1 or 3, H, W] tensor, got {getattr(images, 'shape', images)!r}.")
    if not attributions or any(a.shape[0] != len(images) or a.shape[-2:] != images.shape[-2:] for a in attributions.values()):
        raise ValueError("`attributions` must map method names to tensors of the images' batch size and height/width.")
    rows, cols = len(images), 1 + len(attributions)
    height, width = images.shape[-2:]
    panel_height = 1.8 if height > width else 1.5 * height / width  # tall images (e.g. BlockMNIST) stay legible
    top, left = 0.7 if title is not None else 0.35, 0.3 if labels is not None else 0.05  # inches for titles, labels
    fig_width, fig_height = panel_height * width / height * cols * 1.04 + left + 0.05, panel_height * rows * 1.04 + top
    fig, _ = _figure_and_axes(None)
    fig.clear()
    fig.set_size_inches(fig_width, fig_height)
    # Fixed margins: a constrained layout doubled the rendering time of this many-panel figure.
    fig.subplots_adjust(left=left / fig_width, right=1 - 0.05 / fig_width, bottom=0.02 / fig_height,
                        top=1 - top / fig_height, wspace=0.04, hspace=0.04)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    shown = _to_numpy(images.float()).transpose(0, 2, 3, 1)
    outlines = None if masks is None else _mask_outlines((masks.any(1) if masks.ndim == 4 else masks).bool().cpu().numpy())
    maps = {name: _to_numpy(pixel_saliency(a.float())) for name, a in attributions.items()}
    for i in range(rows):
        picture = shown[i] - shown[i].min()
        picture = picture / max(picture.max(), 1e-12)
        axes[i, 0].imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray")
        for j, (name, values) in enumerate(maps.items(), start=1):
            axes[i, j].imshow(values[i], cmap="magma", vmin=0, vmax=max(float(np.quantile(values[i], 0.99)), 1e-12))
            if i == 0:
                axes[i, j].set_title(name, fontsize=9)
        for ax in axes[i]:
            if outlines is not None:
                ax.imshow(outlines[i], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        if labels is not None:
            axes[i, 0].set_ylabel(f"class {labels[i]}", fontsize=8)
    axes[0, 0].set_title("input", fontsize=9)
    if title is not None:
        fig.suptitle(title, fontsize=10)
    return fig, axes


def _mask_outlines(masks: np.ndarray) -> np.ndarray:
    """RGBA overlays ``[N, H, W, 4]``: cyan on the mask's boundary pixels (inside, next to outside or the border)."""
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)), constant_values=False)
    interior = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    overlay = np.zeros((*masks.shape, 4))
    overlay[masks & ~interior] = (0.0, 1.0, 1.0, 1.0)
    return overlay


def _band_frequency_axis(ax: "Axes", edges: np.ndarray) -> None:
    """x axis of per-band curves: ticks at band centres labelled with the band, faint lines at the band edges.

    The axis is logarithmic when the widths of the inner bands differ by more than a factor of 4
    (``band_edges="log"``); the first and last band are left out of that test, since the ``"rings"`` rule may leave
    the top band one ring narrower than the others.
    """
    centres = (edges[1:] + edges[:-1]) / 2
    widths = np.diff(edges)
    inner = widths[1:-1] if widths.size > 3 else widths
    if inner.max() > 4 * inner.min():  # e.g. ``band_edges="log"``: equal spacing needs a log axis
        ax.set_xscale("log")
        ax.set_xlim(centres[0] * np.sqrt(centres[0] / centres[1]), edges[-1])
    else:
        ax.set_xlim(edges[0], edges[-1])
    ax.set_xticks(centres, _band_labels(edges), rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_xticks(edges[1:-1], [""] * (edges.size - 2), minor=True)
    ax.grid(True, which="minor", axis="x", color="0.9", linewidth=0.8)
    ax.tick_params(axis="x", which="minor", length=0)
    ax.set_xlabel("Band frequency (cycles/pixel)")


def _figure_and_axes(ax: Optional["Axes"], margins: Optional[Mapping[str, float]] = None) -> tuple["Figure", "Axes"]:
    """The figure owning ``ax`` (its root figure, for axes in a sub-figure), or a new figure with one axes placed
    within ``margins`` (fractions of the figure, as for ``Figure.subplots_adjust``)."""
    if ax is not None:
        return ax.figure.figure, ax  # ``SubFigure.figure`` is the root figure, ``Figure.figure`` itself
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ModuleNotFoundError("Plotting needs matplotlib: install it with `pip install matplotlib`.") from err
    fig = Figure(figsize=_FIGSIZE, dpi=_DPI)
    if margins is not None:
        fig.subplots_adjust(**margins)
    return fig, fig.add_subplot()


def _zero_line(ax: "Axes") -> None:
    """A thin horizontal line at 0, drawn once per axes however many curves are overlaid."""
    if not any(line.get_gid() == _ZERO_LINE for line in ax.get_lines()):
        ax.axhline(0.0, color="0.4", linewidth=0.8, zorder=0, gid=_ZERO_LINE)


def _to_numpy(values: ArrayLike) -> np.ndarray:
    return values.detach().to("cpu", torch.float64).numpy() if isinstance(values, Tensor) else np.asarray(values)


def _vector(values: ArrayLike, name: str, size: Optional[int] = None) -> np.ndarray:
    """``values`` as a 1-D float64 array, optionally of a given length."""
    array = np.asarray(_to_numpy(values), dtype=np.float64)
    if array.ndim != 1 or array.size < 1 or (size is not None and array.size != size):
        expected = "a non-empty 1-D sequence" if size is None else f"a 1-D sequence of length {size}"
        raise ValueError(f"`{name}` must be {expected}, got shape {array.shape}.")
    return array


def _edges(band_edges: Optional[ArrayLike], num_bands: int) -> np.ndarray:
    """Band edges in cycles per pixel, ``[M + 1]``; equal-width bands when ``None``."""
    if band_edges is None:
        return np.linspace(0.0, 0.5, num_bands + 1)
    edges = _vector(band_edges, "band_edges", num_bands + 1)
    if edges[0] < 0 or edges[-1] > 0.5 or not bool(np.all(np.diff(edges) > 0)):
        raise ValueError(
            "`band_edges` must increase strictly within [0, 0.5] cycles per pixel (use "
            f"`SpectralShapleyResult.band_edges`, not the normalised radius), got {edges.tolist()}."
        )
    return edges


def _band_labels(edges: np.ndarray) -> list[str]:
    """``"lo–hi"`` per band with the fewest significant digits (at least 2) that keep all edges distinct."""
    for digits in range(2, 8):
        text = [f"{edge:.{digits}g}" for edge in edges]
        if len(set(text)) == edges.size:
            break
    return [f"{lo}–{hi}" for lo, hi in zip(text[:-1], text[1:])]
