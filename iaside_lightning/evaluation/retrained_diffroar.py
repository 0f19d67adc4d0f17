"""DiffROAR (Shah, Jain & Netrapalli, NeurIPS 2021): do the coordinates an attribution ranks highest carry more
signal than those it ranks lowest?

Each image keeps only the fraction ``k`` of its coordinates ranked highest (top-k) or lowest (bottom-k) by the
attribution of the model under test; the rest is set to a constant (see
:mod:`~iaside_lightning.functional.sanity.unmasking`). The masks are computed once from the given attributions and
frozen. ``PredPower(k, top|bottom)`` is the best test accuracy of a fresh model trained from scratch on the masked
training set and evaluated on the masked test set (retraining avoids judging the model on inputs it never saw), and

    ``DiffROAR(k) = PredPower(top-k) - PredPower(bottom-k)``:

``> 0`` supports "larger attributions mark more discriminative coordinates", ``< 0`` is feature inversion, and a
random ranking gives about 0. :func:`diffroar` does the retraining (costly: ``2 * levels * repeats`` fits, run by
:mod:`~iaside_lightning.evaluation.retraining`); :func:`~iaside_lightning.evaluation.diffroar_proxy` is a cheap,
clearly different proxy that evaluates the given model itself on the unmasked inputs, without retraining.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from torch import Tensor

from iaside_lightning.evaluation.retraining import (
    best_validation_metric,
    check_model_factory,
    preserved_random_state,
    quiet_lightning,
)
from iaside_lightning.functional.checks import check_images, check_labels
from iaside_lightning.functional.sanity.diffroar_result import DiffROARResult
from iaside_lightning.functional.sanity.options import (
    DEFAULT_LEVELS,
    DIFFROAR_OPTION_DOCS,
    DiffROAROptions,
    document_options,
)
from iaside_lightning.functional.sanity.unmasking import MaskFill, Per, check_attributions, mask_fill_value, unmask

__all__ = ["diffroar", "diffroar_with_options"]


@document_options(*DIFFROAR_OPTION_DOCS)
def diffroar(
    model_factory: Callable[[], pl.LightningModule],
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    attributions_train: Tensor,
    attributions_test: Tensor,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    repeats: int = 2,
    per: Per = "coordinate",
    fill: MaskFill = "mean",
    metric: str = "val/acc",
    trainer_kwargs: Optional[Mapping[str, Any]] = None,
    batch_size: int = 128,
    seed: int = 0,
    progress: bool = True,
) -> DiffROARResult:
    """DiffROAR by retraining: for each level ``k``, train fresh models on the top-k and on the bottom-k unmasked
    training images and take their best test accuracy on the equally unmasked test images.

    Masks come from the given attributions (usually :func:`~iaside_lightning.evaluation.compute_attributions` of the
    model under test) and are computed once per level. Run ``r`` of a level seeds
    :func:`lightning.pytorch.seed_everything` with ``seed + r`` before calling ``model_factory``, so top and bottom
    share initialisation and batch order; the caller's global RNG states (Python, NumPy, torch, initialised CUDA
    devices) and Lightning's seed variables are restored afterwards. Where the top and bottom inputs coincide
    (``k = 1``, or ``k = 0``), the bottom runs reuse the top ones. Lightning's info messages are silenced; with
    ``progress=True`` one line is printed per fit. The paper uses ``k`` in ``{0.05, 0.1, 0.2, ..., 1.0}``; the
    default grid is coarser, to save fits.

    Args:
        model_factory: returns a fresh, untrained LightningModule whose validation step logs ``metric`` (e.g.
            ``lambda: SmallCNNClassifier(in_channels=1, num_classes=2)``, which logs ``"val/acc"``).
        train: training ``(images [N, C, H, W], labels [N])``.
        test: test ``(images, labels)``; the validation data of every fit.
        attributions_train: attributions of the training images, shape of the training images.
        attributions_test: attributions of the test images.
        {options}

    Returns:
        A :class:`~iaside_lightning.functional.sanity.diffroar_result.DiffROARResult` with ``retrained=True``.

    Raises:
        TypeError: if data, attributions, ``model_factory`` or an option have the wrong type.
        ValueError: if an option is invalid, or no validation epoch logged ``metric``.

    Example:
        >>> from torch import nn
        >>> class Logistic(pl.LightningModule):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        ...     def training_step(self, batch, _):
        ...         return nn.functional.cross_entropy(self.net(batch[0]), batch[1])
        ...     def validation_step(self, batch, _):
        ...         self.log("val/acc", (self.net(batch[0]).argmax(1) == batch[1]).float().mean())
        ...     def configure_optimizers(self):
        ...         return torch.optim.Adam(self.parameters(), lr=0.1)
        >>> labels = torch.arange(64) % 2
        >>> images = torch.randn(64, 1, 2, 2, generator=torch.Generator().manual_seed(0))
        >>> images[:, 0, 0, 0] += 4 * labels - 2  # the label lives in the first pixel
        >>> oracle = torch.zeros_like(images)
        >>> oracle[:, 0, 0, 0] = 1.0
        >>> result = diffroar(Logistic, (images, labels), (images, labels), oracle, oracle, levels=[0.25],
        ...                   repeats=1, trainer_kwargs={"max_epochs": 5}, batch_size=16, progress=False)
        >>> bool(result.diff_mean[0] > 0.3)
        True
    """
    options = DiffROAROptions(
        levels=levels, repeats=repeats, per=per, fill=fill, metric=metric, trainer_kwargs=trainer_kwargs,
        batch_size=batch_size, seed=seed, progress=progress,
    )  # fmt: skip
    return diffroar_with_options(model_factory, train, test, attributions_train, attributions_test, options)


def diffroar_with_options(
    model_factory: Callable[[], pl.LightningModule],
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    attributions_train: Tensor,
    attributions_test: Tensor,
    options: DiffROAROptions,
) -> DiffROARResult:
    """:func:`diffroar` with its options already checked; checks the data and ``model_factory`` only.

    Example:
        >>> images, labels = torch.rand(4, 1, 2, 2), torch.arange(4) % 2
        >>> diffroar_with_options(lambda: None, (images, labels), (images, labels), images, images,
        ...                       DiffROAROptions(levels=[0.5], repeats=1, progress=False))
        Traceback (most recent call last):
        ...
        TypeError: `model_factory` must return a LightningModule, got NoneType.
    """
    train_images, train_labels = _pair(train, "train")
    test_images, test_labels = _pair(test, "test")
    check_attributions(attributions_train, train_images, "attributions_train")
    check_attributions(attributions_test, test_images, "attributions_test")
    check_model_factory(model_factory)
    fill = mask_fill_value(options.fill, train_images)
    top, bottom = (torch.zeros(len(options.levels), options.repeats, dtype=torch.float64) for _ in range(2))
    total, done = 2 * len(options.levels) * options.repeats, 0
    with preserved_random_state(), quiet_lightning():
        for i, fraction in enumerate(options.levels):
            sides = {
                keep: tuple(
                    unmask(images, scores, fraction, keep=keep, per=options.per, fill=fill)
                    for images, scores in ((train_images, attributions_train), (test_images, attributions_test))
                )
                for keep in ("top", "bottom")
            }
            same = all(torch.equal(a, b) for a, b in zip(sides["top"], sides["bottom"]))
            for r in range(options.repeats):
                for keep, accuracies in (("top", top), ("bottom", bottom)):
                    start, done = time.perf_counter(), done + 1
                    if keep == "bottom" and same:
                        accuracies[i, r], note = top[i, r], "same inputs as top-k, reused"
                    else:
                        masked_train, masked_test = sides[keep]
                        accuracies[i, r] = best_validation_metric(
                            model_factory, (masked_train, train_labels), (masked_test, test_labels),
                            metric=options.metric, trainer_kwargs=options.trainer_kwargs,
                            batch_size=options.batch_size, seed=options.seed + r,
                        )  # fmt: skip
                        note = f"{time.perf_counter() - start:.1f} s"
                    if options.progress:
                        print(
                            f"DiffROAR [{done}/{total}] k={fraction:g} {keep}-k run {r + 1}/{options.repeats}: "
                            f"best {options.metric} = {float(accuracies[i, r]):.4f} ({note})",
                            flush=True,
                        )
    return DiffROARResult(torch.tensor(options.levels, dtype=torch.float64), top, bottom, True, options.per)


def _pair(data: tuple[Tensor, Tensor], name: str) -> tuple[Tensor, Tensor]:
    """``(images, labels)`` of ``train`` or ``test``, checked; errors name ``name[0]`` or ``name[1]``."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"`{name}` must be a pair (images [N, C, H, W], labels [N]), got {type(data).__name__}.")
    images, labels = data
    check_images(images, f"{name}[0]")
    check_labels(labels, images.shape[0], f"{name}[1]")
    return images, labels
