"""Decision-boundary geometry of a classifier around its inputs: distance, gradient alignment, IG vs BIG.

Wang, Fredrikson and Datta (ICML 2022): robust models have smoother boundaries, so their input gradient at ``x``
already points along the normal of the nearest boundary, ``x - x'``; and integrated gradients from a black image
(IG) then resemble boundary attributions (BIG). :func:`boundary_geometry` measures both per sample, with the
distance to the boundary, from one boundary search.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.attacks import Bounds, Norm
from iaside_lightning.functional.boundary.attributions import integrated_gradients
from iaside_lightning.functional.boundary.options import BoundaryGeometryOptions, Preset, document_options
from iaside_lightning.functional.boundary.search import BoundarySearchResult, run_boundary_search
from iaside_lightning.functional.gradients import input_gradient

__all__ = ["BoundaryGeometryResult", "boundary_geometry", "cosine_per_sample", "run_boundary_geometry"]


@dataclass
class BoundaryGeometryResult:
    """Per-sample boundary geometry and attributions.

    Attributes:
        search: the :class:`~iaside_lightning.functional.boundary.search.BoundarySearchResult`.
        gradient: input gradient of the true-class logit at ``x``.
        integrated_gradients: IG from the zero baseline.
        big: boundary-based integrated gradients (zero where no boundary point was found).
        cos_gradient_boundary: ``[N]`` cosine between the gradient and ``x - x'``; NaN where not found.
        cos_ig_big: ``[N]`` cosine between IG and BIG; NaN where not found.
        big_completeness_error: ``[N]`` ``sum BIG - (f_y(x) - f_y(x'))`` (integration error).
    """

    search: BoundarySearchResult
    gradient: Tensor
    integrated_gradients: Tensor
    big: Tensor
    cos_gradient_boundary: Tensor
    cos_ig_big: Tensor
    big_completeness_error: Tensor


@document_options(
    "preset", "epsilons", "norm", "steps", "bisection_steps", "ig_steps", "random_start", "bounds", "seed"
)
def boundary_geometry(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    *,
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
) -> BoundaryGeometryResult:
    """Search the nearest boundary points, then compute gradients, IG, BIG and the alignment cosines.

    Only correctly classified samples whose search succeeded get a distance and cosines; the others are NaN and
    counted by ``search.found`` / ``search.correct``. The model runs in eval mode (modes restored), parameters'
    ``.grad`` and the global RNG are untouched.

    Args:
        model: classifier mapping ``[N, C, H, W]`` inputs to ``[N, K]`` logits.
        images: model inputs ``[N, C, H, W]``.
        labels: true classes ``[N]``.
        {options}
        output_transform: maps the model output to logits.

    Returns:
        A :class:`BoundaryGeometryResult`.

    Raises:
        TypeError: for wrongly typed images, labels, ``random_start`` or ``seed``.
        ValueError: for an unknown preset or an invalid option (see
            :class:`~iaside_lightning.functional.boundary.options.BoundaryGeometryOptions`).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> x = torch.rand(6, 1, 4, 4)
        >>> geometry = boundary_geometry(model, x, model(x).argmax(1))
        >>> bool(geometry.search.found.all())
        True
        >>> geometry.cos_gradient_boundary.shape, geometry.big.shape
        (torch.Size([6]), torch.Size([6, 1, 4, 4]))
    """
    options = BoundaryGeometryOptions.from_preset(
        preset, epsilons=epsilons, norm=norm, steps=steps, random_start=random_start, bisection_steps=bisection_steps,
        ig_steps=ig_steps, bounds=bounds, seed=seed,
    )
    return run_boundary_geometry(model, images, labels, options, output_transform=output_transform)


def run_boundary_geometry(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    options: BoundaryGeometryOptions,
    *,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
) -> BoundaryGeometryResult:
    """:func:`boundary_geometry` with its options already validated in a :class:`BoundaryGeometryOptions`.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> x = torch.rand(3, 1, 4, 4)
        >>> options = BoundaryGeometryOptions.from_preset("fast", ig_steps=4)
        >>> run_boundary_geometry(model, x, model(x).argmax(1), options).big.shape
        torch.Size([3, 1, 4, 4])
    """
    if not isinstance(options, BoundaryGeometryOptions):
        raise TypeError(f"`options` must be a BoundaryGeometryOptions, got {type(options).__name__}.")
    search = run_boundary_search(model, images, labels, options, output_transform=output_transform)
    gradient = input_gradient(model, images, labels, output_transform=output_transform)
    ig = integrated_gradients(model, images, labels, 0.0, steps=options.ig_steps, output_transform=output_transform)
    big, delta = integrated_gradients(
        model, images, labels, search.points, steps=options.ig_steps, output_transform=output_transform,
        return_delta=True,
    )
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=images.device)
    return BoundaryGeometryResult(
        search=search,
        gradient=gradient,
        integrated_gradients=ig,
        big=big,
        cos_gradient_boundary=torch.where(search.found, cosine_per_sample(gradient, images.detach() - search.points), nan),
        cos_ig_big=torch.where(search.found, cosine_per_sample(ig, big), nan),
        big_completeness_error=delta.to(torch.float64),
    )


def cosine_per_sample(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of each pair of flattened samples, in float64 (0 where either is zero).

    Example:
        >>> cosine_per_sample(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[2.0, 0.0], [0.0, -3.0]])).tolist()
        [1.0, -1.0]
    """
    a, b = a.flatten(1).to(torch.float64), b.flatten(1).to(torch.float64)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-300)
