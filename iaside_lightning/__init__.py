"""iaside-lightning: watch a model's spectral robustness (I-ASIDE) change during PyTorch Lightning training."""

from iaside_lightning.callbacks import SpectralRobustnessMonitor
from iaside_lightning.functional import SpectralShapleyResult, spectral_shapley
from iaside_lightning.metrics import SpectralImportance

__version__ = "0.1.0"

__all__ = ["SpectralImportance", "SpectralRobustnessMonitor", "SpectralShapleyResult", "__version__", "spectral_shapley"]
