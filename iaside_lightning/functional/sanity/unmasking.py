"""Unmasking by attribution rank (ROAR/DiffROAR): keep the top or bottom fraction of each image, fill the rest.

An attribution scheme ranks the ``d`` coordinates of every image by ``|attribution|``. Unmasking at level ``k`` keeps
the ``round(k * d)`` highest-ranked (``keep="top"``) or lowest-ranked (``keep="bottom"``) coordinates and replaces
the others by a constant (Shah, Jain & Netrapalli, NeurIPS 2021). ``per="coordinate"`` ranks all ``C * H * W``
values, as the paper does; ``per="pixel"`` ranks pixels by ``sum_c |attribution|`` and keeps or fills whole pixels.

Ties are broken deterministically: the top order is by decreasing score, then increasing flat index; the bottom
order is exactly its reverse. Hence ``keep="bottom"`` at level ``1 - k`` keeps the complement of ``keep="top"`` at
level ``k`` whenever ``k * d`` is not a half-integer (``round`` rounds halves to even).

DiffROAR's ``fill`` (:data:`MaskFill`) may also be ``"mean"``, the per-channel mean of the images it is resolved
against (:func:`mask_fill_value`).
"""

from collections.abc import Sequence
from typing import Literal, Optional, Union

import torch
from torch import Tensor

from iaside_lightning.functional.checks import check_images

__all__ = [
    "FillValue",
    "Keep",
    "MaskFill",
    "Per",
    "apply_unmasking",
    "check_attributions",
    "check_mask_fill",
    "check_per",
    "mask_fill_value",
    "random_attributions",
    "unmask",
    "unmasking_masks",
]

Keep = Literal["top", "bottom"]
Per = Literal["coordinate", "pixel"]
#: Value of masked coordinates: a number or one value per channel ``[C]``.
FillValue = Union[float, Tensor]
#: DiffROAR's fill: a :data:`FillValue` or ``"mean"``, the per-channel mean of the images.
MaskFill = Union[Literal["mean"], float, Tensor]


def unmasking_masks(attributions: Tensor, fraction: float, *, keep: Keep = "top", per: Per = "coordinate") -> Tensor:
    """Boolean keep-masks of the ``round(fraction * d)`` coordinates (or pixels) ranked highest or lowest by
    ``|attributions|``, per image.

    Compute them once and reuse them (DiffROAR freezes the masks of the model under test).

    Args:
        attributions: attribution maps ``[N, C, H, W]``; only their absolute values matter.
        fraction: share of each image kept, in ``[0, 1]``.
        keep: ``"top"`` keeps the largest ``|attributions|``, ``"bottom"`` the smallest.
        per: ``"coordinate"`` ranks the ``d = C * H * W`` values; ``"pixel"`` ranks the ``d = H * W`` pixels by
            ``sum_c |attributions|`` and keeps all channels of a kept pixel.

    Returns:
        ``True`` where kept, shape ``[N, C, H, W]``, on the device of ``attributions``.

    Raises:
        TypeError: if ``attributions`` is not a floating-point ``[N, C, H, W]`` tensor.
        ValueError: if ``attributions`` are not finite, or ``fraction``, ``keep`` or ``per`` is invalid.

    Example:
        >>> scores = torch.tensor([[[[0.1, -4.0], [2.0, 0.0]]]])
        >>> unmasking_masks(scores, 0.5).int().tolist()
        [[[[0, 1], [1, 0]]]]
        >>> unmasking_masks(scores, 0.5, keep="bottom").int().tolist()
        [[[[1, 0], [0, 1]]]]
    """
    check_attributions(attributions)
    _check_fraction(fraction)
    if keep not in ("top", "bottom"):
        raise ValueError(f"`keep` must be 'top' (largest |attributions|) or 'bottom' (smallest), got {keep!r}.")
    check_per(per)
    scores = attributions.detach().abs()
    if per == "pixel":
        scores = scores.sum(dim=1, keepdim=True)
    flat = scores.flatten(1)
    size = flat.shape[1]
    count = round(fraction * size)
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    chosen = order[:, :count] if keep == "top" else order[:, size - count :]
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, chosen, True)
    return mask.view_as(scores).expand_as(attributions).contiguous()


def apply_unmasking(images: Tensor, masks: Tensor, fill: Optional[FillValue] = None) -> Tensor:
    """Keep ``images`` where ``masks`` is ``True`` and put ``fill`` everywhere else.

    Args:
        images: images ``[N, C, H, W]``.
        masks: boolean keep-masks broadcastable to ``images``, e.g. from :func:`unmasking_masks`.
        fill: a number, or one value per channel ``[C]`` (e.g. the training set's channel means); default 0.

    Returns:
        A new tensor like ``images``.

    Raises:
        TypeError: if ``images`` is not a floating-point ``[N, C, H, W]`` tensor or ``masks`` is not boolean.
        ValueError: if ``masks`` does not broadcast to ``images`` or ``fill`` has the wrong shape.

    Example:
        >>> images = torch.ones(1, 2, 1, 2)
        >>> masks = torch.tensor([[[[True, False]], [[False, True]]]])
        >>> apply_unmasking(images, masks, fill=torch.tensor([-1.0, 5.0])).tolist()
        [[[[1.0, -1.0]], [[5.0, 1.0]]]]
    """
    check_images(images, "images", finite=False)
    if not isinstance(masks, Tensor) or masks.dtype != torch.bool:
        raise TypeError(f"`masks` must be a boolean tensor (True = keep), got {getattr(masks, 'dtype', type(masks))}.")
    try:
        torch.broadcast_shapes(masks.shape, images.shape)
    except RuntimeError as err:
        raise ValueError(
            f"`masks` of shape {tuple(masks.shape)} do not broadcast to `images` of shape {tuple(images.shape)}."
        ) from err
    return torch.where(masks.to(images.device), images, _fill_tensor(fill, images))


def unmask(
    images: Tensor,
    attributions: Tensor,
    fraction: float,
    *,
    keep: Keep = "top",
    per: Per = "coordinate",
    fill: Optional[FillValue] = None,
) -> Tensor:
    """Keep the ``fraction`` of each image ranked highest (or lowest) by ``|attributions|``; fill the rest.

    The composition of :func:`unmasking_masks` and :func:`apply_unmasking`. ``fraction=0`` gives images made of
    ``fill`` only, ``fraction=1`` the images unchanged.

    Args:
        images: images ``[N, C, H, W]``.
        attributions: attribution maps of the same shape; only their absolute values matter.
        fraction: share of each image kept, in ``[0, 1]``.
        keep: ``"top"`` keeps the largest ``|attributions|``, ``"bottom"`` the smallest.
        per: ``"coordinate"`` (rank every value) or ``"pixel"`` (rank and keep whole pixels).
        fill: a number or one value per channel ``[C]``; default 0.

    Returns:
        The unmasked images, a new tensor like ``images``.

    Raises:
        TypeError: if ``images`` or ``attributions`` is not a floating-point ``[N, C, H, W]`` tensor.
        ValueError: if the shapes differ or an option is invalid.

    Example:
        >>> images = torch.arange(1.0, 5.0).view(1, 1, 2, 2)
        >>> unmask(images, attributions=images, fraction=0.25, fill=-1.0).tolist()  # the largest value stays
        [[[[-1.0, -1.0], [-1.0, 4.0]]]]
    """
    check_images(images, "images", finite=False)
    check_attributions(attributions, images)
    return apply_unmasking(images, unmasking_masks(attributions, fraction, keep=keep, per=per), fill)


def random_attributions(
    shape: Sequence[int], *, seed: int = 0, dtype: torch.dtype = torch.float32, device: Optional[torch.device] = None
) -> Tensor:
    """Uniform random scores: the random-ranking baseline of DiffROAR (its expected DiffROAR is 0).

    Drawn from a private generator, so the global RNG state is untouched; ties have probability 0.

    Args:
        shape: ``[N, C, H, W]``, usually ``images.shape``.
        seed: seed of the ranking.
        dtype: floating-point dtype of the scores.
        device: device of the scores.

    Returns:
        Scores in ``[0, 1)`` of the given shape.

    Example:
        >>> first = random_attributions((2, 1, 3, 3), seed=1)
        >>> bool(torch.equal(first, random_attributions((2, 1, 3, 3), seed=1))), first.shape
        (True, torch.Size([2, 1, 3, 3]))
    """
    size = tuple(shape)
    if len(size) != 4 or not all(isinstance(n, int) and n >= 0 for n in size):
        raise ValueError(f"`shape` must be four non-negative integers [N, C, H, W], got {shape!r}.")
    scores = torch.rand(size, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return scores if device is None else scores.to(device)


def check_attributions(attributions: Tensor, images: Optional[Tensor] = None, name: str = "attributions") -> None:
    """Raise a clear error unless ``attributions`` is a finite floating-point ``[N, C, H, W]`` tensor (with the shape
    of ``images`` when given): attributions that can rank the coordinates.

    Example:
        >>> check_attributions(torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 4, 4), "attributions_test")
        Traceback (most recent call last):
        ...
        ValueError: `attributions_test` must have the shape of its images (3, 1, 4, 4), got (2, 1, 4, 4).
    """
    check_images(attributions, name)
    if images is not None and attributions.shape != images.shape:
        raise ValueError(
            f"`{name}` must have the shape of its images {tuple(images.shape)}, got {tuple(attributions.shape)}."
        )


def check_per(per: str) -> None:
    """Raise a clear error unless ``per`` is a ranking unit, ``"coordinate"`` or ``"pixel"``.

    Example:
        >>> check_per("channel")
        Traceback (most recent call last):
        ...
        ValueError: `per` must be 'coordinate' (each C*H*W value) or 'pixel' (whole pixels), got 'channel'.
    """
    if per not in ("coordinate", "pixel"):
        raise ValueError(f"`per` must be 'coordinate' (each C*H*W value) or 'pixel' (whole pixels), got {per!r}.")


def check_mask_fill(fill: MaskFill) -> None:
    """Raise a clear error unless ``fill`` is ``"mean"``, a number or a per-channel tensor (0-D or 1-D).

    The number of channels is checked against the images when the fill is applied.

    Example:
        >>> check_mask_fill("median")
        Traceback (most recent call last):
        ...
        ValueError: `fill` must be 'mean', a number or a per-channel tensor [C], got 'median'.
    """
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"`fill` must be 'mean', a number or a per-channel tensor [C], got {fill!r}.")
        return
    _check_fill_value(fill)


def mask_fill_value(fill: MaskFill, images: Tensor) -> FillValue:
    """The value :func:`apply_unmasking` puts in masked coordinates: ``"mean"`` becomes the per-channel mean of
    ``images`` ``[C]``; numbers and tensors pass through.

    Example:
        >>> mask_fill_value("mean", torch.arange(4.0).view(1, 2, 1, 2)).tolist(), mask_fill_value(0.5, torch.zeros(1))
        ([0.5, 2.5], 0.5)
    """
    return images.mean(dim=(0, 2, 3)) if isinstance(fill, str) and fill == "mean" else fill


def _check_fill_value(fill: FillValue) -> None:
    """A number or a 0-D / 1-D tensor (the channel count is checked against the images in :func:`_fill_tensor`)."""
    if isinstance(fill, Tensor):
        if fill.ndim > 1:
            raise ValueError(f"`fill` must be a number or one value per channel [C], got shape {tuple(fill.shape)}.")
        return
    if isinstance(fill, bool) or not isinstance(fill, (int, float)):
        raise TypeError(f"`fill` must be a number or a tensor of one value per channel, got {type(fill).__name__}.")


def _fill_tensor(fill: Optional[FillValue], images: Tensor) -> Tensor:
    """``fill`` as a tensor broadcastable to ``images``: a scalar, or ``[1, C, 1, 1]`` for per-channel values."""
    if fill is None:
        return images.new_zeros(())
    _check_fill_value(fill)
    if not isinstance(fill, Tensor):
        return images.new_tensor(float(fill))
    value = fill.detach().to(images)
    if value.ndim == 0:
        return value
    if value.numel() != images.shape[1]:
        raise ValueError(
            f"`fill` must be a number or one value per channel [{images.shape[1]}], got shape {tuple(value.shape)}."
        )
    return value.view(1, -1, 1, 1)


def _check_fraction(fraction: float) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ValueError(f"`fraction` must be a number in [0, 1] (the share of each image kept), got {fraction!r}.")
