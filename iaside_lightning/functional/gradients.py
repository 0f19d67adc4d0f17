"""Input gradients of the true-class logit: the plain saliency map that boundary attributions improve on."""

from collections.abc import Callable
from typing import Any, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.model_mode import evaluation_mode
from iaside_lightning.functional.values import check_logits

__all__ = ["check_images_and_labels", "checked_logits", "input_gradient"]


def input_gradient(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    *,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
) -> Tensor:
    """Gradient of the true-class logit ``f_y(x)`` with respect to the input, per sample.

    The model runs in eval mode (each module's own mode is restored afterwards); only the input gradient is computed,
    so parameters' ``.grad`` are untouched. Works inside ``torch.no_grad`` and ``torch.inference_mode`` blocks.

    Args:
        model: classifier mapping ``[N, C, H, W]`` inputs to ``[N, K]`` logits (see ``output_transform``).
        images: model inputs ``[N, C, H, W]`` (as the model sees them, i.e. already normalised).
        labels: true classes ``[N]``.
        output_transform: maps the model output to logits, e.g. ``lambda out: out["logits"]``.

    Returns:
        ``d f_y / d x`` with the shape and dtype of ``images``, detached.

    Raises:
        TypeError: if ``images`` or ``labels`` have the wrong type, or the model output is not a logits tensor.
        ValueError: if a shape is wrong or a label is out of range.

    Example:
        >>> linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 2])
        >>> grad = input_gradient(linear, x, y)
        >>> torch.allclose(grad.flatten(1), linear[1].weight[y])  # a linear model's gradient is its weight row
        True
    """
    check_images_and_labels(images, labels)
    with evaluation_mode(model, gradients=True):  # clones made here are plain tensors even under inference mode
        inputs = images.detach().clone().requires_grad_(True)
        targets = labels.detach().clone()
        logits = checked_logits(model, inputs, targets, output_transform)
        (grad,) = torch.autograd.grad(logits.gather(1, targets.to(logits.device)[:, None]).sum(), inputs)
    return grad.detach()


def checked_logits(
    model: Callable[[Tensor], Any], inputs: Tensor, labels: Tensor, output_transform: Optional[Callable[[Any], Tensor]]
) -> Tensor:
    """The model's ``[N, K]`` logits, checked (clear errors for dicts, wrong shapes, NaN, labels out of range)."""
    output = model(inputs)
    logits = check_logits(output if output_transform is None else output_transform(output), inputs.shape[0])
    if bool(((labels < 0) | (labels >= logits.shape[1])).any()):
        raise ValueError(f"`labels` must lie in [0, {logits.shape[1] - 1}] (the model has {logits.shape[1]} classes).")
    return logits


def check_images_and_labels(images: Tensor, labels: Tensor) -> None:
    """Raise a clear error unless ``images`` is a floating ``[N, C, H, W]`` tensor and ``labels`` integer ``[N]``."""
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise TypeError(f"`images` must be a 4-D floating-point tensor [N, C, H, W], got {got}.")
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.shape != images.shape[:1]:
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise TypeError(f"`labels` must be an integer tensor of shape [{images.shape[0]}] (one class per image), got {got}.")
