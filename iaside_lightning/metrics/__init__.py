"""torchmetrics wrappers of the functional core."""

from iaside_lightning.metrics.attribution_localization import AttributionLocalization
from iaside_lightning.metrics.boundary_geometry import BoundaryGeometry
from iaside_lightning.metrics.sample_means import SampleMeans
from iaside_lightning.metrics.spectral_importance import SpectralImportance

__all__ = ["AttributionLocalization", "BoundaryGeometry", "SampleMeans", "SpectralImportance"]
