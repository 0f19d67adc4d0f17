"""Attributions of a whole image set in batches, as DiffROAR ranks them: input gradients, a random ranking or any
``(model, images, labels) -> attributions`` callable."""

from collections.abc import Callable
from functools import partial
from typing import Any, Literal, Optional, Union

import torch
from torch import Tensor, nn

from iaside_lightning.functional.checks import check_images_and_labels, check_positive_int, model_device
from iaside_lightning.functional.gradients import input_gradient
from iaside_lightning.functional.sanity.unmasking import random_attributions

__all__ = ["AttributionMethod", "check_attribution_method", "compute_attributions"]

AttributionMethod = Union[Literal["gradient", "random"], Callable[[nn.Module, Tensor, Tensor], Tensor]]


def check_attribution_method(method: AttributionMethod, name: str = "method") -> None:
    """Raise a clear error unless ``method`` is ``"gradient"``, ``"random"`` or a callable; errors name ``name``.

    Example:
        >>> check_attribution_method("saliency")
        Traceback (most recent call last):
        ...
        ValueError: `method` must be 'gradient', 'random' or a callable (model, images, labels), got 'saliency'.
    """
    if not (method in ("gradient", "random") if isinstance(method, str) else callable(method)):
        raise ValueError(
            f"`{name}` must be 'gradient', 'random' or a callable (model, images, labels), got {method!r}."
        )


def compute_attributions(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    method: AttributionMethod = "gradient",
    *,
    batch_size: int = 256,
    seed: int = 0,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
) -> Tensor:
    """Attributions of ``images`` in batches: input gradients of the true-class logit, a random ranking, or your own.

    Args:
        model: the model under test; batches are moved to its device and results back to that of ``images``.
        images: images ``[N, C, H, W]`` as the model sees them.
        labels: true classes ``[N]``.
        method: ``"gradient"`` (:func:`~iaside_lightning.functional.gradients.input_gradient`), ``"random"``
            (:func:`~iaside_lightning.functional.sanity.unmasking.random_attributions` with ``seed``, the DiffROAR
            baseline) or a callable ``(model, images, labels) -> attributions`` applied per batch.
        batch_size: images per batch.
        seed: seed of ``"random"``.
        output_transform: maps the model output to logits (``"gradient"`` only).

    Returns:
        Attributions with the shape of ``images``, on its device, detached.

    Raises:
        TypeError: if ``images``, ``labels`` or ``batch_size`` have the wrong type.
        ValueError: if ``method`` is unknown, ``batch_size < 1`` or a callable returns the wrong shape.

    Example:
        >>> linear = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
        >>> grads = compute_attributions(linear, x, y, batch_size=2)
        >>> torch.allclose(grads.flatten(1), linear[1].weight[y])
        True
    """
    check_images_and_labels(images, labels)
    check_positive_int(batch_size, "batch_size")
    check_attribution_method(method)
    if method == "random":
        return random_attributions(images.shape, seed=seed, dtype=images.dtype, device=images.device)
    attribute = partial(input_gradient, output_transform=output_transform) if method == "gradient" else method
    device = model_device(model, images)
    chunks = []
    for x, y in zip(images.split(batch_size), labels.split(batch_size)):
        chunk = attribute(model, x.to(device), y.to(device))
        if not isinstance(chunk, Tensor) or chunk.shape != x.shape:
            got = tuple(chunk.shape) if isinstance(chunk, Tensor) else type(chunk).__name__
            raise ValueError(f"The attribution `method` must return a tensor of shape {tuple(x.shape)}, got {got}.")
        chunks.append(chunk.detach().to(images.device))
    return torch.cat(chunks)
