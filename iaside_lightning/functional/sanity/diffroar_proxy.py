"""A cheap DiffROAR PROXY WITHOUT RETRAINING: the accuracy of the model under test itself on its top-k and bottom-k
unmasked inputs (:func:`~iaside_lightning.evaluation.diffroar` retrains fresh models instead)."""

from collections.abc import Callable, Sequence
from typing import Any, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.checks import check_images_and_labels, checked_logits, model_device
from iaside_lightning.functional.model_mode import evaluation_mode
from iaside_lightning.functional.sanity.diffroar_result import DiffROARResult
from iaside_lightning.functional.sanity.options import DEFAULT_LEVELS, DiffROAROptions, document_options
from iaside_lightning.functional.sanity.unmasking import MaskFill, Per, check_attributions, mask_fill_value, unmask

__all__ = ["diffroar_proxy", "diffroar_proxy_with_options"]


@document_options("levels", "per", "fill", "batch_size")
def diffroar_proxy(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    attributions: Tensor,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    per: Per = "coordinate",
    fill: MaskFill = "mean",
    batch_size: int = 256,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
) -> DiffROARResult:
    """A cheap DiffROAR PROXY WITHOUT RETRAINING: the accuracy of ``model`` itself on its top-k and bottom-k unmasked
    inputs.

    Unlike :func:`~iaside_lightning.evaluation.diffroar`, masked inputs are off the model's training distribution, so
    the values mix the ranking's quality with the model's reaction to the fill (the artefact the paper's retraining
    removes); use it to track a trend during training, not as DiffROAR. The model runs in eval mode under
    :func:`torch.inference_mode` (every module's mode restored, parameters' gradients and BatchNorm statistics
    untouched) with the global RNG streams forked.

    Args:
        model: classifier mapping ``[B, C, H, W]`` to logits ``[B, K]``; batches are moved to its device.
        images: images ``[N, C, H, W]`` as the model sees them.
        labels: true classes ``[N]``.
        attributions: attributions of ``images``, same shape.
        {options}
        output_transform: maps the model output to logits.

    Returns:
        A :class:`~iaside_lightning.functional.sanity.diffroar_result.DiffROARResult` with ``retrained=False`` and
        one "repeat".

    Raises:
        TypeError: if data or attributions have the wrong type, or an option has (see :class:`DiffROAROptions`).
        ValueError: if the shapes disagree or an option is invalid.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(torch.tensor([[-1.0, 0, 0, 0], [1.0, 0, 0, 0]]))  # reads the first pixel
        ...     _ = model[1].bias.zero_()
        >>> labels = torch.arange(8) % 2
        >>> images = torch.zeros(8, 1, 2, 2)
        >>> images[:, 0, 0, 0] = 2.0 * labels - 1
        >>> oracle = torch.zeros_like(images)
        >>> oracle[:, 0, 0, 0] = 1.0
        >>> diffroar_proxy(model, images, labels, oracle, levels=[0.25], fill=0.0).rows()
        [{'k': 0.25, 'top': 1.0, 'bottom': 0.5, 'diff': 0.5, 'std': nan}]
    """
    options = DiffROAROptions(levels=levels, per=per, fill=fill, batch_size=batch_size)
    return diffroar_proxy_with_options(model, images, labels, attributions, options, output_transform)


def diffroar_proxy_with_options(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    attributions: Tensor,
    options: DiffROAROptions,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
) -> DiffROARResult:
    """:func:`diffroar_proxy` with its options already checked: reads ``levels``, ``per``, ``fill`` and
    ``batch_size``; checks the data only.

    Example:
        >>> images, labels = torch.rand(6, 1, 1, 2), torch.arange(6) % 2
        >>> options = DiffROAROptions(levels=(0.5, 1.0), fill=0.0)
        >>> result = diffroar_proxy_with_options(torch.nn.Flatten(), images, labels, images, options)
        >>> result.levels.tolist(), result.top.shape
        ([0.5, 1.0], torch.Size([2, 1]))
    """
    check_images_and_labels(images, labels)
    check_attributions(attributions, images)
    fill = mask_fill_value(options.fill, images)
    device = model_device(model, images)
    top, bottom = (torch.zeros(len(options.levels), 1, dtype=torch.float64) for _ in range(2))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), evaluation_mode(model):
        for i, fraction in enumerate(options.levels):
            for keep, accuracy in (("top", top), ("bottom", bottom)):
                masked = unmask(images, attributions, fraction, keep=keep, per=options.per, fill=fill)
                accuracy[i, 0] = _accuracy(model, masked, labels, options.batch_size, device, output_transform)
    return DiffROARResult(torch.tensor(options.levels, dtype=torch.float64), top, bottom, False, options.per)


def _accuracy(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    batch_size: int,
    device: torch.device,
    output_transform: Optional[Callable[[Any], Tensor]],
) -> float:
    """Share of ``images`` that ``model`` classifies as ``labels``, in batches on ``device``."""
    correct = 0
    for x, y in zip(images.split(batch_size), labels.split(batch_size)):
        logits = checked_logits(model, x.to(device), output_transform=output_transform)
        correct += int((logits.argmax(1) == y.to(device)).sum())
    return correct / len(labels)
