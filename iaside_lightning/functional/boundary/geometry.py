"""Decision-boundary geometry of a classifier around its inputs: distance, gradient alignment, IG vs BIG.

Wang, Fredrikson and Datta (ICML 2022): robust models have smoother boundaries, so their input gradient at ``x``
already points along the normal of the nearest boundary, ``x - x'``; and integrated gradients from a black image
(IG) then resemble boundary attributions (BIG). :func:`boundary_geometry` measures both per sample, with the
distance to the boundary, from one boundary search.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.boundary.attributions import integrated_gradients
from iaside_lightning.functional.boundary.search import (
    PAPER_EPSILONS,
    Bounds,
    BoundarySearchResult,
    Norm,
    boundary_search,
    check_search_options,
)
from iaside_lightning.functional.gradients import input_gradient

__all__ = ["BOUNDARY_PRESETS", "BoundaryGeometryResult", "Preset", "boundary_geometry", "cosine_per_sample", "geometry_options"]

Preset = Literal["fast", "paper"]

#: Search and attribution settings. "paper": the authors' defaults (L2 ladder up to 1.1, 40 steps, about 290
#: forward+backward passes per image at worst). "fast": for tracking during training, L2 epsilons 1, 2, 4, 8 x 8
#: steps with per-sample early stop, 8 bisection steps and 10 IG steps (at most ~60 passes per image, typically ~35);
#: its ladder suits standardised inputs of a few hundred to a few thousand values, such as MNIST-sized images. The
#: fast preset starts PGD at ``x`` itself: a random start adds an isotropic offset of up to ``epsilon`` to
#: ``x - x'``, which lowers ``cos_gradient_boundary`` the more, the larger the epsilon a sample needs (on BlockMNIST
#: it hid the alignment of robust models), and adds epoch-to-epoch noise.
BOUNDARY_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "epsilons": PAPER_EPSILONS, "norm": "l2", "steps": 40, "random_start": True, "bisection_steps": 0, "ig_steps": 10
    },
    "fast": {
        "epsilons": (1.0, 2.0, 4.0, 8.0), "norm": "l2", "steps": 8, "random_start": False, "bisection_steps": 8,
        "ig_steps": 10,
    },
}


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

    Options left as None come from ``preset`` (:data:`BOUNDARY_PRESETS`). Only correctly classified samples whose
    search succeeded get a distance and cosines; the others are NaN and counted by ``search.found`` /
    ``search.correct``. The model runs in eval mode (modes restored), parameters' ``.grad`` and the global RNG are
    untouched.

    Args:
        model: classifier mapping ``[N, C, H, W]`` inputs to ``[N, K]`` logits.
        images: model inputs ``[N, C, H, W]``.
        labels: true classes ``[N]``.
        preset: ``"fast"`` (training-time tracking) or ``"paper"`` (the authors' settings).
        epsilons: ascending attack radii (input units).
        norm: ``"l2"`` or ``"linf"``.
        steps: PGD steps per epsilon.
        bisection_steps: bisection steps onto the boundary.
        ig_steps: integration points of IG and BIG.
        random_start: start each PGD run from a random point of the ball (default: the preset's).
        bounds: ``(low, high)`` box of valid inputs.
        output_transform: maps the model output to logits.
        seed: seed of the random starts.

    Returns:
        A :class:`BoundaryGeometryResult`.

    Raises:
        ValueError: for an unknown preset or an invalid option.

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
    options = geometry_options(preset, epsilons, norm, steps, random_start, bisection_steps, ig_steps, bounds)
    search = boundary_search(
        model, images, labels, epsilons=options["epsilons"], norm=options["norm"], steps=options["steps"],
        random_start=options["random_start"], bisection_steps=options["bisection_steps"], bounds=bounds,
        output_transform=output_transform, seed=seed,
    )
    gradient = input_gradient(model, images, labels, output_transform=output_transform)
    ig = integrated_gradients(model, images, labels, 0.0, steps=options["ig_steps"], output_transform=output_transform)
    big, delta = integrated_gradients(
        model, images, labels, search.points, steps=options["ig_steps"], output_transform=output_transform,
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


def geometry_options(
    preset: Preset = "fast",
    epsilons: Optional[Sequence[float]] = None,
    norm: Optional[Norm] = None,
    steps: Optional[int] = None,
    random_start: Optional[bool] = None,
    bisection_steps: Optional[int] = None,
    ig_steps: Optional[int] = None,
    bounds: Optional[Bounds] = None,
) -> dict[str, Any]:
    """The preset's options with the given ones (not None) on top, all validated; errors name the argument.

    Example:
        >>> geometry_options("fast", steps=4)["steps"], geometry_options("paper")["random_start"]
        (4, True)
    """
    if preset not in BOUNDARY_PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(BOUNDARY_PRESETS)}, got {preset!r}.")
    given = {
        "epsilons": epsilons, "norm": norm, "steps": steps, "random_start": random_start, "bisection_steps": bisection_steps,
        "ig_steps": ig_steps,
    }
    options = BOUNDARY_PRESETS[preset] | {k: v for k, v in given.items() if v is not None}
    check_search_options(options["epsilons"], options["norm"], options["steps"], options["bisection_steps"], bounds)
    if not isinstance(options["random_start"], bool):
        raise ValueError(f"`random_start` must be True or False, got {options['random_start']!r}.")
    if isinstance(options["ig_steps"], bool) or not isinstance(options["ig_steps"], int) or options["ig_steps"] < 2:
        raise ValueError(f"`ig_steps` must be an integer >= 2 (points on the integration path), got {options['ig_steps']!r}.")
    return options


def cosine_per_sample(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of each pair of flattened samples, in float64 (0 where either is zero).

    Example:
        >>> cosine_per_sample(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[2.0, 0.0], [0.0, -3.0]])).tolist()
        [1.0, -1.0]
    """
    a, b = a.flatten(1).to(torch.float64), b.flatten(1).to(torch.float64)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-300)
