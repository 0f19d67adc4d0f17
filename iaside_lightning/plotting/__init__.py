"""Figures, one module per sub-system: I-ASIDE (:mod:`~iaside_lightning.plotting.spectral`), boundary attributions
(:mod:`~iaside_lightning.plotting.boundary`), attribution sanity checks (:mod:`~iaside_lightning.plotting.sanity`)
and the memorisation audit (:mod:`~iaside_lightning.plotting.memorization`).

Every function draws with the object-oriented :class:`matplotlib.figure.Figure` API (never ``pyplot``'s global
state) and returns the figure with its axes; the caller owns the figure.
"""

from iaside_lightning.plotting.boundary import plot_attribution_grid
from iaside_lightning.plotting.memorization import plot_memorization_scores, plot_suspects
from iaside_lightning.plotting.sanity import plot_diffroar
from iaside_lightning.plotting.spectral import (
    plot_band_epoch_heatmap,
    plot_frequency_response,
    plot_spectral_snr,
    plot_srs_curve,
)

__all__ = [
    "plot_attribution_grid",
    "plot_band_epoch_heatmap",
    "plot_diffroar",
    "plot_frequency_response",
    "plot_memorization_scores",
    "plot_spectral_snr",
    "plot_srs_curve",
    "plot_suspects",
]
