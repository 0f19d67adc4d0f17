"""L-inf adversarial perturbations of a classifier: FGSM and PGD, computed in pixel space.

Both run :func:`~iaside_lightning.functional.attacks.pgd_attack` (the package's one PGD) on the model with
the normalisation in front of it.

The model may expect normalised inputs: pass the ``normalization=(mean, std)`` it was trained with and give the
attack pixel-space images in ``[0, 1]``. The perturbation is then bounded by ``epsilon`` in pixel units and the
adversarial images are clipped to ``[0, 1]``, as in the paper's threat model.
"""

from collections.abc import Callable, Sequence
from typing import Optional

from torch import Tensor, nn

from iaside_lightning.functional.attacks import check_attack_options, pgd_attack
from iaside_lightning.functional.checks import check_images_and_labels, parse_normalization

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
        TypeError: if ``images``, ``labels`` or ``steps`` have the wrong type.
        ValueError: if a shape or a number is out of range.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
        >>> adv = pgd(model, x, y, epsilon=0.05, steps=5, normalization=([0.5], [0.25]))
        >>> bool((adv - x).abs().max() <= 0.05 + 1e-6), bool(adv.min() >= 0), bool(adv.max() <= 1)
        (True, True, True)
    """
    _check_pixels(images, labels)
    check_attack_options(epsilon, "linf", steps, step_size)
    step = 2.5 * epsilon / steps if step_size is None else step_size
    norm = parse_normalization(normalization, images)
    attacked = model if norm is None else _Normalized(model, *norm)
    adversarial, _ = pgd_attack(
        attacked, images, labels, epsilon, norm="linf", steps=steps, step_size=step, random_start=random_start,
        bounds=(0.0, 1.0), seed=seed,
    )
    return adversarial


class _Normalized(nn.Module):
    """``model((x - mean) / std)``: the attack runs in pixel space; ``model``'s modes are managed with this module's."""

    def __init__(self, model: Callable[[Tensor], Tensor], mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean[:, None, None], persistent=False)
        self.register_buffer("std", std[:, None, None], persistent=False)

    def forward(self, pixels: Tensor) -> Tensor:
        return self.model((pixels - self.mean) / self.std)


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
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x = torch.full((1, 1, 8, 8), 0.5)
        >>> moved = (fgsm(model, x, torch.tensor([1]), epsilon=0.1) - x).abs()
        >>> bool(torch.allclose(moved, torch.full_like(x, 0.1)))  # every pixel moves by epsilon
        True
    """
    return pgd(
        model, images, labels, epsilon, steps=1, step_size=epsilon, random_start=False, normalization=normalization
    )


def _check_pixels(images: Tensor, labels: Tensor) -> None:
    check_images_and_labels(images, labels)
    if not bool(((images >= 0) & (images <= 1)).all()):
        raise ValueError(
            "`images` must be pixel-space images in [0, 1]; undo the normalisation and pass it as `normalization`."
        )
