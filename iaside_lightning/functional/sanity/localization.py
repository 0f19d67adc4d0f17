"""How well an attribution map points at a ground-truth region: mass inside, pointing game, top-k outside.

Any attribution method works (input gradients, integrated gradients, BIG, ...): scores are computed on the
per-pixel magnitude ``sum_c |a[c, h, w]|``.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["LocalizationScores", "attribution_localization", "pixel_saliency"]


@dataclass
class LocalizationScores:
    """Per-sample localization of attributions against a mask (``[N]`` tensors).

    Attributes:
        mass_inside: share of the attribution magnitude inside the mask (0 to 1).
        pointing_game: 1.0 where the most attributed pixel lies inside the mask, else 0.0.
        top_k_outside: share of the ``top_k`` most attributed pixels that lie outside the mask.
        valid: bool; False for samples whose attribution is zero everywhere (their scores are NaN).
    """

    mass_inside: Tensor
    pointing_game: Tensor
    top_k_outside: Tensor
    valid: Tensor


def pixel_saliency(attributions: Tensor) -> Tensor:
    """Per-pixel attribution magnitude ``sum_c |a|``: ``[N, C, H, W]`` (or ``[N, H, W]``) to ``[N, H, W]``.

    Example:
        >>> pixel_saliency(torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.0]]]])).tolist()
        [[[4.0, 2.0]]]
    """
    if not isinstance(attributions, Tensor) or attributions.ndim not in (3, 4) or not attributions.is_floating_point():
        got = tuple(attributions.shape) if isinstance(attributions, Tensor) else type(attributions).__name__
        raise TypeError(f"`attributions` must be a floating tensor [N, C, H, W] or [N, H, W], got {got}.")
    return attributions.abs().sum(1) if attributions.ndim == 4 else attributions.abs()


def attribution_localization(attributions: Tensor, masks: Tensor, *, top_k: float = 0.1) -> LocalizationScores:
    """Score attribution maps against ground-truth masks of where the label's evidence is.

    Args:
        attributions: ``[N, C, H, W]`` or ``[N, H, W]`` attributions (signs are ignored).
        masks: bool (or 0/1) ``[N, H, W]``, ``[N, 1, H, W]`` or ``[N, C, H, W]`` (a pixel is inside when any of its
            channels is).
        top_k: fraction of pixels, in ``(0, 1]``, counted by ``top_k_outside`` (at least one pixel).

    Returns:
        :class:`LocalizationScores`; samples whose attributions are all zero are marked invalid and get NaN scores.

    Raises:
        TypeError: for a non-tensor or non-floating ``attributions``.
        ValueError: for masks of another size, non-binary masks or ``top_k`` out of range.

    Example:
        >>> attr = torch.zeros(1, 1, 4, 4)
        >>> attr[0, 0, 0, 0], attr[0, 0, 3, 3] = 3.0, -1.0
        >>> mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
        >>> mask[0, 0, :2] = True  # the top half holds the evidence
        >>> scores = attribution_localization(attr, mask, top_k=2 / 16)
        >>> scores.mass_inside.tolist(), scores.pointing_game.tolist(), scores.top_k_outside.tolist()
        ([0.75], [1.0], [0.5])
    """
    saliency = pixel_saliency(attributions).to(torch.float64)
    inside = _pixel_mask(masks, saliency.shape)
    if isinstance(top_k, bool) or not isinstance(top_k, (int, float)) or not 0 < top_k <= 1:
        raise ValueError(f"`top_k` must be a fraction of pixels in (0, 1], got {top_k!r}.")
    flat, inside = saliency.flatten(1), inside.flatten(1).to(saliency.device)
    total = flat.sum(1)
    valid = total > 0
    mass_inside = (flat * inside).sum(1) / total
    pointing = inside.gather(1, flat.argmax(1, keepdim=True))[:, 0].to(torch.float64)
    count = max(1, round(top_k * flat.shape[1]))
    top = flat.topk(count, dim=1).indices
    top_k_outside = (~inside.gather(1, top)).to(torch.float64).mean(1)
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=flat.device)
    return LocalizationScores(
        mass_inside=torch.where(valid, mass_inside, nan),
        pointing_game=torch.where(valid, pointing, nan),
        top_k_outside=torch.where(valid, top_k_outside, nan),
        valid=valid,
    )


def _pixel_mask(masks: Tensor, shape: torch.Size) -> Tensor:
    """``[N, H, W]`` bool pixel mask from ``[N, H, W]``, ``[N, 1, H, W]`` or ``[N, C, H, W]`` masks."""
    if not isinstance(masks, Tensor) or masks.ndim not in (3, 4):
        raise ValueError(f"`masks` must be a tensor [N, H, W] or [N, C, H, W], got {masks!r:.60}.")
    if not (masks.dtype == torch.bool or bool(((masks == 0) | (masks == 1)).all())):
        raise ValueError("`masks` must be boolean (or 0/1): True where the label's evidence is.")
    pixels = masks.bool().any(1) if masks.ndim == 4 else masks.bool()
    if pixels.shape != shape:
        raise ValueError(f"`masks` cover {tuple(pixels.shape)} pixels but the attributions {tuple(shape)}; pass masks of the images' size.")
    return pixels
