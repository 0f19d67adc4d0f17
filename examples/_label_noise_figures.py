"""Figures of the label-noise study, drawn from its summary (see ``_label_noise_report.py``).

Not an example itself. Each figure shows, per fill, the ring-edged analysis with the most bands (M = 8 in the full
study, M = 6 in ``--quick`` mode). Drawn with the object-oriented Matplotlib API (no ``pyplot``).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from iaside_lightning.plotting import plot_band_epoch_heatmap

__all__ = ["write_figures"]

DPI = 110
SCORE_LABELS = {"srs": "SRS", "srs_signed": "signed SRS", "balance": "spectral balance"}
#: The range each score can take (the shaded intervals are clipped to it).
SCORE_RANGES = {"srs": (0.0, 1.0), "srs_signed": (-1.0, 1.0), "balance": (-1.0, 1.0)}


def write_figures(summary: dict[str, Any], figures_dir: Path) -> list[Path]:
    """Write ``label_noise_scores.png``, ``label_noise_heatmaps.png`` and ``label_noise_frequency_response.png``.

    Args:
        summary: the study's summary, as written to ``summary.json``.
        figures_dir: directory of the PNG files (made if missing).

    Returns:
        The paths written.
    """
    figures_dir.mkdir(parents=True, exist_ok=True)
    names = _analyses(summary)
    colors = _rate_colors(summary["rates"])
    figures = {
        "label_noise_scores.png": _scores_figure(summary, names, colors),
        "label_noise_heatmaps.png": _heatmaps_figure(summary, names),
        "label_noise_frequency_response.png": _response_figure(summary, names, colors),
    }
    for file_name, fig in figures.items():
        fig.savefig(figures_dir / file_name, dpi=DPI)
    return [figures_dir / file_name for file_name in figures]


def _analyses(summary: dict[str, Any]) -> dict[str, str]:
    """``{fill: name}`` of the ring-edged analysis with the most bands, per fill."""
    chosen: dict[str, str] = {}
    for name in summary["phases"]:
        bands, fill, edges = name.split("_")
        if edges == "rings" and (fill not in chosen or int(bands[1:]) > int(chosen[fill].split("_")[0][1:])):
            chosen[fill] = name
    return chosen


def _rate_colors(rates: Sequence[str]) -> dict[str, tuple[float, ...]]:
    palette = colormaps["plasma"]
    return {rate: palette(0.8 * i / max(len(rates) - 1, 1)) for i, rate in enumerate(rates)}


def _column(entries: Sequence[dict[str, Any]], *keys: str) -> np.ndarray:
    """``entry[keys[0]][keys[1]]...`` of every entry, ``None`` as NaN."""
    values = []
    for entry in entries:
        for key in keys:
            entry = entry[key]
        values.append(entry)
    return np.array(values, dtype=np.float64)


def _epoch_axis(ax: Axes, snapshot_epochs: Sequence[int], last_epoch: int, label: bool) -> None:
    """Log-scaled epoch axis with ticks at the snapshot epochs (thinned where they would crowd)."""
    ticks: list[int] = []
    for epoch in sorted({*snapshot_epochs, last_epoch}):
        if epoch <= last_epoch and (not ticks or np.log10(epoch / ticks[-1]) > 0.15):
            ticks.append(epoch)
    ax.set_xscale("log")
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    if label:
        ax.set_xlabel("epoch (log scale)")


def _legend_handles(colors: dict[str, Any], styles: dict[str, str]) -> tuple[list[Line2D], list[str]]:
    handles = [Line2D([], [], color=c, linewidth=2) for c in colors.values()]
    handles += [Line2D([], [], color="0.3", linestyle=style) for style in styles.values()]
    return handles, [f"noise rate {rate}" for rate in colors] + list(styles)


def _scores_figure(summary: dict[str, Any], names: dict[str, str], colors: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(15, 3.2 * len(names) + 1.2), layout="constrained")
    axes = fig.subplots(len(names), 4, sharex=True, squeeze=False)
    last_epoch = max(max(t["epochs"]) for t in summary["training"].values())
    for row, (fill, name) in enumerate(names.items()):
        for col, key in enumerate(SCORE_LABELS):
            ax = axes[row, col]
            for rate, color in colors.items():
                entries = summary["across_seeds"][rate][name]
                epochs, mean = _column(entries, "epoch"), _column(entries, key, "mean")
                half = _column(entries, key, "ci95")
                ax.plot(epochs, mean, marker="o", markersize=3, color=color)
                low, high = np.clip(mean - half, *SCORE_RANGES[key]), np.clip(mean + half, *SCORE_RANGES[key])
                ax.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
                if float(rate) > 0:  # the memorised snapshot, at each run's own stop epoch
                    _memorised_point(ax, summary["phases"][name][rate], key, epochs[-1], mean[-1], color)
            if key != "srs":
                ax.axhline(0.0, color="0.5", linewidth=0.8, zorder=0)
            ax.set_title(f"{SCORE_LABELS[key]}, {fill} fill ({name})", fontsize=10)
            ax.set_ylabel(f"{SCORE_LABELS[key]} (dimensionless)")
        _training_panel(axes[row, 3], summary["training"], colors)
    for (row, _), ax in np.ndenumerate(axes):
        _epoch_axis(ax, summary["setup"]["snapshot_epochs"], last_epoch, label=row == len(axes) - 1)
    styles = {"flipped labels fitted": "-", "validation accuracy": "--"}
    handles, labels = _legend_handles(colors, styles)
    handles.append(Line2D([], [], color="0.3", marker="s", markerfacecolor="white", linestyle=":"))
    labels.append("memorised (>= 99% flipped fitted; mean stop epoch)")
    fig.legend(handles, labels, loc="outside lower center", ncols=len(colors) + 3, fontsize=9)
    fig.suptitle(
        "I-ASIDE scores while memorising noisy labels: seed mean at the snapshot epochs every seed reached, "
        "shaded 95% t-interval across seeds"
    )
    return fig


def _memorised_point(ax: Axes, phase: dict[str, Any], key: str, epoch: float, value: float, color: Any) -> None:
    """The seed-mean score at each run's last snapshot (hollow square, 95% bar) at the runs' mean stop epoch,
    joined by a dotted line to the last common snapshot."""
    stop, last = float(np.mean(phase["last_epochs"])), phase["last"][key]
    if stop <= epoch:
        return
    ax.plot([epoch, stop], [value, last["mean"]], linestyle=":", color=color)
    ax.errorbar(
        stop, last["mean"], yerr=last["ci95"], marker="s", markersize=5, markerfacecolor="white", color=color,
        capsize=3,
    )


def _training_panel(ax: Axes, training: dict[str, Any], colors: dict[str, Any]) -> None:
    """Seed-mean fraction of flipped labels fitted (solid; noisy rates only) and validation accuracy (dashed), at
    every epoch all seeds of a rate trained."""
    for rate, color in colors.items():
        curve = training[rate]
        if float(rate) > 0:
            ax.plot(curve["epochs"], curve["memorised"], color=color)
        ax.plot(curve["epochs"], curve["val_acc"], color=color, linestyle="--")
    ax.set_ylim(0.0, 1.02)
    ax.set_title("training (seed mean)", fontsize=10)
    ax.set_ylabel("fraction")


def _heatmaps_figure(summary: dict[str, Any], names: dict[str, str]) -> Figure:
    rates = summary["rates"]
    fig = Figure(figsize=(max(3.6 * len(rates) + 1.5, 9.0), 3.6 * len(names) + 0.6), layout="constrained")
    axes = fig.subplots(len(names), len(rates), squeeze=False)
    for row, (fill, name) in enumerate(names.items()):
        edges = summary["bands"][name]["edges_cycles_per_pixel"]
        images = []
        for col, rate in enumerate(rates):
            entries = summary["across_seeds"][rate][name]
            phi = np.stack([_column(e["phi"], "mean") for e in entries])
            ax = axes[row, col]
            plot_band_epoch_heatmap(phi, _column(entries, "epoch"), edges, ax=ax, title=f"noise {rate}, {fill} fill")
            images.append(ax.images[0])
            images[-1].colorbar.remove()  # one shared colour bar per row instead
            if col:
                ax.set_ylabel("")
        limit = max(abs(float(v)) for image in images for v in image.get_clim())
        for image in images:
            image.set_clim(-limit, limit)
        fig.colorbar(images[0], ax=axes[row, :], label=f"seed-mean $\\phi$ (nats), {name}")
    fig.suptitle("Shapley value of each band at each snapshot epoch (seed mean; red helps, blue hurts)")
    return fig


def _response_figure(summary: dict[str, Any], names: dict[str, str], colors: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(6.5 * len(names), 5.0), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    styles = {"early (best validation accuracy)": "-", "last (flipped labels fitted; clean: end of training)": "--"}
    for ax, (fill, name) in zip(axes, names.items()):
        edges = np.asarray(summary["bands"][name]["edges_cycles_per_pixel"])
        centres, width = (edges[1:] + edges[:-1]) / 2, float(np.median(np.diff(edges)))
        for i, (rate, color) in enumerate(colors.items()):
            for j, (phase, style) in enumerate(zip(("early", "last"), styles.values())):
                estimates = summary["phases"][name][rate][phase]["phi"]
                shift = width * 0.3 * ((2 * i + j) / (2 * len(colors) - 1) - 0.5)  # keep the bars apart
                ax.errorbar(
                    centres + shift, _column(estimates, "mean"), yerr=np.nan_to_num(_column(estimates, "ci95")),
                    color=color, linestyle=style, marker="o", markersize=3, capsize=2, linewidth=1.3,
                )
        ax.axhline(0.0, color="0.5", linewidth=0.8, zorder=0)
        labels = [f"{lo:.3g}–{hi:.3g}" for lo, hi in zip(edges[:-1], edges[1:])]
        ax.set_xticks(centres, labels, rotation=40, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_xlabel("band (cycles/pixel)")
        ax.set_ylabel("Shapley value $\\phi$ (nats)")
        ax.set_title(f"{fill} fill ({name})", fontsize=10)
    fig.legend(*_legend_handles(colors, styles), loc="outside lower center", ncols=len(colors) + 2, fontsize=9)
    fig.suptitle("Shapley value per band before and after memorisation (seed mean, bars: 95% t-interval across seeds)")
    return fig
