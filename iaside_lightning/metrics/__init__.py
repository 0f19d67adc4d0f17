"""torchmetrics wrappers of the functional core."""

from iaside_lightning.metrics.spectral_importance import SpectralImportance

__all__ = ["SpectralImportance"]
