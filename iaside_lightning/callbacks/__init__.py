"""Lightning callbacks."""

from iaside_lightning.callbacks.boundary_monitor import BoundaryMonitor
from iaside_lightning.callbacks.diffroar_callback import DiffROARCallback
from iaside_lightning.callbacks.memorization_audit import MemorizationAudit
from iaside_lightning.callbacks.precise_batchnorm import PreciseBatchNorm
from iaside_lightning.callbacks.spectral_robustness_monitor import SpectralRobustnessMonitor

__all__ = ["BoundaryMonitor", "DiffROARCallback", "MemorizationAudit", "PreciseBatchNorm", "SpectralRobustnessMonitor"]
