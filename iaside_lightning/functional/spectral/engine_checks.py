"""Argument checks of the I-ASIDE engine (fill, value, donors, budgets, batch statistics), shared by the
functional API and the metric so that both fail with the same message; images, labels, logits and normalization
go through the checks every sub-system shares (:mod:`iaside_lightning.functional.checks`)."""

import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from iaside_lightning.functional.checks import check_images_and_labels
from iaside_lightning.functional.spectral.coalitions import FILLS
from iaside_lightning.functional.spectral.values import VALUES

__all__ = [
    "check_donors",
    "check_enumerable",
    "caller_stacklevel",
    "check_inputs",
    "warn_batch_statistics",
]


def check_inputs(images: Tensor, labels: Tensor, fill: str, value: str) -> None:
    """The shared image and label checks, then the engine's own ``fill`` and ``value``."""
    check_images_and_labels(images, labels)
    if fill not in FILLS:
        raise ValueError(f"`fill` must be one of {FILLS}, got {fill!r}.")
    if value not in VALUES:
        raise ValueError(f"`value` must be one of {VALUES}, got {value!r}.")


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
            "on `forward_batch_size` and on which images share a batch. Use modules with running statistics "
            "(track_running_stats=True) for results independent of the batching.",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this package (the user's call)."""
    package = Path(__file__).resolve().parents[2]
    frame, level = sys._getframe(1), 1
    while frame is not None and _is_internal(frame.f_code.co_filename, package):
        frame, level = frame.f_back, level + 1
    return level


def _is_internal(filename: str, package: Path) -> bool:
    """Whether a frame's file is this package's, or generated code (``<string>``: a dataclass's ``__init__``)."""
    return filename.startswith("<") or Path(filename).resolve().is_relative_to(package)


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
