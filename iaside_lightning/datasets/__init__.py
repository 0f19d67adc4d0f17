"""Data sets with known ground truth for testing and demonstrating spectral importance."""

from iaside_lightning.datasets.planted import PlantedBandDataset, make_planted_band_images

__all__ = ["PlantedBandDataset", "make_planted_band_images"]
