"""Argument checks that every sub-system shares (images, labels, logits, label range, normalization, devices, counts).

One wording and one exception type per kind of mistake: a wrong type (not a tensor, not floating point, not
integer; ``bool`` is not an integer here) is a ``TypeError``; a wrong shape, an empty batch, a non-finite value or an out-of-range number is a
``ValueError``. Each message names the argument and says what to pass instead.
"""

from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any, Optional

import torch
from torch import Tensor, nn

__all__ = [
    "check_images",
    "check_images_and_labels",
    "check_label_range",
    "check_labels",
    "check_logits",
    "check_non_negative_int",
    "check_normalization",
    "check_positive_int",
    "check_seed",
    "checked_logits",
    "model_device",
    "parse_normalization",
]


def check_images(images: Tensor, name: str = "images", *, finite: bool = True) -> None:
    """Raise a clear error unless ``images`` is a non-empty 4-D floating-point tensor ``[N, C, H, W]`` (finite).

    Example:
        >>> check_images(torch.zeros(2, 3, 4))
        Traceback (most recent call last):
        ...
        TypeError: `images` must be a 4-D floating-point tensor [N, C, H, W], got (2, 3, 4).
    """
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise TypeError(f"`{name}` must be a 4-D floating-point tensor [N, C, H, W], got {got}.")
    if images.shape[0] < 1:
        raise ValueError(f"`{name}` is an empty batch; pass at least one image.")
    if finite and not bool(torch.isfinite(images).all()):
        raise ValueError(f"`{name}` contains NaN or infinite values.")


def check_labels(labels: Tensor, batch_size: int, name: str = "labels") -> None:
    """Raise a clear error unless ``labels`` is an integer tensor of class indices of shape ``[batch_size]``.

    Any integer dtype is accepted (``uint8`` included); ``bool``, floating-point and complex labels are refused.

    Example:
        >>> check_labels(torch.zeros(2, 3), 2)
        Traceback (most recent call last):
        ...
        TypeError: `labels` must be an integer tensor [N] of class indices, got dtype torch.float32.
    """
    if not isinstance(labels, Tensor):
        raise TypeError(f"`{name}` must be an integer tensor [N] of class indices, got {type(labels).__name__}.")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"`{name}` must be an integer tensor [N] of class indices, got dtype {labels.dtype}.")
    if labels.shape != (batch_size,):
        raise ValueError(
            f"`{name}` must have shape [N] = [{batch_size}] matching the images, got {tuple(labels.shape)}. "
            "Pass class indices, not one-hot vectors."
        )


def check_images_and_labels(images: Tensor, labels: Tensor, *, finite: bool = True) -> None:
    """:func:`check_images` then :func:`check_labels` for the same batch."""
    check_images(images, finite=finite)
    check_labels(labels, images.shape[0])


def check_label_range(labels: Tensor, num_classes: int) -> None:
    """Raise a clear error unless every label lies in ``[0, num_classes)``.

    Example:
        >>> check_label_range(torch.tensor([0, 3]), 3)
        Traceback (most recent call last):
        ...
        ValueError: `labels` must lie in [0, 3) for a model with 3 classes, got values from 0 to 3.
    """
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"`labels` must lie in [0, {num_classes}) for a model with {num_classes} classes, got values from "
            f"{int(labels.min())} to {int(labels.max())}."
        )


def check_logits(logits: object, batch_size: int, what: str = "model output") -> Tensor:
    """Raise a clear error unless ``logits`` is a finite ``[batch_size, num_classes >= 2]`` floating tensor."""
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"The {what} must be a logits tensor [batch, classes], got {type(logits).__name__}. Pass "
            "`output_transform` (e.g. `lambda out: out['logits']`) to pick the logits from a dict or tuple."
        )
    if logits.ndim != 2 or logits.shape[0] != batch_size or logits.shape[1] < 2:
        raise ValueError(
            f"The {what} must be logits of shape [batch={batch_size}, classes>=2], got {tuple(logits.shape)}. Pass "
            "`output_transform` to turn the output into such logits (a binary classifier needs 2 logits)."
        )
    if not logits.is_floating_point():
        raise TypeError(f"The {what} must be floating-point logits, got dtype {logits.dtype}.")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(
            f"The {what} contains NaN or infinite logits; every score computed from them would be meaningless. "
            "Check the model (e.g. its numerical stability on the images it was given: band-filtered, blank or "
            "attacked ones) and its input dtype."
        )
    return logits


def checked_logits(
    model: Callable[[Tensor], Any],
    inputs: Tensor,
    labels: Optional[Tensor] = None,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
) -> Tensor:
    """The model's ``[N, K]`` logits on ``inputs``, checked with :func:`check_logits` (and the labels' range)."""
    output = model(inputs)
    logits = check_logits(output if output_transform is None else output_transform(output), inputs.shape[0])
    if labels is not None:
        check_label_range(labels, logits.shape[1])
    return logits


def check_normalization(
    normalization: Optional[tuple[Sequence[float], Sequence[float]]],
) -> Optional[tuple[Tensor, Tensor]]:
    """What can be checked without images: float64 ``(mean, std)`` as given, or ``None``.

    Raises:
        ValueError: unless ``normalization`` is ``None`` or a pair of non-empty sequences of finite numbers, the stds
            positive, of equal lengths (or one of them of length 1, broadcast to every channel).

    Example:
        >>> check_normalization(([0.5, 0.4, 0.3], [0.0, 0.2, 0.2]))
        Traceback (most recent call last):
        ...
        ValueError: `normalization` needs finite means and positive, finite stds (images are divided by them), got ([0.5, 0.4, 0.3], [0.0, 0.2, 0.2]).
    """
    if normalization is None:
        return None
    try:
        mean, std = (torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in normalization)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"`normalization` must be a pair (mean, std) of per-channel sequences, got {normalization!r}.") from err
    lengths = {mean.numel(), std.numel()} - {1}
    if mean.numel() == 0 or std.numel() == 0 or len(lengths) > 1:
        raise ValueError(
            "`normalization` must hold as many means as stds (one per channel, or a single value for all), got "
            f"{mean.numel()} means and {std.numel()} stds: {normalization!r}."
        )
    if not bool(torch.isfinite(mean).all() & torch.isfinite(std).all()) or not bool((std > 0).all()):
        raise ValueError(
            f"`normalization` needs finite means and positive, finite stds (images are divided by them), got "
            f"{normalization!r}."
        )
    return mean, std


def parse_normalization(
    normalization: Optional[tuple[Sequence[float], Sequence[float]]], images: Tensor
) -> Optional[tuple[Tensor, Tensor]]:
    """Per-channel ``(mean, std)`` tensors on the images' device (float64 for float64 images), or ``None``.

    A single value is broadcast to every channel.

    Raises:
        ValueError: if the pair is malformed, has the wrong number of channels or a non-positive std.

    Example:
        >>> mean, std = parse_normalization(([0.5], [0.25]), torch.zeros(1, 3, 4, 4))
        >>> mean.tolist(), std.tolist()
        ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    """
    pair = check_normalization(normalization)
    if pair is None:
        return None
    work = torch.float64 if images.dtype == torch.float64 else torch.float32
    mean, std = (v.to(device=images.device, dtype=work) for v in pair)
    channels = images.shape[1]
    if mean.numel() == 1:
        mean = mean.expand(channels)
    if std.numel() == 1:
        std = std.expand(channels)
    if mean.numel() != channels or std.numel() != channels:
        raise ValueError(
            f"`normalization` needs {channels} means and {channels} stds (one per channel of the images), got "
            f"{normalization!r}."
        )
    return mean, std


def check_positive_int(value: int, name: str, *, none: str = "") -> None:
    """Raise a ``TypeError`` unless ``value`` is an ``int`` (``bool`` refused), a ``ValueError`` if it is below 1.

    Args:
        value: the argument to check.
        name: the argument's name, for the message.
        none: what ``None`` means where the caller also accepts it (e.g. ``"all samples"``): the message then
            offers ``None`` too. The caller skips the check for ``None`` itself.

    Example:
        >>> check_positive_int(0, "repeats")
        Traceback (most recent call last):
        ...
        ValueError: `repeats` must be a positive integer, got 0.
        >>> check_positive_int(1.5, "chunk_size")
        Traceback (most recent call last):
        ...
        TypeError: `chunk_size` must be a positive integer: pass an int, got float 1.5.
    """
    _check_int_at_least(value, name, 1, "positive integer", none)


def check_non_negative_int(value: int, name: str) -> None:
    """Raise a ``TypeError`` unless ``value`` is an ``int`` (``bool`` refused), a ``ValueError`` if it is negative.

    Example:
        >>> check_non_negative_int(-1, "dataloader_idx")
        Traceback (most recent call last):
        ...
        ValueError: `dataloader_idx` must be a non-negative integer, got -1.
    """
    _check_int_at_least(value, name, 0, "non-negative integer", "")


def _check_int_at_least(value: int, name: str, low: int, what: str, none: str) -> None:
    """The check of :func:`check_positive_int` and :func:`check_non_negative_int`: an ``int`` of at least ``low``."""
    alternative = f" or None ({none})" if none else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be a {what}{alternative}: pass an int, got {type(value).__name__} {value!r}.")
    if value < low:
        raise ValueError(f"`{name}` must be a {what}{alternative}, got {value!r}.")


def check_seed(seed: int, name: str = "seed") -> None:
    """Raise a ``TypeError`` unless ``seed`` is an integer (any :class:`numbers.Integral`, ``bool`` refused).

    Example:
        >>> check_seed(None)
        Traceback (most recent call last):
        ...
        TypeError: `seed` must be an integer, got None.
    """
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"`{name}` must be an integer, got {seed!r}.")


def model_device(model: Callable[[Tensor], Any], images: Tensor) -> torch.device:
    """The device of the model's first parameter, or that of ``images`` for a model without parameters."""
    parameter = next(model.parameters(), None) if isinstance(model, nn.Module) else None
    return images.device if parameter is None else parameter.device
