"""How well an attribution map points at a ground-truth region: mass inside, pointing game, top-k outside.

Any attribution method works (input gradients, integrated gradients, BIG, ...): scores are computed on the
per-pixel magnitude ``sum_c |a[c, h, w]|``. :func:`attribution_region_shares` splits the mass over several named
regions and sets each share against its baseline, the share a pixel-shuffled attribution has in expectation
(:func:`shuffle_pixels` draws such shuffles): mass that merely spreads evenly, like diffuse gradient noise, scores
at its baseline, and only an excess over it is a preference for the region.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "LocalizationScores",
    "RegionShares",
    "attribution_localization",
    "attribution_region_shares",
    "pixel_saliency",
    "shuffle_pixels",
]


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


@dataclass
class RegionShares:
    """Per-sample attribution mass on named regions, with the pixel-shuffled baseline (``[N]`` tensors per region).

    Attributes:
        mass: ``{region: share of the attribution magnitude in the region}`` (0 to 1).
        baseline: ``{region: the region's share of the pixels}``: the expected ``mass`` of the same attribution with
            its pixels shuffled within the image (exactly the mean over all shuffles), so uniform noise scores it.
        excess: ``{region: mass - baseline}``: positive where the attribution prefers the region over a shuffle.
        valid: bool; False for samples whose attribution is zero everywhere (all their shares are NaN).
    """

    mass: dict[str, Tensor]
    baseline: dict[str, Tensor]
    excess: dict[str, Tensor]
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


def attribution_region_shares(attributions: Tensor, regions: Mapping[str, Tensor]) -> RegionShares:
    """Share of the attribution magnitude on each of several disjoint regions, against a shuffled baseline.

    A share alone does not say whether an attribution prefers a region: diffuse noise spread evenly over the image
    puts on every region its share of the pixels. The baseline of a region is that area share, which is the
    expected share of the attribution after shuffling its pixels within the image (the mean over all shuffles,
    exactly; :func:`shuffle_pixels` draws single shuffles). The excess ``mass - baseline`` is positive for a region
    the attribution prefers and negative for one it avoids.

    Args:
        attributions: ``[N, C, H, W]`` or ``[N, H, W]`` attributions (signs are ignored, channels summed as in
            :func:`pixel_saliency`).
        regions: ``{name: mask}``, at least one, with bool (or 0/1) masks ``[N, H, W]``, ``[N, 1, H, W]`` or
            ``[N, C, H, W]`` of the attributions' pixel size; the regions must not overlap (they need not cover
            the image).

    Returns:
        :class:`RegionShares`; samples whose attributions are all zero are marked invalid.

    Raises:
        TypeError: for a non-tensor or non-floating ``attributions``.
        ValueError: for an empty or non-mapping ``regions``, masks of another size, non-binary masks, or regions
            that overlap.

    Example:
        >>> attr = torch.zeros(1, 1, 4, 4)
        >>> attr[0, 0, 0] = 1.0  # all mass on the top row
        >>> rows = torch.arange(4)[:, None].expand(4, 4)
        >>> shares = attribution_region_shares(attr, {"top": (rows == 0)[None], "bottom": (rows == 3)[None]})
        >>> shares.mass["top"].tolist(), shares.baseline["top"].tolist(), shares.excess["bottom"].tolist()
        ([1.0], [0.25], [-0.25])
    """
    saliency = pixel_saliency(attributions).to(torch.float64)
    if not isinstance(regions, Mapping) or not regions or not all(isinstance(name, str) for name in regions):
        raise ValueError(f"`regions` must be a non-empty mapping {{name: mask}} with string names, got {regions!r:.80}.")
    pixels = {name: _pixel_mask(mask, saliency.shape).to(saliency.device).flatten(1) for name, mask in regions.items()}
    covered = torch.stack(list(pixels.values())).sum(0)
    if bool((covered > 1).any()):
        raise ValueError(f"`regions` {sorted(pixels)} overlap: every pixel may belong to at most one region.")
    flat = saliency.flatten(1)
    total = flat.sum(1)
    valid = total > 0
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=flat.device)
    mass = {name: torch.where(valid, (flat * inside).sum(1) / total, nan) for name, inside in pixels.items()}
    baseline = {name: torch.where(valid, inside.to(torch.float64).mean(1), nan) for name, inside in pixels.items()}
    excess = {name: mass[name] - baseline[name] for name in pixels}
    return RegionShares(mass=mass, baseline=baseline, excess=excess, valid=valid)


def shuffle_pixels(attributions: Tensor, *, seed: int = 0) -> Tensor:
    """The attributions with their pixel positions permuted within each image (all channels of a pixel together).

    A seeded draw from the null model of :func:`attribution_region_shares`' baseline: the same values, no spatial
    structure. Each image gets its own permutation.

    Args:
        attributions: ``[N, C, H, W]`` or ``[N, H, W]`` floating-point attributions.
        seed: seed of the permutations (the caller's random state is not touched).

    Returns:
        A tensor like ``attributions``.

    Raises:
        TypeError: for a non-tensor or non-floating ``attributions``.
        ValueError: for a non-integer ``seed``.

    Example:
        >>> attr = torch.arange(8.0).reshape(2, 1, 2, 2)
        >>> shuffled = shuffle_pixels(attr, seed=1)
        >>> shuffled.shape, shuffled.sum((1, 2, 3)).tolist(), bool((shuffled == attr).all())
        (torch.Size([2, 1, 2, 2]), [6.0, 22.0], False)
    """
    pixel_saliency(attributions)  # validates the shape and dtype
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` must be an integer, got {seed!r}.")
    generator = torch.Generator().manual_seed(seed)
    images = attributions if attributions.ndim == 4 else attributions[:, None]
    n, channels, height, width = images.shape
    order = torch.rand(n, height * width, generator=generator).argsort(1).to(images.device)
    flat = images.flatten(2)
    shuffled = flat.gather(2, order[:, None, :].expand(n, channels, height * width)).reshape(images.shape)
    return shuffled if attributions.ndim == 4 else shuffled[:, 0]


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
