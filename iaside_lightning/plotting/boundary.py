"""Attribution maps of the boundary sub-system's monitor (input gradient, IG, BIG, ...) side by side, per image,
with the ground-truth evidence outlined."""

from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from iaside_lightning.functional.sanity.localization import pixel_saliency
from iaside_lightning.plotting.common import figure_and_axes, to_numpy

__all__ = ["plot_attribution_grid"]


def plot_attribution_grid(
    images: Tensor,
    attributions: Mapping[str, Tensor],
    masks: Optional[Tensor] = None,
    labels: Optional[Sequence[int]] = None,
    title: Optional[str] = None,
) -> tuple[Figure, np.ndarray]:
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
        >>> import torch
        >>> fig, axes = plot_attribution_grid(torch.rand(2, 1, 8, 8), {"gradient": torch.randn(2, 1, 8, 8)})
        >>> axes.shape
        (2, 2)
    """
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3) or len(images) == 0:
        raise ValueError(f"`images` must be a non-empty [N, 1 or 3, H, W] tensor, got {getattr(images, 'shape', images)!r}.")
    if not attributions or any(a.shape[0] != len(images) or a.shape[-2:] != images.shape[-2:] for a in attributions.values()):
        raise ValueError("`attributions` must map method names to tensors of the images' batch size and height/width.")
    rows, cols = len(images), 1 + len(attributions)
    height, width = images.shape[-2:]
    panel_height = 1.8 if height > width else 1.5 * height / width  # tall images (e.g. BlockMNIST) stay legible
    top, left = 0.7 if title is not None else 0.35, 0.3 if labels is not None else 0.05  # inches for titles, labels
    fig_width, fig_height = panel_height * width / height * cols * 1.04 + left + 0.05, panel_height * rows * 1.04 + top
    fig, _ = figure_and_axes(None)
    fig.clear()
    fig.set_size_inches(fig_width, fig_height)
    # Fixed margins: a constrained layout doubled the rendering time of this many-panel figure.
    fig.subplots_adjust(left=left / fig_width, right=1 - 0.05 / fig_width, bottom=0.02 / fig_height,
                        top=1 - top / fig_height, wspace=0.04, hspace=0.04)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    shown = to_numpy(images.float()).transpose(0, 2, 3, 1)
    outlines = None if masks is None else _mask_outlines((masks.any(1) if masks.ndim == 4 else masks).bool().cpu().numpy())
    maps = {name: to_numpy(pixel_saliency(a.float())) for name, a in attributions.items()}
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
