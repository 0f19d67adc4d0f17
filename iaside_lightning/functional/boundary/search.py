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
from typing import Any, Literal, Optional, Union

import torch
from torch import Tensor, nn

from iaside_lightning.functional.checks import check_images_and_labels, checked_logits
from iaside_lightning.functional.model_mode import evaluation_mode

__all__ = ["PAPER_EPSILONS", "BoundarySearchResult", "Norm", "boundary_search", "check_search_options", "pgd_attack"]

Norm = Literal["l2", "linf"]
Bounds = tuple[Union[float, Sequence[float], Tensor], Union[float, Sequence[float], Tensor]]

#: The authors' L2 epsilon ladder (in the model's input space).
PAPER_EPSILONS: tuple[float, ...] = (36 / 255, 64 / 255, 0.3, 0.5, 0.7, 0.9, 1.1)


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


def pgd_attack(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    epsilon: float,
    *,
    norm: Norm = "l2",
    steps: int = 10,
    step_size: Optional[float] = None,
    random_start: bool = True,
    bounds: Optional[Bounds] = None,
    stop_at_flip: bool = False,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Untargeted projected gradient ascent on the cross-entropy of the true label, in an L2 or L-inf ball.

    Each step moves along the normalised gradient (L2) or its sign (L-inf) by ``step_size``, then projects onto the
    ball ``||x' - x|| <= epsilon`` and into ``bounds``. The model runs in eval mode (each module's mode is restored)
    and only input gradients are computed, so parameters' ``.grad`` are untouched; the random start uses its own
    seeded generator, never the global RNG.

    Args:
        model: classifier mapping ``[N, C, H, W]`` inputs to ``[N, K]`` logits.
        images: model inputs ``[N, C, H, W]``.
        labels: true classes ``[N]``.
        epsilon: radius of the ball in input units, ``>= 0``.
        norm: ``"l2"`` or ``"linf"``.
        steps: gradient steps.
        step_size: step length; default ``2 * epsilon / steps``.
        random_start: start from a random point of the ball (uniform radius, uniform direction) instead of ``x``.
        bounds: ``(low, high)`` box of valid inputs, scalars or per-channel sequences (e.g. ``(0, 1)`` for pixels).
        stop_at_flip: freeze each sample at the first iterate (the random start included) whose prediction is not
            the true label.
        output_transform: maps the model output to logits.
        seed: seed of the random start.

    Returns:
        ``(adversarial, flipped)``: the final (or, with ``stop_at_flip``, first flipping) iterates ``[N, C, H, W]``,
        detached, and a bool ``[N]`` telling whether the model misclassifies them.

    Raises:
        TypeError: for wrongly typed images or labels.
        ValueError: for an out-of-range option.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> adv, flipped = pgd_attack(model, x, y, epsilon=0.5, norm="l2", steps=5)
        >>> bool(((adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-6).all()), flipped.dtype
        (True, torch.bool)
    """
    check_images_and_labels(images, labels)
    _check_attack(epsilon, norm, steps, step_size)
    step = 2 * epsilon / steps if step_size is None else step_size
    with evaluation_mode(model, gradients=True):
        clean = images.detach().clone()
        targets = labels.to(clean.device).clone()
        low, high = _bounds(bounds, clean)
        adv = _clip(clean + _random_delta(clean, epsilon, norm, seed), low, high) if random_start else clean.clone()
        flipped = torch.zeros(len(clean), dtype=torch.bool, device=clean.device)
        active = torch.arange(len(clean), device=clean.device)
        for i in range(steps + 1):
            inputs = adv[active].requires_grad_(True)
            logits = checked_logits(model, inputs, targets[active], output_transform)
            wrong = logits.argmax(1) != targets[active]
            flipped[active] = wrong
            keep = ~wrong if stop_at_flip else torch.ones_like(wrong)
            if i == steps or not bool(keep.any()):
                break
            loss = nn.functional.cross_entropy(logits[keep], targets[active][keep], reduction="sum")
            (grad,) = torch.autograd.grad(loss, inputs)
            moved = inputs.detach()[keep] + step * _direction(grad[keep], norm)
            active = active[keep]
            adv[active] = _clip(_project(moved - clean[active], epsilon, norm) + clean[active], low, high)
    return adv.detach(), flipped


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
        epsilons: ascending radii, in input units.
        norm: ``"l2"`` or ``"linf"``.
        steps: PGD steps per epsilon.
        step_size_factor: step length as a multiple of ``epsilon / steps``.
        random_start: start each PGD run from a random point of the ball.
        bisection_steps: bisection steps onto the boundary (0: none; each costs one forward pass).
        bounds: ``(low, high)`` box of valid inputs, scalars or per-channel sequences.
        output_transform: maps the model output to logits.
        seed: seed of the random starts (each epsilon gets its own stream).

    Returns:
        A :class:`BoundarySearchResult`.

    Raises:
        TypeError: for wrongly typed images or labels.
        ValueError: for an out-of-range option.

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
    check_images_and_labels(images, labels)
    ladder = check_search_options(epsilons, norm, steps, bisection_steps, bounds, step_size_factor)
    clean = images.detach()
    targets = labels.to(clean.device)
    with evaluation_mode(model):
        correct = checked_logits(model, clean, targets, output_transform).argmax(1) == targets
    points = clean.clone()
    found = torch.zeros(len(clean), dtype=torch.bool, device=clean.device)
    epsilon_found = torch.full((len(clean),), float("nan"), dtype=torch.float64, device=clean.device)
    for rung, eps in enumerate(ladder):
        todo = torch.nonzero(correct & ~found).flatten()
        if todo.numel() == 0:
            break
        adv, flipped = pgd_attack(
            model, clean[todo], targets[todo], eps, norm=norm, steps=steps, step_size=step_size_factor * eps / steps,
            random_start=random_start, bounds=bounds, stop_at_flip=True, output_transform=output_transform,
            seed=seed + 7919 * rung,
        )
        hit = todo[flipped]
        points[hit], found[hit], epsilon_found[hit] = adv[flipped], True, eps
    if bisection_steps and bool(found.any()):
        hit = torch.nonzero(found).flatten()
        points[hit] = _bisect(model, clean[hit], points[hit], targets[hit], bisection_steps, output_transform)
    distance = (clean - points).flatten(1).to(torch.float64).norm(dim=1)
    distance[~found] = float("nan")
    return BoundarySearchResult(points=points, found=found, correct=correct, epsilon=epsilon_found, distance=distance)


def check_search_options(
    epsilons: Sequence[float],
    norm: str,
    steps: int,
    bisection_steps: int = 0,
    bounds: Optional[Bounds] = None,
    step_size_factor: float = 2.0,
) -> list[float]:
    """Validate :func:`boundary_search`'s options (e.g. when a callback is built); return the ladder as floats.

    Raises:
        ValueError: naming the first invalid option and what to pass instead.

    Example:
        >>> check_search_options((0.5, 1.0), "l2", 10)
        [0.5, 1.0]
    """
    ladder = _check_ladder(epsilons)
    _check_attack(ladder[0], norm, steps, None)
    if isinstance(bisection_steps, bool) or not isinstance(bisection_steps, int) or bisection_steps < 0:
        raise ValueError(f"`bisection_steps` must be a non-negative integer, got {bisection_steps!r}.")
    if isinstance(step_size_factor, bool) or not (isinstance(step_size_factor, (int, float)) and step_size_factor > 0):
        raise ValueError(f"`step_size_factor` must be a positive number (step = factor * epsilon / steps), got {step_size_factor!r}.")
    if bounds is not None:
        _check_bounds(bounds)
    return ladder


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


def _random_delta(images: Tensor, epsilon: float, norm: Norm, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    if norm == "linf":
        uniform = torch.rand(images.shape, generator=generator, dtype=torch.float64)
        return (epsilon * (2 * uniform - 1)).to(images)
    direction = torch.randn(images.shape, generator=generator, dtype=torch.float64).flatten(1)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
    radius = epsilon * torch.rand(len(images), 1, generator=generator, dtype=torch.float64)
    return (direction * radius).view(images.shape).to(images)


def _direction(grad: Tensor, norm: Norm) -> Tensor:
    if norm == "linf":
        return grad.sign()
    flat = grad.flatten(1)
    return (flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)).view_as(grad)


def _project(delta: Tensor, epsilon: float, norm: Norm) -> Tensor:
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    flat = delta.flatten(1)
    scale = (epsilon / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
    return (flat * scale).view_as(delta)


def _bounds(bounds: Optional[Bounds], images: Tensor) -> tuple[Tensor, Tensor]:
    """``(low, high)`` as ``[1, C, 1, 1]`` tensors (infinite when ``bounds`` is None)."""
    channels = images.shape[1]
    if bounds is None:
        return (torch.full((1, channels, 1, 1), -torch.inf).to(images), torch.full((1, channels, 1, 1), torch.inf).to(images))
    low, high = (b.expand(channels).reshape(1, channels, 1, 1).to(images) for b in _check_bounds(bounds))
    tolerance = 1e-5 * float((high - low).max())
    outside = (images < low - tolerance) | (images > high + tolerance)
    if bool(outside.any()):
        seen = [(round(float(c.min()), 3), round(float(c.max()), 3)) for c in images.transpose(0, 1).flatten(1)]
        raise ValueError(
            f"`images` lie outside `bounds`={bounds!r}: per-channel ranges {seen}. "
            "The attack would first clip the clean images (distances wrong, or no boundary found). Pass the box of "
            "the space the model's inputs live in, e.g. ((0 - mean) / std, (1 - mean) / std) per channel for "
            "normalised images, or bounds=None."
        )
    return low, high


def _check_bounds(bounds: Bounds) -> tuple[Tensor, Tensor]:
    """``(low, high)`` as 1-D float64 tensors (one value, or one per channel), checked: a pair with low < high."""
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"`bounds` must be a pair (low, high) of numbers or per-channel sequences, got {bounds!r}.")
    low, high = (torch.as_tensor(b, dtype=torch.float64) for b in bounds)
    if low.ndim > 1 or high.ndim > 1 or not bool((low < high).all()):
        raise ValueError(f"`bounds` must be (low, high) numbers or per-channel sequences with low < high, got {bounds!r}.")
    return low.flatten(), high.flatten()


def _clip(images: Tensor, low: Tensor, high: Tensor) -> Tensor:
    return torch.maximum(torch.minimum(images, high), low)


def _check_attack(epsilon: float, norm: str, steps: int, step_size: Optional[float]) -> None:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon >= 0:
        raise ValueError(f"`epsilon` must be a non-negative number (radius in input units), got {epsilon!r}.")
    if norm not in ("l2", "linf"):
        raise ValueError(f"`norm` must be 'l2' or 'linf', got {norm!r}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}.")
    if step_size is not None and not (isinstance(step_size, (int, float)) and step_size > 0):
        raise ValueError(f"`step_size` must be a positive number or None (2 * epsilon / steps), got {step_size!r}.")


def _check_ladder(epsilons: Sequence[float]) -> list[float]:
    ladder = [float(e) for e in epsilons] if isinstance(epsilons, (list, tuple)) else None
    if not ladder or any(not e > 0 for e in ladder) or any(b <= a for a, b in zip(ladder, ladder[1:])):
        raise ValueError(f"`epsilons` must be a non-empty, strictly ascending sequence of positive radii, got {epsilons!r}.")
    return ladder
