"""Lightning callbacks."""

from iaside_lightning.callbacks.spectral_robustness_monitor import SpectralRobustnessMonitor

__all__ = ["SpectralRobustnessMonitor"]
