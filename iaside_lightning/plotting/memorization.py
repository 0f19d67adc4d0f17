"""Figures of the memorisation audit: the score distribution and thumbnails of the top suspects."""

from typing import Optional

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from iaside_lightning.plotting.common import figure_and_axes, to_numpy, vector

__all__ = ["plot_memorization_scores", "plot_suspects"]


def plot_memorization_scores(
    scores: Tensor, noisy: Optional[Tensor] = None, ax: Optional[Axes] = None, title: str = "Memorisation scores"
) -> tuple[Figure, Axes]:
    """Histogram of the scores of a probe; split into clean and noisy labels when ``noisy`` (0/1 per sample) is known.

    Example:
        >>> import torch
        >>> fig, ax = plot_memorization_scores(torch.tensor([0.1, 0.2, 2.0]), torch.tensor([False, False, True]))
        >>> [t.get_text() for t in ax.get_legend().get_texts()]
        ['clean labels (2)', 'noisy labels (1)']
    """
    values = vector(scores, "scores")
    fig, ax = figure_and_axes(ax)
    bins = np.histogram_bin_edges(values, bins=min(40, max(5, values.size // 10)))
    if noisy is None:
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.8, label=f"all ({values.size})")
    else:
        flags = to_numpy(noisy).astype(bool)
        if flags.shape != values.shape:
            raise ValueError(f"`noisy` must hold one flag per score ({values.size}), got shape {flags.shape}.")
        ax.hist(values[~flags], bins=bins, color="tab:blue", alpha=0.6, label=f"clean labels ({(~flags).sum()})")
        ax.hist(values[flags], bins=bins, color="tab:red", alpha=0.6, label=f"noisy labels ({flags.sum()})")
    ax.set_xlabel("memorisation score (mean low-pass loss, nats)")
    ax.set_ylabel("training samples")
    ax.set_title(title)
    ax.legend()
    return fig, ax


def plot_suspects(
    images: Tensor,
    labels: Tensor,
    scores: Tensor,
    noisy: Optional[Tensor] = None,
    columns: int = 8,
    title: str = "Top suspects",
) -> tuple[Figure, np.ndarray]:
    """Thumbnails of suspects (most suspect first) with their label and score; known noisy labels in red.

    Args:
        images: ``[N, C, H, W]`` images in any range (each thumbnail is scaled to its own min-max).
        labels: ``[N]`` labels the model was trained with.
        scores: ``[N]`` memorisation scores.
        noisy: optional ``[N]`` flags of labels known to be wrong (synthetic noise).
        columns: thumbnails per row.
        title: figure title.

    Example:
        >>> import torch
        >>> fig, axes = plot_suspects(torch.rand(3, 1, 8, 8), torch.tensor([1, 2, 3]), torch.tensor([3.0, 2.0, 1.0]))
        >>> axes.shape, axes[0, 0].get_title()
        ((1, 8), 'y=1, s=3.00')
    """
    count = images.shape[0]
    values = vector(scores, "scores", size=count)
    if labels.shape != (count,):
        raise ValueError(f"`labels` must have shape [{count}] like the images, got {tuple(labels.shape)}.")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"`columns` must be a positive integer, got {columns!r}.")
    flags = np.zeros(count, dtype=bool) if noisy is None else to_numpy(noisy).astype(bool)
    rows = max(1, -(-count // columns))
    fig = Figure(figsize=(1.3 * columns, 1.5 * rows + 0.4), dpi=100)
    axes = np.asarray(fig.subplots(rows, columns, squeeze=False))
    pixels = to_numpy(images)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= count:
            continue
        image = pixels[i].transpose(1, 2, 0)
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-12)
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(f"y={int(labels[i])}, s={values[i]:.2f}", fontsize=8, color="tab:red" if flags[i] else "black")
    suffix = " (red: label known to be noisy)" if noisy is not None else ""
    fig.suptitle(title + suffix, fontsize=9)
    fig.tight_layout()
    return fig, axes
