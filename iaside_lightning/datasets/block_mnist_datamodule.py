"""``BlockMNISTDataModule``: BlockMNIST over all digits of some classes, split into training and validation sets."""

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Optional, Union

import lightning.pytorch as pl
from torch import Tensor
from torch.utils.data import DataLoader

from iaside_lightning.datasets.block_mnist import BlockMNIST, Variant, check_block_options, make_block_mnist
from iaside_lightning.datasets.block_mnist_digits import DigitSource, check_digit_source, load_digits
from iaside_lightning.datasets.mnist5k import MNIST5kDataModule
from iaside_lightning.datasets.splits import stratified_split

__all__ = ["BlockMNISTDataModule"]


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
        self.classes = check_block_options(classes, variant, null_pattern, block_size, seed)
        check_digit_source(source, root, num_per_class, True)
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
