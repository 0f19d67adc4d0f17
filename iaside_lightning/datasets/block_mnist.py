"""BlockMNIST (Shah, Jain and Netrapalli, NeurIPS 2021): a digit and a label-independent null pattern, stacked.

Every image is two square blocks stacked vertically: the *signal* block holds a digit whose class is the label, the
*null* block a fixed square outline with digit-like pixel statistics, identical in every image. The signal block is on
top or at the bottom with probability 1/2 each (variant ``"random"``) or always on top (``"top"``). Only the signal
block is discriminative, so the images' masks (True on the signal block) are ground truth for attributions: standard
models' input gradients "leak" onto the null block, adversarially robust models' gradients stay on the digit.

Digits come from :func:`~iaside_lightning.datasets.block_mnist_digits.load_digits`; the data module is
:class:`~iaside_lightning.datasets.block_mnist_datamodule.BlockMNISTDataModule`.
"""

from collections.abc import Sequence
from typing import Literal, Union

import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812
from torch.utils.data import TensorDataset

from iaside_lightning.datasets.block_mnist_digits import DIGIT_SIZE, NUM_DIGITS

__all__ = ["BlockMNIST", "Variant", "check_block_options", "check_classes", "make_block_mnist", "null_pattern_masks"]

Variant = Literal["random", "top"]

#: Half side of the null square's stroke centre line and its stroke width, in pixels of a 28 x 28 block: a
#: 16 x 16 outline whose ink covers about as many pixels as a digit's.
SQUARE_HALF_SIDE, SQUARE_STROKE = 6.75, 2.5


def make_block_mnist(
    digits: Tensor,
    digit_labels: Tensor,
    *,
    classes: Sequence[int] = (0, 1),
    variant: Variant = "random",
    null_pattern: Union[Literal["square"], Tensor] = "square",
    block_size: int = 28,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Build BlockMNIST images from digits: each digit of ``classes`` stacked with a fixed null block.

    The signal block is the digit, resized to ``block_size`` (area averaging when shrinking, bilinear when
    enlarging). The null block is the same for every image: with ``null_pattern="square"`` a 16 x 16 square outline
    of stroke width 2.5 pixels (at 28 pixels; resized like the digits), whose ink pixels have the mean intensity of the
    digits' ink (nonzero) pixels, as far as values at most 1 allow; or the given tensor. With ``variant="random"``
    each image puts its signal block on top with probability 1/2 (seeded, independent of the label); with ``"top"``
    always on top.

    Args:
        digits: float ``[N, 1, 28, 28]`` in ``[0, 1]``, e.g. from
            :func:`~iaside_lightning.datasets.block_mnist_digits.load_digits`.
        digit_labels: integer digit classes ``[N]``.
        classes: at least two distinct digits in ``0..9``, all present in ``digit_labels``; the label of an image is
            the index of its digit in ``classes``. Digits of other classes are dropped.
        variant: ``"random"`` or ``"top"``.
        null_pattern: ``"square"`` or a float tensor ``[1, block_size, block_size]`` in ``[0, 1]``.
        block_size: side of both blocks, at least 8.
        seed: seed of the signal blocks' positions.

    Returns:
        ``images`` float32 ``[n, 1, 2 * block_size, block_size]`` in ``[0, 1]``, ``labels`` int64 ``[n]`` in
        ``0..len(classes) - 1`` and ``masks`` bool ``[n, 1, 2 * block_size, block_size]``, True on the signal block;
        in the order of ``digits``.

    Raises:
        ValueError: for an invalid argument (the message names it).

    Example:
        >>> from iaside_lightning.datasets.block_mnist_digits import load_digits
        >>> digits, digit_labels = load_digits("synthetic", num_per_class=3)
        >>> images, labels, masks = make_block_mnist(digits, digit_labels, classes=(7, 1))
        >>> images.shape, labels.tolist(), masks.sum((1, 2, 3)).unique().tolist()
        (torch.Size([6, 1, 56, 28]), [1, 1, 1, 0, 0, 0], [784])
    """
    classes = check_block_options(classes, variant, null_pattern, block_size, seed)
    _check_digits(digits, digit_labels)
    missing = [c for c in classes if not bool((digit_labels == c).any())]
    if missing:
        raise ValueError(f"`classes` must all occur in `digit_labels`; digits {missing} do not.")
    lookup = torch.full((NUM_DIGITS,), -1, dtype=torch.long, device=digit_labels.device)
    lookup[list(classes)] = torch.arange(len(classes), device=digit_labels.device)
    kept = lookup[digit_labels.long()]
    chosen = digits[kept >= 0].float()
    labels = kept[kept >= 0]
    signal = _resize(chosen, block_size)
    null = _resize(_square(chosen)[None], block_size)[0] if isinstance(null_pattern, str) else null_pattern
    num = labels.numel()
    if variant == "random":
        top = torch.rand(num, generator=torch.Generator().manual_seed(seed)) < 0.5
    else:
        top = torch.ones(num, dtype=torch.bool)
    top = top.to(digits.device)[:, None, None, None]
    null = null.to(signal).expand_as(signal)
    images = torch.where(top, torch.cat([signal, null], dim=2), torch.cat([null, signal], dim=2))
    upper = torch.arange(2 * block_size, device=digits.device)[:, None] < block_size  # [2 * block_size, 1]
    masks = (upper == top).expand(num, 1, 2 * block_size, block_size)
    return images, labels, masks.contiguous()


def null_pattern_masks(masks: Tensor, null_pattern: Union[Literal["square"], Tensor] = "square") -> Tensor:
    """Where the null pattern's ink is: True on the pixels of the null block that the pattern draws on.

    Splits the null block (the complement of the signal masks) into the pattern's ink and its background, so that
    attribution mass on the label-independent *pattern* can be told from mass spread over the empty background (see
    :func:`~iaside_lightning.functional.sanity.localization.attribution_region_shares`). For ``"square"`` the ink is
    the outline drawn by :func:`make_block_mnist` (every pixel it touches, resized to the block size as the images
    are); for a pattern tensor, its nonzero pixels.

    Args:
        masks: the signal masks of :func:`make_block_mnist`, bool ``[n, 1, 2 * B, B]``.
        null_pattern: the ``null_pattern`` the images were made with.

    Returns:
        bool ``[n, 1, 2 * B, B]``, True on the null pattern's ink (never on the signal block).

    Raises:
        ValueError: for masks that are not signal masks of BlockMNIST or a pattern of another block size.

    Example:
        >>> from iaside_lightning.datasets.block_mnist_digits import load_digits
        >>> images, labels, masks = make_block_mnist(*load_digits("synthetic", num_per_class=2))
        >>> ink = null_pattern_masks(masks)
        >>> int(ink.sum((1, 2, 3))[0]), bool((ink & masks).any()), bool((images[ink] > 0).all())
        (156, False, True)
        >>> bool((images[~ink & ~masks] == 0).all())  # the rest of the null block is blank
        True
    """
    if (
        not isinstance(masks, Tensor)
        or masks.dtype != torch.bool
        or masks.ndim != 4
        or masks.shape[1] != 1
        or masks.shape[2] != 2 * masks.shape[3]
    ):
        raise ValueError(f"`masks` must be BlockMNIST's bool signal masks [n, 1, 2 * B, B], got {_describe(masks)}.")
    block_size = masks.shape[3]
    check_block_options((0, 1), "random", null_pattern, block_size, 0)
    if isinstance(null_pattern, Tensor):
        ink = null_pattern[0] > 0
    else:
        ink = _resize(_outline()[None, None], block_size)[0, 0] > 0
    both_blocks = torch.cat([ink, ink]).to(masks.device)  # [2 * B, B]: the pattern wherever the null block is
    return both_blocks & ~masks


def check_block_options(
    classes: Sequence[int], variant: str, null_pattern: Union[str, Tensor], block_size: int, seed: int
) -> tuple[int, ...]:
    """Validate the data-independent options of :func:`make_block_mnist`; return ``classes`` as a tuple.

    Example:
        >>> check_block_options([3, 8], "top", "square", 28, 0)
        (3, 8)
    """
    classes = check_classes(classes)
    if variant not in ("random", "top"):
        raise ValueError(f"`variant` must be 'random' (signal on top or bottom) or 'top', got {variant!r}.")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 8:
        raise ValueError(f"`block_size` must be an integer >= 8, got {block_size!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` must be an integer, got {seed!r}.")
    if isinstance(null_pattern, Tensor):
        if (
            not null_pattern.dtype.is_floating_point
            or tuple(null_pattern.shape) != (1, block_size, block_size)
            or not bool(((null_pattern >= 0) & (null_pattern <= 1)).all())
        ):
            raise ValueError(
                f"`null_pattern` must be a float tensor [1, {block_size}, {block_size}] (block_size) with values in "
                f"[0, 1], got {_describe(null_pattern)}."
            )
    elif null_pattern != "square":
        raise ValueError(
            f"`null_pattern` must be 'square' or a tensor [1, block_size, block_size], got {null_pattern!r}."
        )
    return classes


def check_classes(classes: Sequence[int]) -> tuple[int, ...]:
    """``classes`` as a tuple, refused unless at least two distinct digits in ``0..9``.

    Example:
        >>> check_classes([1, 1])
        Traceback (most recent call last):
        ...
        ValueError: `classes` must be a sequence of at least two distinct digits in 0..9, got [1, 1].
    """
    if (
        isinstance(classes, (str, bytes, Tensor))
        or not isinstance(classes, Sequence)
        or len(classes) < 2
        or any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < NUM_DIGITS for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise ValueError(f"`classes` must be a sequence of at least two distinct digits in 0..9, got {classes!r}.")
    return tuple(classes)


def _check_digits(digits: Tensor, digit_labels: Tensor) -> None:
    if (
        not isinstance(digits, Tensor)
        or not digits.dtype.is_floating_point
        or digits.ndim != 4
        or tuple(digits.shape[1:]) != (1, DIGIT_SIZE, DIGIT_SIZE)
    ):
        raise ValueError(f"`digits` must be a float tensor [N, 1, 28, 28], got {_describe(digits)}.")
    if digits.numel() and not bool(((digits >= 0) & (digits <= 1)).all()):
        raise ValueError(f"`digits` must lie in [0, 1], got [{float(digits.min())}, {float(digits.max())}].")
    if (
        not isinstance(digit_labels, Tensor)
        or digit_labels.dtype.is_floating_point
        or digit_labels.dtype == torch.bool
        or tuple(digit_labels.shape) != (digits.shape[0],)
    ):
        raise ValueError(
            f"`digit_labels` must be a 1-D integer tensor with one label per digit ({digits.shape[0]}), got "
            f"{_describe(digit_labels)}."
        )
    if digit_labels.numel() and not 0 <= int(digit_labels.min()) <= int(digit_labels.max()) < NUM_DIGITS:
        low, high = int(digit_labels.min()), int(digit_labels.max())
        raise ValueError(f"`digit_labels` must be digits in 0..9, got values in [{low}, {high}].")


def _describe(value: object) -> str:
    """``dtype [shape]`` of a tensor, the type's name otherwise (for error messages)."""
    return f"{value.dtype} {list(value.shape)}" if isinstance(value, Tensor) else type(value).__name__


def _resize(blocks: Tensor, size: int) -> Tensor:
    """Resize ``[N, 1, 28, 28]`` blocks to ``size``: area averaging when shrinking, bilinear when enlarging."""
    if size == DIGIT_SIZE:
        return blocks
    if size < DIGIT_SIZE:
        resized = F.interpolate(blocks, size=(size, size), mode="area")
    else:
        resized = F.interpolate(blocks, size=(size, size), mode="bilinear", align_corners=False)
    return resized.clamp_(0, 1)


def _square(digits: Tensor) -> Tensor:
    """The 28 x 28 null square ``[1, 28, 28]``; its ink's mean intensity is that of the digits' ink (nonzero pixels)."""
    ink = digits[digits > 0]
    if ink.numel() == 0:
        raise ValueError("`digits` of the chosen `classes` are blank (all zero): the null square copies their ink.")
    outline = _outline().to(digits.device)
    scale = ink.mean() / outline[outline > 0].mean()
    return (outline * scale).clamp(0, 1)[None]


def _outline() -> Tensor:
    """The null square's anti-aliased outline ``[28, 28]`` in ``[0, 1]`` (1 on the stroke, 0 off it)."""
    centre = torch.arange(DIGIT_SIZE, dtype=torch.float32) - (DIGIT_SIZE - 1) / 2
    radius = torch.maximum(centre[:, None].abs(), centre[None, :].abs())  # L-infinity distance from the centre
    return (SQUARE_STROKE / 2 + 0.5 - (radius - SQUARE_HALF_SIDE).abs()).clamp(0, 1)


class BlockMNIST(TensorDataset):
    """BlockMNIST images, labels and signal masks; items are ``(image, label, mask)`` triples.

    A :class:`~torch.utils.data.TensorDataset` of the outputs of :func:`make_block_mnist` (``tensors`` holds them),
    so code reading ``batch[0], batch[1]`` trains on it unchanged and attribution metrics find the ground truth
    in ``batch[2]``.

    Args:
        images: float ``[n, 1, 2 * B, B]``.
        labels: int64 ``[n]`` in ``0..len(classes) - 1``.
        masks: bool, the shape of ``images``, True on the signal block.
        classes: the digit of each label.

    Raises:
        ValueError: if the tensors' shapes, dtypes or labels do not fit together or ``classes`` is invalid.

    Example:
        >>> from iaside_lightning.datasets.block_mnist_digits import load_digits
        >>> digits, digit_labels = load_digits("synthetic", num_per_class=2)
        >>> dataset = BlockMNIST(*make_block_mnist(digits, digit_labels, classes=(3, 8)), classes=(3, 8))
        >>> image, label, mask = dataset[0]
        >>> len(dataset), image.shape, dataset.classes[label], bool(mask[0, :28].all() != mask[0, 28:].all())
        (4, torch.Size([1, 56, 28]), 3, True)
    """

    def __init__(self, images: Tensor, labels: Tensor, masks: Tensor, classes: Sequence[int] = (0, 1)) -> None:
        classes = check_classes(classes)
        if (
            not isinstance(images, Tensor)
            or not images.dtype.is_floating_point
            or images.ndim != 4
            or images.shape[1] != 1
            or images.shape[2] != 2 * images.shape[3]
        ):
            raise ValueError(f"`images` must be a float tensor [n, 1, 2 * B, B], got {_describe(images)}.")
        n = images.shape[0]
        if not isinstance(labels, Tensor) or labels.dtype != torch.int64 or tuple(labels.shape) != (n,):
            raise ValueError(f"`labels` must be an int64 tensor [{n}] (one per image), got {_describe(labels)}.")
        if n and not 0 <= int(labels.min()) <= int(labels.max()) < len(classes):
            raise ValueError(f"`labels` must lie in [0, {len(classes)}) (indices into `classes`).")
        if not isinstance(masks, Tensor) or masks.dtype != torch.bool or masks.shape != images.shape:
            raise ValueError(f"`masks` must be a bool tensor shaped like `images`, got {_describe(masks)}.")
        super().__init__(images, labels, masks)
        self.classes = classes

    @property
    def images(self) -> Tensor:
        """float ``[n, 1, 2 * B, B]``."""
        return self.tensors[0]

    @property
    def labels(self) -> Tensor:
        """int64 ``[n]``: indices into :attr:`classes`."""
        return self.tensors[1]

    @property
    def masks(self) -> Tensor:
        """bool ``[n, 1, 2 * B, B]``, True on the signal (digit) block."""
        return self.tensors[2]
