"""Tests of the figures: data drawn, axes, tick labels, colour limits, overlays, readability and no pyplot leaks."""

import itertools
import re

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from iaside_lightning.functional import band_edges
from iaside_lightning.plotting import plot_band_epoch_heatmap, plot_frequency_response, plot_srs_curve


def _linear_edges(num_bands: int) -> np.ndarray:
    """Independent reference: equal-width bands from 0 to 0.5 cycles per pixel."""
    return np.array([k / (2 * num_bands) for k in range(num_bands + 1)])


def _parse_band_label(text: str) -> tuple[float, float]:
    low, high = re.fullmatch(r"([0-9.e+-]+)–([0-9.e+-]+)", text).groups()
    return float(low), float(high)


def _renderer(fig: Figure):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _data_lines(ax: Axes) -> list:
    return [line for line in ax.get_lines() if line.get_gid() is None and len(line.get_xdata()) > 0]


@pytest.mark.parametrize("num_bands", [8, 16])
def test_frequency_response_draws_phi_with_95_percent_bars_at_band_centres(num_bands: int) -> None:
    generator = torch.Generator().manual_seed(num_bands)
    phi = torch.randn(num_bands, generator=generator, dtype=torch.float64)
    stderr = torch.rand(num_bands, generator=generator, dtype=torch.float64) / 10
    fig, ax = plot_frequency_response(phi, stderr, band_edges(num_bands, "linear") * 0.5, title="response")

    assert isinstance(fig, Figure) and isinstance(ax, Axes) and ax.figure is fig
    assert tuple(fig.get_size_inches() * fig.dpi) == (600, 400)
    (container,) = ax.containers
    assert isinstance(container, ErrorbarContainer) and container.has_yerr
    edges = _linear_edges(num_bands)
    centres = (edges[1:] + edges[:-1]) / 2
    np.testing.assert_allclose(container.lines[0].get_xdata(), centres)
    np.testing.assert_allclose(container.lines[0].get_ydata(), phi.numpy())
    segments = np.array(container.lines[2][0].get_segments())  # one vertical segment per band
    np.testing.assert_allclose(segments[:, 0, 1], (phi - 1.96 * stderr).numpy())
    np.testing.assert_allclose(segments[:, 1, 1], (phi + 1.96 * stderr).numpy())
    assert "cycles/pixel" in ax.get_xlabel() and "Shapley value" in ax.get_ylabel() and "(nats)" in ax.get_ylabel()
    assert ax.get_title() == "response" and ax.get_xscale() == "linear"
    assert ax.get_legend() is None

    labels = [_parse_band_label(text.get_text()) for text in ax.get_xticklabels()]
    np.testing.assert_allclose(ax.get_xticks(), centres)
    np.testing.assert_allclose([low for low, _ in labels], edges[:-1], rtol=0.05)
    np.testing.assert_allclose([high for _, high in labels], edges[1:], rtol=0.05)
    zero_lines = [line for line in ax.get_lines() if tuple(line.get_ydata()) == (0, 0)]
    assert len(zero_lines) == 1


@pytest.mark.parametrize("num_bands", [8, 16])
def test_frequency_response_tick_labels_do_not_overlap_or_leave_the_figure(num_bands: int) -> None:
    fig, ax = plot_frequency_response(torch.linspace(1, 0, num_bands), torch.full((num_bands,), 0.05), label="x")
    renderer = _renderer(fig)
    labels = ax.get_xticklabels()
    anchors = ax.transData.transform(np.stack([ax.get_xticks(), np.zeros(num_bands)], axis=1))[:, 0]
    (angle,) = {label.get_rotation() for label in labels}
    line_height = max(
        renderer.get_text_width_height_descent(label.get_text(), label.get_fontproperties(), ismath=False)[1]
        for label in labels
    )
    # parallel rotated lines of text: their perpendicular distance must exceed one line height
    assert np.diff(anchors).min() * np.sin(np.radians(angle)) > line_height
    drawn = ax.get_tightbbox(renderer)  # everything drawn for the axes: tick labels, axis labels, legend
    assert fig.bbox.x0 <= drawn.x0 and drawn.x1 <= fig.bbox.x1 and fig.bbox.y0 <= drawn.y0 and drawn.y1 <= fig.bbox.y1
    assert min(label.get_window_extent(renderer).y0 for label in labels) > ax.xaxis.label.get_window_extent(renderer).y1


def test_frequency_response_overlays_curves_with_one_zero_line_and_a_legend() -> None:
    fig, ax = plot_frequency_response([0.5, 0.2, 0.1, 0.0], [0.01] * 4, label="epoch 0")
    fig2, ax2 = plot_frequency_response([0.9, 0.3, 0.0, -0.1], None, ax=ax, label="epoch 5")

    assert fig2 is fig and ax2 is ax
    assert len(ax.containers) == 2 and ax.containers[0].has_yerr and not ax.containers[1].has_yerr
    assert len([line for line in ax.get_lines() if tuple(line.get_ydata()) == (0, 0)]) == 1
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["epoch 0", "epoch 5"]
    colours = {tuple(matplotlib.colors.to_rgba(c.lines[0].get_color())) for c in ax.containers}
    assert len(colours) == 2


def test_frequency_response_nan_stderr_draws_no_bar_for_that_band() -> None:
    _, ax = plot_frequency_response([0.5, 0.2, 0.1], [0.1, float("nan"), 0.2])
    segments = ax.containers[0].lines[2][0].get_segments()
    assert [len(segment) for segment in segments] == [2, 0, 2]


def test_frequency_response_uses_a_log_axis_for_log_edges_with_distinct_labels() -> None:
    edges = band_edges(16, "log") * 0.5
    _, ax = plot_frequency_response(torch.zeros(16), band_frequencies=edges)
    assert ax.get_xscale() == "log"
    labels = [_parse_band_label(text.get_text()) for text in ax.get_xticklabels()]
    assert len(set(labels)) == 16
    np.testing.assert_allclose([high for _, high in labels], edges[1:].numpy(), rtol=0.05)
    low, high = ax.get_xlim()
    assert 0 < low < ax.get_xticks()[0] and high == 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"phi": torch.zeros(2, 3)}, "`phi`"),
        ({"phi": torch.zeros(4), "stderr": torch.zeros(3)}, "`stderr`.*length 4"),
        ({"phi": torch.zeros(4), "band_frequencies": band_edges(4, "linear")}, "cycles per pixel"),
        ({"phi": torch.zeros(4), "band_frequencies": [0.0, 0.2, 0.1, 0.4, 0.5]}, "increase strictly"),
        ({"phi": torch.zeros(2), "band_frequencies": [0.0, 0.2, 0.5], "band_edges": [0.0, 0.2, 0.5]}, "alone"),
    ],
)
def test_frequency_response_rejects_bad_shapes_and_edges(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plot_frequency_response(**kwargs)


@pytest.mark.parametrize("num_bands", [8, 16])
def test_heatmap_shows_history_with_low_bands_at_the_bottom_and_symmetric_limits(num_bands: int) -> None:
    generator = torch.Generator().manual_seed(0)
    history = torch.randn(5, num_bands, generator=generator, dtype=torch.float64)
    epochs = [0, 2, 4, 6, 8]
    fig, ax = plot_band_epoch_heatmap(history, epochs, band_edges(num_bands, "linear") * 0.5, title="bands")

    assert isinstance(fig, Figure) and ax.figure is fig
    (image,) = ax.images
    np.testing.assert_array_equal(np.asarray(image.get_array()), history.numpy().T)
    assert image.origin == "lower"  # row 0 (band 0, the lowest frequencies) is drawn at the bottom
    limit = history.abs().max().item()
    assert image.get_clim() == pytest.approx((-limit, limit))
    assert image.norm(0.0) == pytest.approx(0.5)
    red, green, blue, _ = image.cmap(0.5)
    assert min(red, green, blue) > 0.9  # a diverging map: white at zero
    assert image.cmap(0.0)[2] > image.cmap(0.0)[0] and image.cmap(1.0)[0] > image.cmap(1.0)[2]

    renderer = _renderer(fig)
    edges = _linear_edges(num_bands)
    labels = [_parse_band_label(text.get_text()) for text in ax.get_yticklabels()]
    np.testing.assert_allclose(ax.get_yticks(), np.arange(num_bands))
    np.testing.assert_allclose([low for low, _ in labels], edges[:-1], rtol=0.05)
    boxes = [text.get_window_extent(renderer) for text in ax.get_yticklabels()]
    assert all(lower.y1 <= upper.y0 for lower, upper in itertools.pairwise(boxes))
    shown = {int(tick): text.get_text() for tick, text in zip(ax.get_xticks(), ax.get_xticklabels()) if text.get_text()}
    assert shown and all(text == str(epochs[tick]) for tick, text in shown.items())
    assert ax.get_xlabel() == "Epoch" and "cycles/pixel" in ax.get_ylabel() and ax.get_title() == "bands"
    (colorbar_axes,) = [axes for axes in fig.axes if axes is not ax]
    assert "nats" in colorbar_axes.get_ylabel()


def test_heatmap_of_a_constant_zero_history_has_finite_limits() -> None:
    _, ax = plot_band_epoch_heatmap(np.zeros((1, 4)), [3])
    low, high = ax.images[0].get_clim()
    assert np.isfinite([low, high]).all() and low == -high and high > 0


@pytest.mark.parametrize(
    ("history", "epochs", "match"),
    [(torch.zeros(4), [0], "`phi_history`"), (torch.zeros(3, 4), [0, 1], "`epochs`.*length 3")],
)
def test_heatmap_rejects_bad_shapes(history: torch.Tensor, epochs: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plot_band_epoch_heatmap(history, epochs)


def test_srs_curve_draws_signed_score_dashed_in_the_same_colour() -> None:
    epochs = np.arange(6)
    srs = np.array([0.1, 0.05, 0.0, 0.1, 0.2, 0.3])
    signed = np.array([-0.1, -0.05, 0.0, 0.1, 0.2, 0.3])
    fig, ax = plot_srs_curve(epochs, torch.from_numpy(srs), signed, label="clean")
    plot_srs_curve(epochs, srs / 2, ax=ax, label="noisy")

    assert isinstance(fig, Figure)
    clean, clean_signed, noisy = _data_lines(ax)
    np.testing.assert_allclose(clean.get_ydata(), srs)
    np.testing.assert_allclose(clean_signed.get_ydata(), signed)
    np.testing.assert_allclose(noisy.get_xdata(), epochs)
    assert clean.get_linestyle() == "-" and clean_signed.get_linestyle() == "--"
    assert clean.get_color() == clean_signed.get_color() != noisy.get_color()
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["clean", "clean (signed)", "noisy"]
    assert ax.get_xlabel() == "Epoch" and "robustness" in ax.get_ylabel()
    assert len([line for line in ax.get_lines() if line.get_gid() is not None]) == 1


def test_srs_curve_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="`srs_signed`"):
        plot_srs_curve([0, 1], [0.1, 0.2], [0.1])


def test_plots_draw_into_sub_figures_and_never_touch_pyplot() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    root = Figure()
    left, right = root.subfigures(1, 2)
    fig, _ = plot_band_epoch_heatmap(torch.ones(2, 3), [0, 1], ax=left.add_subplot())
    fig2, _ = plot_srs_curve([0, 1], [0.1, 0.2], ax=right.add_subplot())
    plot_frequency_response(torch.ones(3))
    assert fig is root and fig2 is root
    assert plt.get_fignums() == before


def test_the_old_band_edges_argument_warns_and_still_draws() -> None:
    with pytest.warns(DeprecationWarning, match="now `band_frequencies`") as records:
        _, ax = plot_frequency_response(torch.zeros(2), band_edges=[0.0, 0.1, 0.5])
    assert records[0].filename == __file__
    assert ax.get_xticklabels()[0].get_text() == "0–0.1"
