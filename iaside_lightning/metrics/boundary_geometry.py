"""``BoundaryGeometry``: distance to the decision boundary and gradient/boundary alignment, over batches."""

from iaside_lightning.functional.boundary.geometry import BoundaryGeometryResult
from iaside_lightning.metrics.sample_means import SampleMeans

__all__ = ["BoundaryGeometry"]

MEASURES = ("distance", "cos_gradient_boundary", "cos_ig_big", "abs_completeness_error", "accuracy", "attack_success_rate")


class BoundaryGeometry(SampleMeans):
    """Decision-boundary geometry accumulated over batches and processes (sum states, exact under DDP).

    ``update(geometry)`` takes the per-sample result of
    :func:`~iaside_lightning.functional.boundary.geometry.boundary_geometry`. ``compute()`` returns means, standard
    errors and counts of ``distance`` (L2 distance to the boundary point), ``cos_gradient_boundary`` (cosine between
    the input gradient and ``x - x'``), ``cos_ig_big`` (cosine between IG and BIG) and ``abs_completeness_error``
    (BIG's integration error), over the samples where a boundary point was found, plus ``accuracy`` (share of
    samples correctly classified) and ``attack_success_rate`` (share of those for which the search found a
    boundary point). Samples without a boundary point are never mixed into the geometry means.

    Why ``update`` takes the search's result rather than ``(model, images, labels)`` like
    :class:`~iaside_lightning.metrics.SpectralImportance`: the boundary search dominates the cost (up to ~60
    forward+backward passes per image with the fast preset, ~290 with the paper's), and its per-sample outputs
    (gradient, IG, BIG, boundary points) feed more than these means:
    :class:`~iaside_lightning.metrics.AttributionLocalization` scores the three attribution maps and
    :class:`~iaside_lightning.callbacks.BoundaryMonitor` plots them. A metric running the search itself would hide
    them or make every consumer run it again. So, like ``AttributionLocalization.update(attributions, masks)``, it
    takes the functional's per-sample output, checked by type; the options are validated where the search runs
    (:class:`~iaside_lightning.functional.boundary.options.BoundaryGeometryOptions`).

    Example:
        >>> import torch
        >>> from iaside_lightning.functional import boundary_geometry
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> x = torch.rand(4, 1, 4, 4)
        >>> metric = BoundaryGeometry()
        >>> metric.update(boundary_geometry(model, x, model(x).argmax(1)))
        >>> sorted(k for k in metric.compute() if not k.endswith(("_stderr", "_count")))
        ['abs_completeness_error', 'accuracy', 'attack_success_rate', 'cos_gradient_boundary', 'cos_ig_big', 'distance']
    """

    higher_is_better = None

    def __init__(self, **kwargs: object) -> None:
        super().__init__(MEASURES, **kwargs)

    def update(self, geometry: BoundaryGeometryResult) -> None:  # type: ignore[override]
        """Add the per-sample geometry of one batch.

        Raises:
            TypeError: unless ``geometry`` is a :class:`BoundaryGeometryResult`.
        """
        if not isinstance(geometry, BoundaryGeometryResult):
            raise TypeError(
                f"`geometry` must be a BoundaryGeometryResult (from iaside_lightning.functional.boundary.geometry), got "
                f"{type(geometry).__name__}."
            )
        search = geometry.search
        self.add(
            {
                "distance": search.distance,
                "cos_gradient_boundary": geometry.cos_gradient_boundary,
                "cos_ig_big": geometry.cos_ig_big,
                "abs_completeness_error": geometry.big_completeness_error.abs().masked_fill(~search.found, float("nan")),
                "accuracy": search.correct.double(),  # the mean of 0/1 per sample is the rate
                "attack_success_rate": search.found.double().masked_fill(~search.correct, float("nan")),  # of the correct
            }
        )
