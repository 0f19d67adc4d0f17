"""A small CNN classifier as a LightningModule, for examples, configs and tests."""

from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

__all__ = ["SmallCNNClassifier"]


class SmallCNNClassifier(pl.LightningModule):
    """A compact BatchNorm CNN (two or more conv blocks, global average pooling, linear head) trained with Adam.

    Logs ``train/loss``, ``val/loss`` and ``val/acc``.

    Args:
        in_channels: image channels.
        num_classes: number of classes.
        width: channels of the first conv block (doubled in each further block).
        depth: number of conv blocks (each but the last halves the resolution).
        lr: Adam learning rate.
        dropout: dropout before the linear head.

    Example:
        >>> model = SmallCNNClassifier(in_channels=3, num_classes=10)
        >>> model(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        width: int = 16,
        depth: int = 3,
        lr: float = 3e-3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(depth):
            out = width * 2**i
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            if i < depth - 1:
                layers.append(nn.MaxPool2d(2))
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch[0], batch[1]
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.log("val/loss", loss, prog_bar=True)
        self.log("val/acc", (logits.argmax(1) == y).float().mean(), prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
