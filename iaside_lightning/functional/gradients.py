"""Input gradients of the true-class logit: the plain saliency map that boundary attributions improve on."""

from collections.abc import Callable
from typing import Any, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.checks import check_images_and_labels, checked_logits
from iaside_lightning.functional.model_mode import evaluation_mode

__all__ = ["input_gradient"]


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
        ValueError: if a shape is wrong, the batch is empty, an image is not finite or a label is out of range.

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
