"""``BoundaryGeometry``: distance to the decision boundary and gradient/boundary alignment, over batches."""

from torch import Tensor

from iaside_lightning.functional.boundary_geometry import BoundaryGeometryResult
from iaside_lightning.metrics.sample_means import SampleMeans

__all__ = ["BoundaryGeometry"]

MEASURES = ("distance", "cos_gradient_boundary", "cos_ig_big", "abs_completeness_error", "correct", "found")


class BoundaryGeometry(SampleMeans):
    """Decision-boundary geometry accumulated over batches and processes (sum states, exact under DDP).

    ``update(geometry)`` takes the per-sample result of
    :func:`~iaside_lightning.functional.boundary_geometry.boundary_geometry`. ``compute()`` returns means, standard
    errors and counts of ``distance`` (L2 distance to the boundary point), ``cos_gradient_boundary`` (cosine between
    the input gradient and ``x - x'``), ``cos_ig_big`` (cosine between IG and BIG) and ``abs_completeness_error``
    (BIG's integration error), over the samples where a boundary point was found, plus ``accuracy`` (share of
    samples correctly classified) and ``attack_success_rate`` (share of those for which the search found a
    boundary point). Samples without a boundary point are never mixed into the geometry means.

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
        """Add the per-sample geometry of one batch."""
        if not isinstance(geometry, BoundaryGeometryResult):
            raise TypeError(
                f"`geometry` must be a BoundaryGeometryResult (from iaside_lightning.functional.boundary_geometry), got "
                f"{type(geometry).__name__}."
            )
        search = geometry.search
        found_or_nan = search.found.double().masked_fill(~search.correct, float("nan"))
        self.add(
            {
                "distance": search.distance,
                "cos_gradient_boundary": geometry.cos_gradient_boundary,
                "cos_ig_big": geometry.cos_ig_big,
                "abs_completeness_error": geometry.big_completeness_error.abs().masked_fill(~search.found, float("nan")),
                "correct": search.correct.double(),
                "found": found_or_nan,
            }
        )

    def compute(self) -> dict[str, Tensor]:
        """Means, standard errors and counts; ``accuracy`` and ``attack_success_rate`` are the two rates."""
        out = super().compute()
        out["accuracy"], out["attack_success_rate"] = out.pop("correct"), out.pop("found")
        out["accuracy_stderr"], out["attack_success_rate_stderr"] = out.pop("correct_stderr"), out.pop("found_stderr")
        out["accuracy_count"], out["attack_success_rate_count"] = out.pop("correct_count"), out.pop("found_count")
        return out
