"""iaside-lightning: watch a model's spectral robustness (I-ASIDE), decision-boundary geometry (BIG) and attribution
quality (BlockMNIST, DiffROAR) change during PyTorch Lightning training."""

from iaside_lightning.callbacks import BoundaryMonitor, DiffROARCallback, MemorizationAudit, SpectralRobustnessMonitor
from iaside_lightning.functional import SpectralShapleyResult, memorization_scores, spectral_shapley
from iaside_lightning.evaluation import DiffROARResult, diffroar
from iaside_lightning.metrics import AttributionLocalization, BoundaryGeometry, SpectralImportance

__version__ = "0.1.0"

__all__ = [
    "AttributionLocalization",
    "BoundaryGeometry",
    "BoundaryMonitor",
    "DiffROARCallback",
    "DiffROARResult",
    "MemorizationAudit",
    "SpectralImportance",
    "SpectralRobustnessMonitor",
    "SpectralShapleyResult",
    "__version__",
    "diffroar",
    "memorization_scores",
    "spectral_shapley",
]
