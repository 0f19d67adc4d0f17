"""Lightning callbacks."""

from iaside_lightning.callbacks.precise_batchnorm import PreciseBatchNorm
from iaside_lightning.callbacks.spectral_robustness_monitor import SpectralRobustnessMonitor

__all__ = ["PreciseBatchNorm", "SpectralRobustnessMonitor"]
