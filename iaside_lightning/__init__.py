"""iaside-lightning: watch a model's spectral robustness (I-ASIDE), decision-boundary geometry (BIG) and attribution
quality (BlockMNIST, DiffROAR) change during PyTorch Lightning training."""

from iaside_lightning.callbacks import BoundaryMonitor, DiffROARCallback, SpectralRobustnessMonitor
from iaside_lightning.functional import SpectralShapleyResult, spectral_shapley
from iaside_lightning.evaluation import DiffROARResult, diffroar
from iaside_lightning.metrics import AttributionLocalization, BoundaryGeometry, SpectralImportance

__version__ = "0.1.0"

__all__ = [
    "AttributionLocalization",
    "BoundaryGeometry",
    "BoundaryMonitor",
    "DiffROARCallback",
    "DiffROARResult",
    "SpectralImportance",
    "SpectralRobustnessMonitor",
    "SpectralShapleyResult",
    "__version__",
    "diffroar",
    "spectral_shapley",
]
