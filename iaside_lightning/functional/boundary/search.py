"""Nearest decision-boundary points: PGD over an ascending epsilon ladder with per-sample early stop, then bisection.

Wang, Fredrikson and Datta (ICML 2022) explain a prediction from the closest point ``x'`` on the decision boundary.
:func:`boundary_search` finds one per sample: untargeted PGD on the true label, run for each epsilon of an ascending
ladder on the samples not flipped yet, keeping per sample the first iterate that changes the prediction (so a
sample stops as soon as it flips, within a ladder rung as well as across rungs). Optional bisection on the segment
``[x, x']`` then moves ``x'`` onto the boundary to a given tolerance.

Why not Captum's ``captum.robust.PGD``: it runs every step for every sample and returns the last iterate, with one
scalar radius and scalar box bounds. A boundary search needs the first flipping iterate per sample (the last one
can be far past the boundary, or back on the right side of it), and per-channel box bounds for normalised inputs.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.attacks import Bounds, Norm, pgd_attack
from iaside_lightning.functional.boundary.options import (
    PAPER_EPSILONS,
    SEARCH_OPTIONS,
    BoundarySearchOptions,
    document_options,
)
from iaside_lightning.functional.checks import check_images_and_labels, checked_logits
from iaside_lightning.functional.model_mode import evaluation_mode

__all__ = ["BoundarySearchResult", "boundary_search", "run_boundary_search"]


@dataclass
class BoundarySearchResult:
    """Per-sample outcome of :func:`boundary_search`.

    Attributes:
        points: boundary points ``x'`` ``[N, C, H, W]``; equal to the input where ``found`` is False.
        found: bool ``[N]``: the attack flipped a correctly classified sample.
        correct: bool ``[N]``: the model classified the clean input correctly (only those are searched).
        epsilon: ``[N]`` the smallest ladder epsilon that flipped the sample, NaN where not found.
        distance: ``[N]`` L2 distance ``||x - x'||``, NaN where not found.
    """

    points: Tensor
    found: Tensor
    correct: Tensor
    epsilon: Tensor
    distance: Tensor

    @property
    def success_rate(self) -> float:
        """Share of correctly classified samples for which a boundary point was found (NaN if none was correct)."""
        return float(self.found.sum() / self.correct.sum()) if bool(self.correct.any()) else float("nan")


@document_options(*SEARCH_OPTIONS)
def boundary_search(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    *,
    epsilons: Sequence[float] = PAPER_EPSILONS,
    norm: Norm = "l2",
    steps: int = 40,
    step_size_factor: float = 2.0,
    random_start: bool = True,
    bisection_steps: int = 0,
    bounds: Optional[Bounds] = None,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
    seed: int = 0,
) -> BoundarySearchResult:
    """Find, per sample, a nearby point where the prediction flips: PGD over an ascending epsilon ladder.

    Only correctly classified samples are searched. For each epsilon, in ascending order, :func:`pgd_attack` runs with
    ``stop_at_flip=True`` on the samples not flipped yet (step ``step_size_factor * epsilon / steps``), so each
    sample keeps the first flipping iterate at the smallest epsilon that works. Samples that no epsilon flips are
    reported as not found (``found`` False, NaN distance), never mixed in. With ``bisection_steps > 0`` the point is
    then moved along the segment ``[x, x']`` to the misclassified end of a bracket of relative length
    ``2 ** -bisection_steps`` around the boundary.

    The paper's preset is the default: L2, :data:`PAPER_EPSILONS`, 40 steps, random start (about 290 forward and
    backward passes per image in the worst case).

    Args:
        model: classifier mapping ``[N, C, H, W]`` inputs to ``[N, K]`` logits.
        images: model inputs ``[N, C, H, W]``.
        labels: true classes ``[N]``.
        {options}
        output_transform: maps the model output to logits.

    Returns:
        A :class:`BoundarySearchResult`.

    Raises:
        TypeError: for wrongly typed images, labels, ``random_start`` or ``seed``.
        ValueError: for an out-of-range option (see :class:`BoundarySearchOptions`).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> x = torch.rand(8, 1, 4, 4)
        >>> y = model(x).argmax(1)  # all correctly classified
        >>> result = boundary_search(model, x, y, epsilons=[0.5, 1.0, 4.0], steps=10, bisection_steps=8)
        >>> result.success_rate
        1.0
        >>> bool((result.distance <= result.epsilon + 1e-6).all())
        True
    """
    options = BoundarySearchOptions(
        epsilons=epsilons, norm=norm, steps=steps, step_size_factor=step_size_factor, random_start=random_start,
        bisection_steps=bisection_steps, bounds=bounds, seed=seed,
    )
    return run_boundary_search(model, images, labels, options, output_transform=output_transform)


def run_boundary_search(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    options: BoundarySearchOptions,
    *,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
) -> BoundarySearchResult:
    """:func:`boundary_search` with its options already validated in a :class:`BoundarySearchOptions`.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> x = torch.rand(3, 1, 4, 4)
        >>> options = BoundarySearchOptions(epsilons=(1.0, 8.0), steps=10, random_start=False)
        >>> run_boundary_search(model, x, model(x).argmax(1), options).found.tolist()
        [True, True, True]
    """
    if not isinstance(options, BoundarySearchOptions):
        raise TypeError(f"`options` must be a BoundarySearchOptions, got {type(options).__name__}.")
    check_images_and_labels(images, labels)
    clean = images.detach()
    targets = labels.to(clean.device)
    with evaluation_mode(model):
        correct = checked_logits(model, clean, targets, output_transform).argmax(1) == targets
    points = clean.clone()
    found = torch.zeros(len(clean), dtype=torch.bool, device=clean.device)
    epsilon_found = torch.full((len(clean),), float("nan"), dtype=torch.float64, device=clean.device)
    for rung, eps in enumerate(options.epsilons):
        todo = torch.nonzero(correct & ~found).flatten()
        if todo.numel() == 0:
            break
        adv, flipped = pgd_attack(
            model, clean[todo], targets[todo], eps, norm=options.norm, steps=options.steps,
            step_size=options.step_size_factor * eps / options.steps, random_start=options.random_start,
            bounds=options.bounds, stop_at_flip=True, output_transform=output_transform, seed=options.seed + 7919 * rung,
        )
        hit = todo[flipped]
        points[hit], found[hit], epsilon_found[hit] = adv[flipped], True, eps
    if options.bisection_steps and bool(found.any()):
        hit = torch.nonzero(found).flatten()
        points[hit] = _bisect(model, clean[hit], points[hit], targets[hit], options.bisection_steps, output_transform)
    distance = (clean - points).flatten(1).to(torch.float64).norm(dim=1)
    distance[~found] = float("nan")
    return BoundarySearchResult(points=points, found=found, correct=correct, epsilon=epsilon_found, distance=distance)


def _bisect(
    model: Callable[[Tensor], Any],
    clean: Tensor,
    adversarial: Tensor,
    labels: Tensor,
    steps: int,
    output_transform: Optional[Callable[[Any], Tensor]],
) -> Tensor:
    """Shrink ``[0, 1]`` along ``clean + t (adversarial - clean)`` keeping ``t = low`` correct and ``t = high`` wrong."""
    low = torch.zeros(len(clean), dtype=clean.dtype, device=clean.device)
    high = torch.ones_like(low)
    direction = adversarial - clean
    shape = (-1,) + (1,) * (clean.ndim - 1)
    with evaluation_mode(model):
        for _ in range(steps):
            middle = (low + high) / 2
            out = model(clean + middle.view(shape) * direction)
            wrong = (out if output_transform is None else output_transform(out)).argmax(1) != labels
            high = torch.where(wrong, middle, high)
            low = torch.where(wrong, low, middle)
    return clean + high.view(shape) * direction
