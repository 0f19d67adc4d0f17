"""The package's one PGD: untargeted projected gradient ascent in an L2 or L-inf ball, inside a box of valid inputs.

Used by the boundary search (:mod:`iaside_lightning.functional.boundary`), adversarial training
(:class:`~iaside_lightning.models.AdversarialCNNClassifier`) and the FGSM/PGD corruptions
(:mod:`iaside_lightning.corruptions.adversarial`), which share its option checks.
"""

from collections.abc import Callable, Sequence
from typing import Any, Literal, Optional, Union

import torch
from torch import Tensor, nn

from iaside_lightning.functional.checks import check_images_and_labels, check_positive_int, checked_logits
from iaside_lightning.functional.model_mode import evaluation_mode

__all__ = ["Bounds", "Norm", "check_attack_options", "check_bounds", "pgd_attack"]

Norm = Literal["l2", "linf"]
#: ``(low, high)`` box of valid inputs: numbers, or one value per channel.
Bounds = tuple[Union[float, Sequence[float], Tensor], Union[float, Sequence[float], Tensor]]


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
        TypeError: for wrongly typed images, labels or ``steps``.
        ValueError: for an out-of-range option, or images outside ``bounds``.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
        >>> adv, flipped = pgd_attack(model, x, y, epsilon=0.5, norm="l2", steps=5)
        >>> bool(((adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-6).all()), flipped.dtype
        (True, torch.bool)
    """
    check_images_and_labels(images, labels)
    check_attack_options(epsilon, norm, steps, step_size)
    step = 2 * epsilon / steps if step_size is None else step_size
    with evaluation_mode(model, gradients=True):
        clean = images.detach().clone()
        targets = labels.to(clean.device).clone()
        low, high = _box(bounds, clean)
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


def check_attack_options(
    epsilon: float, norm: str, steps: int, step_size: Optional[float] = None, *, prefix: str = ""
) -> None:
    """Raise a ``ValueError`` naming the first invalid attack option (argument names start with ``prefix``).

    A ``steps`` that is not an ``int`` raises a ``TypeError``
    (:func:`~iaside_lightning.functional.checks.check_positive_int`).

    Example:
        >>> check_attack_options(0.5, "l1", 10, prefix="attack_")
        Traceback (most recent call last):
        ...
        ValueError: `attack_norm` must be 'l2' or 'linf', got 'l1'.
    """
    if not _is_number(epsilon) or not epsilon >= 0:
        raise ValueError(f"`{prefix}epsilon` must be a non-negative number (radius in input units), got {epsilon!r}.")
    if norm not in ("l2", "linf"):
        raise ValueError(f"`{prefix}norm` must be 'l2' or 'linf', got {norm!r}.")
    check_positive_int(steps, f"{prefix}steps")
    if step_size is not None and not (_is_number(step_size) and step_size > 0):
        raise ValueError(f"`{prefix}step_size` must be a positive number, or None for the default step, got {step_size!r}.")


def check_bounds(bounds: Bounds, name: str = "bounds") -> tuple[Tensor, Tensor]:
    """``(low, high)`` as 1-D float64 tensors (one value, or one per channel), checked: a pair with low < high.

    Raises:
        ValueError: naming ``name`` unless ``bounds`` is such a pair.

    Example:
        >>> low, high = check_bounds((0, [1.0, 2.0]))
        >>> low.tolist(), high.tolist()
        ([0.0], [1.0, 2.0])
    """
    expected = f"`{name}` must be a pair (low, high) of numbers or per-channel sequences with low < high, got {bounds!r}."
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(expected)
    try:
        low, high = (torch.as_tensor(b, dtype=torch.float64) for b in bounds)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(expected) from err
    if low.ndim > 1 or high.ndim > 1 or not bool((low < high).all()):
        raise ValueError(expected)
    return low.flatten(), high.flatten()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _box(bounds: Optional[Bounds], images: Tensor) -> tuple[Tensor, Tensor]:
    """``(low, high)`` as ``[1, C, 1, 1]`` tensors (infinite when ``bounds`` is None); the images must lie inside."""
    channels = images.shape[1]
    if bounds is None:
        infinite = torch.full((1, channels, 1, 1), torch.inf)
        return (-infinite).to(images), infinite.to(images)
    low, high = (b.expand(channels).reshape(1, channels, 1, 1).to(images) for b in check_bounds(bounds))
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


def _random_delta(images: Tensor, epsilon: float, norm: Norm, seed: int) -> Tensor:
    """A seeded point of the ball: uniform per coordinate (L-inf) or uniform direction and radius (L2)."""
    generator = torch.Generator().manual_seed(seed)
    if norm == "linf":
        uniform = torch.rand(images.shape, generator=generator, dtype=torch.float64)
        return (epsilon * (2 * uniform - 1)).to(images)
    direction = torch.randn(images.shape, generator=generator, dtype=torch.float64).flatten(1)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
    radius = epsilon * torch.rand(len(images), 1, generator=generator, dtype=torch.float64)
    return (direction * radius).view(images.shape).to(images)


def _direction(grad: Tensor, norm: Norm) -> Tensor:
    """The steepest-ascent direction of unit norm: the gradient's sign (L-inf) or the normalised gradient (L2)."""
    if norm == "linf":
        return grad.sign()
    flat = grad.flatten(1)
    return (flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)).view_as(grad)


def _project(delta: Tensor, epsilon: float, norm: Norm) -> Tensor:
    """``delta`` projected onto the ball of radius ``epsilon``."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    flat = delta.flatten(1)
    scale = (epsilon / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
    return (flat * scale).view_as(delta)


def _clip(images: Tensor, low: Tensor, high: Tensor) -> Tensor:
    return torch.maximum(torch.minimum(images, high), low)
