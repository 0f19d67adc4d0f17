"""``BoundaryGeometry``: distance to the decision boundary and gradient/boundary alignment, over batches."""

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Optional

from torch import Tensor

from iaside_lightning.functional.attacks import Bounds, Norm
from iaside_lightning.functional.boundary.geometry import BoundaryGeometryResult, run_boundary_geometry
from iaside_lightning.functional.boundary.options import BoundaryGeometryOptions, Preset, document_options
from iaside_lightning.metrics.sample_means import SampleMeans

__all__ = ["BoundaryGeometry"]

MEASURES = ("distance", "cos_gradient_boundary", "cos_ig_big", "abs_completeness_error", "accuracy", "attack_success_rate")
FROM_RESULT = "for a BoundaryGeometryResult computed already, call `update_from_result(geometry)`"


@document_options(
    "preset", "epsilons", "norm", "steps", "bisection_steps", "ig_steps", "random_start", "bounds", "seed"
)
class BoundaryGeometry(SampleMeans):
    """Decision-boundary geometry of a classifier accumulated over batches and processes (sum states, exact under DDP).

    ``update(model, images, labels)`` runs the boundary search and the attributions of
    :func:`~iaside_lightning.functional.boundary.geometry.boundary_geometry` with the metric's options (validated
    once, at construction, into :attr:`options`), like :class:`~iaside_lightning.metrics.SpectralImportance` runs its
    coalitions. ``compute()`` returns means, standard errors and counts of ``distance`` (L2 distance to the boundary
    point), ``cos_gradient_boundary`` (cosine between the input gradient and ``x - x'``), ``cos_ig_big`` (cosine
    between IG and BIG) and ``abs_completeness_error`` (BIG's integration error), over the samples where a boundary
    point was found, plus ``accuracy`` (share of samples correctly classified) and ``attack_success_rate`` (share of
    those for which the search found a boundary point). Samples without a boundary point are never mixed into the
    geometry means. Every batch's attacks use the same ``seed``.

    The search dominates the cost (up to ~60 forward+backward passes per image with the fast preset, ~290 with the
    paper's), and its per-sample outputs (gradient, IG, BIG) also feed
    :class:`~iaside_lightning.metrics.AttributionLocalization` and the figures of
    :class:`~iaside_lightning.callbacks.BoundaryMonitor`. To run it once for several consumers, call the functional
    yourself and hand its result to :meth:`update_from_result`; the metric's options then play no part.

    Args:
        {options}
        output_transform: maps the model output to logits.
        kwargs: passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute``).

    Raises:
        ValueError: at construction, for an unknown preset or an invalid option (validated by
            :class:`~iaside_lightning.functional.boundary.options.BoundaryGeometryOptions`, with the functional's
            messages).
        TypeError: at construction, for a wrongly typed ``random_start`` or ``seed``.

    Example:
        >>> import torch
        >>> from iaside_lightning.functional import boundary_geometry
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> x = torch.rand(4, 1, 4, 4)
        >>> metric = BoundaryGeometry(preset="fast", ig_steps=4)
        >>> metric.update(model, x, model(x).argmax(1))  # runs the search
        >>> metric.update_from_result(boundary_geometry(model, x, model(x).argmax(1)))  # a search run elsewhere
        >>> sorted(k for k in metric.compute() if not k.endswith(("_stderr", "_count")))
        ['abs_completeness_error', 'accuracy', 'attack_success_rate', 'cos_gradient_boundary', 'cos_ig_big', 'distance']
    """

    higher_is_better = None

    def __init__(
        self,
        preset: Preset = "fast",
        epsilons: Optional[Sequence[float]] = None,
        norm: Optional[Norm] = None,
        steps: Optional[int] = None,
        bisection_steps: Optional[int] = None,
        ig_steps: Optional[int] = None,
        random_start: Optional[bool] = None,
        bounds: Optional[Bounds] = None,
        output_transform: Optional[Callable[[Any], Tensor]] = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(MEASURES, **kwargs)
        self.options = BoundaryGeometryOptions.from_preset(
            preset, epsilons=epsilons, norm=norm, steps=steps, random_start=random_start,
            bisection_steps=bisection_steps, ig_steps=ig_steps, bounds=bounds, seed=seed,
        )
        self.output_transform = output_transform

    def update(  # type: ignore[override]
        self, model: Callable[[Tensor], Any], images: Optional[Tensor] = None, labels: Optional[Tensor] = None
    ) -> None:
        """Search the boundary around one batch and add its per-sample geometry.

        Args:
            model: classifier mapping ``[N, C, H, W]`` inputs to ``[N, K]`` logits (run in eval mode, modes restored;
                parameters' ``.grad`` untouched).
            images: model inputs ``[N, C, H, W]``.
            labels: true classes ``[N]``.

        ``update(geometry)`` with a single :class:`BoundaryGeometryResult` still works, with a
        ``DeprecationWarning``: call :meth:`update_from_result` instead.

        Raises:
            TypeError: unless called as ``update(model, images, labels)`` with a callable model (the message names
                :meth:`update_from_result` for a result computed already), or for wrongly typed images or labels.
            ValueError: for a wrong shape or labels outside the model's classes.
        """
        if isinstance(model, BoundaryGeometryResult) and images is None and labels is None:
            warnings.warn(
                "`BoundaryGeometry.update(geometry)` with a BoundaryGeometryResult is deprecated: call "
                "`update_from_result(geometry)` (`update(model, images, labels)` now runs the search itself).",
                DeprecationWarning,
                stacklevel=3,  # the caller of torchmetrics' update wrapper
            )
            self._add_result(model)
            return
        if isinstance(model, BoundaryGeometryResult) or not callable(model):
            raise TypeError(
                f"`model` must be a callable classifier, got {type(model).__name__}: call `update(model, images, "
                f"labels)`; {FROM_RESULT}."
            )
        if images is None or labels is None:
            raise TypeError("`update` needs `images` and `labels` with the model: `update(model, images, labels)`.")
        geometry = run_boundary_geometry(model, images, labels, self.options, output_transform=self.output_transform)
        self._add_result(geometry)

    def update_from_result(self, geometry: BoundaryGeometryResult) -> None:
        """Add the per-sample geometry of one batch computed already (e.g. by a search shared with other metrics).

        Args:
            geometry: the result of :func:`~iaside_lightning.functional.boundary.geometry.boundary_geometry` or
                :func:`~iaside_lightning.functional.boundary.geometry.run_boundary_geometry`.

        Raises:
            TypeError: unless ``geometry`` is a :class:`BoundaryGeometryResult`.
        """
        # torchmetrics' own wrapper of ``update``: it counts the update and clears the cached ``compute()`` result.
        self._wrap_update(self._add_result)(geometry)

    def _add_result(self, geometry: BoundaryGeometryResult) -> None:
        """Check ``geometry`` and add its per-sample measures (inside ``update``'s wrapper)."""
        if not isinstance(geometry, BoundaryGeometryResult):
            raise TypeError(
                f"`geometry` must be a BoundaryGeometryResult (from iaside_lightning.functional.boundary.geometry), got "
                f"{type(geometry).__name__}; to run the search on a model, call `update(model, images, labels)`."
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
