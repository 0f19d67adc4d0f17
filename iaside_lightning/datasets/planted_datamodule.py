"""``PlantedBandDataModule``: planted-band synthetic data as a LightningDataModule."""

from collections.abc import Sequence
from typing import Optional, Union

import lightning.pytorch as pl
from torch.utils.data import DataLoader, TensorDataset

from iaside_lightning.datasets.planted import make_planted_band_images

__all__ = ["PlantedBandDataModule"]


class PlantedBandDataModule(pl.LightningDataModule):
    """Train/validation splits of :func:`~iaside_lightning.datasets.make_planted_band_images` with the same classes
    (``class_seed``) and independent samples (different seeds).

    Images are standardised to roughly zero mean and unit variance (``(x - 0.5) / 0.15``); pass
    :attr:`normalization` to the monitor so bands are cut in pixel space.

    Args:
        num_train: training images.
        num_val: validation images.
        batch_size: batch size of both loaders.
        num_classes: number of classes.
        image_size: ``H`` or ``(H, W)``.
        channels: image channels.
        planted_bands: band index or indices carrying the class.
        num_bands: number of bands of the partition the class is planted in.
        signal_strength: RMS of the class texture relative to the background.
        seed: seed of the training samples (validation uses ``seed + 1``).

    Example:
        >>> dm = PlantedBandDataModule(num_train=64, num_val=32, batch_size=16)
        >>> dm.setup("fit")
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> x.shape, y.shape
        (torch.Size([16, 1, 32, 32]), torch.Size([16]))
    """

    #: ``(mean, std)`` the images were standardised with.
    normalization = ((0.5,), (0.15,))

    def __init__(
        self,
        num_train: int = 4096,
        num_val: int = 512,
        batch_size: int = 64,
        num_classes: int = 4,
        image_size: Union[int, Sequence[int]] = 32,
        channels: int = 1,
        planted_bands: Union[int, Sequence[int]] = 2,
        num_bands: int = 8,
        signal_strength: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: Optional[TensorDataset] = None
        self.val_set: Optional[TensorDataset] = None

    def _make(self, num: int, seed: int) -> TensorDataset:
        h = self.hparams
        size = h.image_size if isinstance(h.image_size, int) else tuple(h.image_size)
        images, labels = make_planted_band_images(
            num,
            num_classes=h.num_classes,
            image_size=size,
            channels=h.channels,
            planted_bands=h.planted_bands if isinstance(h.planted_bands, int) else list(h.planted_bands),
            num_bands=h.num_bands,
            signal_strength=h.signal_strength,
            seed=seed,
        )
        mean, std = self.normalization
        return TensorDataset((images - mean[0]) / std[0], labels)

    def setup(self, stage: str) -> None:
        if self.train_set is None:
            self.train_set = self._make(self.hparams.num_train, self.hparams.seed)
            self.val_set = self._make(self.hparams.num_val, self.hparams.seed + 1)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.batch_size)
