"""Data sets with known ground truth for testing and demonstrating spectral importance."""

from iaside_lightning.datasets.planted import PlantedBandDataset, make_planted_band_images
from iaside_lightning.datasets.planted_datamodule import PlantedBandDataModule

__all__ = ["PlantedBandDataModule", "PlantedBandDataset", "make_planted_band_images"]
