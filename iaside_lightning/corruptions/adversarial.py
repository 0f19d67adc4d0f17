"""L-inf adversarial perturbations of a classifier: FGSM and PGD, computed in pixel space.

The model may expect normalised inputs: pass the ``normalization=(mean, std)`` it was trained with and give the
attack pixel-space images in ``[0, 1]``. The perturbation is then bounded by ``epsilon`` in pixel units and the
adversarial images are clipped to ``[0, 1]``, as in the paper's threat model.
"""

from collections.abc import Callable, Sequence
from typing import Optional

import torch
from torch import Tensor, nn

from iaside_lightning.functional.engine import parse_normalization
from iaside_lightning.functional.model_mode import evaluation_mode

__all__ = ["fgsm", "pgd"]


def pgd(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    labels: Tensor,
    epsilon: float,
    *,
    steps: int = 10,
    step_size: Optional[float] = None,
    random_start: bool = True,
    normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None,
    seed: int = 0,
) -> Tensor:
    """Projected gradient descent on the cross-entropy within an L-inf ball (Madry et al., 2018).

    Each step moves every pixel by ``step_size`` in the direction of the sign of the loss gradient, then projects
    back onto ``|x' - x| <= epsilon`` and ``[0, 1]``. The model runs in eval mode (each module's mode is restored
    afterwards) and only the input gradient is computed: parameters' ``.grad`` are left untouched. Works inside
    :func:`torch.no_grad` and :func:`torch.inference_mode` blocks.

    Args:
        model: classifier mapping (normalised) images ``[B, C, H, W]`` to logits ``[B, K]``.
        images: clean pixel-space images ``[B, C, H, W]`` in ``[0, 1]``.
        labels: true classes ``[B]``.
        epsilon: L-inf radius in pixel units (e.g. 0.1 for MNIST), ``>= 0``.
        steps: number of gradient steps.
        step_size: step in pixel units; default ``2.5 * epsilon / steps``.
        random_start: start from a uniformly drawn point of the ball (seeded) rather than from ``images``.
        normalization: per-channel ``(mean, std)`` the model expects its inputs normalised with.
        seed: seed of the random start.

    Returns:
        Adversarial pixel-space images, same shape and dtype, detached, with ``|x' - x| <= epsilon`` and in
        ``[0, 1]``.

    Raises:
        TypeError: if ``images`` or ``labels`` have the wrong type.
        ValueError: if a shape or a number is out of range.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
        >>> adv = pgd(model, x, y, epsilon=0.05, steps=5, normalization=([0.5], [0.25]))
        >>> bool((adv - x).abs().max() <= 0.05 + 1e-6), bool(adv.min() >= 0), bool(adv.max() <= 1)
        (True, True, True)
    """
    _check(images, labels, epsilon, steps)
    step = 2.5 * epsilon / steps if step_size is None else step_size
    if not step > 0:
        raise ValueError(f"`step_size` must be positive, got {step_size!r}.")
    with evaluation_mode(model, gradients=True):  # tensors made inside, so that inference tensors from outside never enter autograd
        norm = parse_normalization(normalization, images)
        clean, targets = images.detach().clone(), labels.to(images.device).clone()
        if random_start:
            start = torch.rand(clean.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
            adv = (clean + epsilon * (2 * start.to(clean) - 1)).clamp(0.0, 1.0)
        else:
            adv = clean.clone()
        for _ in range(steps):
            adv.requires_grad_(True)
            inputs = adv if norm is None else (adv - norm[0][:, None, None]) / norm[1][:, None, None]
            loss = nn.functional.cross_entropy(model(inputs), targets, reduction="sum")
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach() + step * grad.sign()
            adv = torch.minimum(torch.maximum(adv, clean - epsilon), clean + epsilon).clamp(0.0, 1.0)
    return adv.detach()


def fgsm(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    labels: Tensor,
    epsilon: float,
    *,
    normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None,
) -> Tensor:
    """Fast gradient sign method (Goodfellow et al., 2015): one step of ``epsilon`` along the sign of the gradient.

    The same as :func:`pgd` with ``steps=1``, ``step_size=epsilon`` and no random start.

    Args:
        model: classifier mapping (normalised) images ``[B, C, H, W]`` to logits ``[B, K]``.
        images: clean pixel-space images ``[B, C, H, W]`` in ``[0, 1]``.
        labels: true classes ``[B]``.
        epsilon: L-inf radius in pixel units, ``>= 0``.
        normalization: per-channel ``(mean, std)`` the model expects its inputs normalised with.

    Returns:
        Adversarial pixel-space images in ``[0, 1]`` with ``|x' - x| <= epsilon``.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x = torch.full((1, 1, 8, 8), 0.5)
        >>> moved = (fgsm(model, x, torch.tensor([1]), epsilon=0.1) - x).abs()
        >>> bool(torch.allclose(moved, torch.full_like(x, 0.1)))  # every pixel moves by epsilon
        True
    """
    return pgd(
        model, images, labels, epsilon, steps=1, step_size=epsilon, random_start=False, normalization=normalization
    )


def _check(images: Tensor, labels: Tensor, epsilon: float, steps: int) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise TypeError(f"`images` must be a 4-D floating-point tensor [B, C, H, W] in [0, 1], got {got}.")
    if images.numel() and not bool(((images >= 0) & (images <= 1)).all()):
        raise ValueError(
            "`images` must be pixel-space images in [0, 1]; undo the normalisation and pass it as `normalization`."
        )
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.shape != images.shape[:1]:
        raise TypeError(f"`labels` must be an integer tensor of shape [{images.shape[0]}], got {labels!r:.80}.")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon >= 0:
        raise ValueError(f"`epsilon` must be a non-negative number (L-inf radius in pixel units), got {epsilon!r}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}.")
