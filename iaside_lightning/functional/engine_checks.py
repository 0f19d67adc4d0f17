"""Argument checks of the I-ASIDE engine (images, labels, fill, value, donors, budgets, chunking, normalization),
shared by the functional API and the metric so that both fail with the same message."""

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Optional

import torch
from torch import Tensor, nn

from iaside_lightning.functional.coalitions import FILLS
from iaside_lightning.functional.values import VALUES

__all__ = [
    "check_chunk_size_and_seed",
    "check_donors",
    "check_enumerable",
    "check_inputs",
    "check_label_range",
    "check_normalization",
    "parse_normalization",
    "warn_batch_statistics",
]


def check_inputs(images: Tensor, labels: Tensor, fill: str, value: str) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise TypeError(f"`images` must be a 4-D floating-point tensor [B, C, H, W], got {shape}.")
    if images.shape[0] < 1:
        raise ValueError("`images` is an empty batch; pass at least one image.")
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"`labels` must be an integer tensor [B] of class indices, got {labels!r:.80}.")
    if labels.shape != (images.shape[0],):
        raise ValueError(
            f"`labels` must have shape [B] = [{images.shape[0]}] matching `images`, got {tuple(labels.shape)}. "
            "Pass class indices, not one-hot vectors."
        )
    if fill not in FILLS:
        raise ValueError(f"`fill` must be one of {FILLS}, got {fill!r}.")
    if value not in VALUES:
        raise ValueError(f"`value` must be one of {VALUES}, got {value!r}.")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("`images` contains NaN or infinite values.")


def check_chunk_size_and_seed(chunk_size: Optional[int], seed: int) -> None:
    """Raise a clear error unless ``chunk_size`` is ``None`` or a positive integer and ``seed`` is an integer.

    Example:
        >>> check_chunk_size_and_seed(1.5, 0)
        Traceback (most recent call last):
        ...
        ValueError: `chunk_size` must be None (automatic) or a positive integer number of coalitions per forward pass, got 1.5.
    """
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(
            "`chunk_size` must be None (automatic) or a positive integer number of coalitions per forward pass, "
            f"got {chunk_size!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` must be an integer (e.g. 0), got {seed!r}.")


def warn_batch_statistics(model: Callable[[Tensor], Any]) -> None:
    """Warn if the model normalises with batch statistics in eval mode: results then depend on the batching."""
    if not isinstance(model, nn.Module):
        return
    # _BatchNorm is the base of BatchNorm1d/2d/3d, SyncBatchNorm and the lazy variants; without running statistics
    # they normalise with the statistics of the batch even in eval mode.
    names = sorted(
        {
            type(m).__name__
            for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is None and m.running_var is None
        }
    )
    if names:
        warnings.warn(
            f"The model holds {', '.join(names)} modules with track_running_stats=False: they normalise with the "
            "statistics of each forward pass even in eval mode, so the coalition values (and Shapley values) depend "
            "on `chunk_size` and on which images share a batch. Use modules with running statistics "
            "(track_running_stats=True) for results independent of the batching.",
            UserWarning,
            stacklevel=3,
        )


def check_donors(donors: Optional[Tensor], images: Tensor, fill: str) -> None:
    if donors is None:
        return
    if fill != "permute":
        raise ValueError(f"`donors` only apply to fill='permute' (they supply absent bands), got fill={fill!r}.")
    if not isinstance(donors, Tensor) or donors.ndim != 4 or donors.shape[1:] != images.shape[1:]:
        shape = tuple(donors.shape) if isinstance(donors, Tensor) else type(donors).__name__
        raise ValueError(f"`donors` must be images [D, {', '.join(map(str, images.shape[1:]))}] like `images`, got {shape}.")
    if not donors.is_floating_point() or not bool(torch.isfinite(donors).all()):
        raise ValueError("`donors` must be finite floating-point images.")


def check_enumerable(num_bands: int, max_coalitions: int) -> None:
    if isinstance(num_bands, int) and num_bands >= 2 and 2**num_bands > max_coalitions:
        raise ValueError(
            f"Exact enumeration of num_bands={num_bands} needs 2^{num_bands} = {2**num_bands} coalitions per image, "
            f"above max_coalitions={max_coalitions}. Use fewer bands, raise `max_coalitions`, or sample with "
            "estimator='kernel', 'permutation' or 'auto'."
        )


def check_label_range(labels: Tensor, num_classes: int) -> None:
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"`labels` must lie in [0, {num_classes}) for a model with {num_classes} classes, got values from "
            f"{int(labels.min())} to {int(labels.max())}."
        )


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
    if mean.numel() != channels or std.numel() != channels or not bool((std > 0).all()):
        raise ValueError(
            f"`normalization` needs {channels} means and {channels} positive stds (one per channel), got "
            f"{normalization!r}."
        )
    return mean, std


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
