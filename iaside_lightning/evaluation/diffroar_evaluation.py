"""DiffROAR (Shah, Jain & Netrapalli, NeurIPS 2021): do the coordinates an attribution ranks highest carry more
signal than those it ranks lowest?

Each image keeps only the fraction ``k`` of its coordinates ranked highest (top-k) or lowest (bottom-k) by the
attribution of the model under test; the rest is set to a constant (see
:mod:`~iaside_lightning.functional.sanity.unmasking`). The masks are computed once from the given attributions and frozen.
``PredPower(k, top|bottom)`` is the best test accuracy of a fresh model trained from scratch on the masked training
set and evaluated on the masked test set (retraining avoids judging the model on inputs it never saw), and

    ``DiffROAR(k) = PredPower(top-k) - PredPower(bottom-k)``:

``> 0`` supports "larger attributions mark more discriminative coordinates", ``< 0`` is feature inversion, and a
random ranking gives about 0. :func:`diffroar` does the retraining (costly: ``2 * levels * repeats`` fits);
:func:`diffroar_proxy` is a cheap, clearly different proxy that evaluates the given model itself on the unmasked
inputs, without retraining.
"""

import logging
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, Literal, Optional, Union

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

from iaside_lightning.evaluation.diffroar_result import DiffROARResult
from iaside_lightning.functional.checks import check_images_and_labels, check_logits, check_positive_int, model_device
from iaside_lightning.functional.gradients import input_gradient
from iaside_lightning.functional.model_mode import evaluation_mode
from iaside_lightning.functional.sanity.unmasking import Per, apply_unmasking, random_attributions, unmasking_masks

__all__ = ["compute_attributions", "diffroar", "diffroar_proxy"]

AttributionMethod = Union[Literal["gradient", "random"], Callable[[nn.Module, Tensor, Tensor], Tensor]]
Fill = Union[Literal["mean"], float, Tensor]

DEFAULT_LEVELS = (0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
TRAINER_DEFAULTS: dict[str, Any] = {
    "accelerator": "cpu",
    "devices": 1,
    "max_epochs": 10,
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}
_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")
_SEED_VARIABLES = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


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
    fill: Fill = "mean",
    metric: str = "val/acc",
    trainer_kwargs: Optional[Mapping[str, Any]] = None,
    batch_size: int = 128,
    seed: int = 0,
    progress: bool = True,
) -> DiffROARResult:
    """DiffROAR by retraining: for each level ``k``, train fresh models on the top-k and on the bottom-k unmasked
    training images and take their best test accuracy on the equally unmasked test images.

    Masks come from the given attributions (usually :func:`compute_attributions` of the model under test) and are
    computed once per level. Run ``r`` of a level seeds :func:`lightning.pytorch.seed_everything` with ``seed + r``
    before calling ``model_factory``, so top and bottom share initialisation and batch order; the caller's global RNG
    states (Python, NumPy, torch, initialised CUDA devices) and Lightning's seed variables are restored afterwards.
    Where the top and bottom inputs coincide (``k = 1``, or ``k = 0``), the bottom runs reuse the top ones. Lightning's
    info messages are silenced; with ``progress=True`` one line is printed per fit. The paper uses ``k`` in
    ``{0.05, 0.1, 0.2, ..., 1.0}``; the default grid is coarser, to save fits.

    Args:
        model_factory: returns a fresh, untrained LightningModule whose validation step logs ``metric`` (e.g.
            ``lambda: SmallCNNClassifier(in_channels=1, num_classes=2)``, which logs ``"val/acc"``).
        train: training ``(images [N, C, H, W], labels [N])``.
        test: test ``(images, labels)``; the validation data of every fit.
        attributions_train: attributions of the training images, shape of the training images.
        attributions_test: attributions of the test images.
        levels: increasing fractions unmasked ``k`` in ``[0, 1]``.
        repeats: fits per level and side (the std over them is reported).
        per: rank ``"coordinate"`` values (the paper's) or whole ``"pixel"`` s.
        fill: value of masked coordinates: ``"mean"`` (per-channel mean of the training images), a number or a
            per-channel tensor ``[C]``.
        metric: key of the accuracy the models log at each validation epoch; ``PredPower`` is its best value.
        trainer_kwargs: :class:`~lightning.pytorch.Trainer` arguments over the defaults ``accelerator="cpu",
            devices=1, max_epochs=10, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0``; ``callbacks`` (a list) are added to every fit.
        batch_size: batch size of the training and test dataloaders.
        seed: base seed of the fits.
        progress: print a line per fit.

    Returns:
        A :class:`DiffROARResult` with ``retrained=True``.

    Raises:
        TypeError: if data, attributions or ``model_factory`` have the wrong type.
        ValueError: if an option is invalid, or no validation epoch logged ``metric``.

    Example:
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
    train_images, train_labels = _pair(train, "train")
    test_images, test_labels = _pair(test, "test")
    _check_attributions(attributions_train, train_images, "attributions_train")
    _check_attributions(attributions_test, test_images, "attributions_test")
    grid = _levels(levels)
    if not callable(model_factory):
        raise TypeError(f"`model_factory` must be a callable returning a fresh LightningModule, got {model_factory!r}.")
    check_positive_int(repeats, "repeats")
    check_positive_int(batch_size, "batch_size")
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"`metric` must be the key the model logs its validation accuracy under, got {metric!r}.")
    if trainer_kwargs is not None and not isinstance(trainer_kwargs, Mapping):
        raise TypeError(f"`trainer_kwargs` must be a dict of Trainer arguments, got {type(trainer_kwargs).__name__}.")
    fit = partial(
        _best_metric_of_fit,
        model_factory,
        metric=metric,
        trainer_kwargs={**TRAINER_DEFAULTS, **(trainer_kwargs or {})},
        batch_size=batch_size,
    )
    value = _fill_value(fill, train_images)
    top, bottom = (torch.zeros(len(grid), repeats, dtype=torch.float64) for _ in range(2))
    total, done = 2 * len(grid) * repeats, 0
    with _caller_random_state(), _quiet_lightning():
        for i, fraction in enumerate(grid):
            sets = {
                keep: tuple(
                    apply_unmasking(images, unmasking_masks(scores, fraction, keep=keep, per=per), value)
                    for images, scores in ((train_images, attributions_train), (test_images, attributions_test))
                )
                for keep in ("top", "bottom")
            }
            same = all(torch.equal(a, b) for a, b in zip(sets["top"], sets["bottom"]))
            for r in range(repeats):
                for keep, accuracies in (("top", top), ("bottom", bottom)):
                    start, done = time.perf_counter(), done + 1
                    if keep == "bottom" and same:
                        accuracies[i, r], note = top[i, r], "same inputs as top-k, reused"
                    else:
                        masked_train, masked_test = sets[keep]
                        accuracies[i, r] = fit((masked_train, train_labels), (masked_test, test_labels), seed=seed + r)
                        note = f"{time.perf_counter() - start:.1f} s"
                    if progress:
                        print(
                            f"DiffROAR [{done}/{total}] k={fraction:g} {keep}-k run {r + 1}/{repeats}: "
                            f"best {metric} = {float(accuracies[i, r]):.4f} ({note})",
                            flush=True,
                        )
    return DiffROARResult(torch.tensor(grid, dtype=torch.float64), top, bottom, retrained=True, per=per)


def diffroar_proxy(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    attributions: Tensor,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    per: Per = "coordinate",
    fill: Fill = "mean",
    batch_size: int = 256,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
) -> DiffROARResult:
    """A cheap DiffROAR PROXY WITHOUT RETRAINING: the accuracy of ``model`` itself on its top-k and bottom-k unmasked
    inputs.

    Unlike :func:`diffroar`, masked inputs are off the model's training distribution, so the values mix the ranking's
    quality with the model's reaction to the fill (the artefact the paper's retraining removes); use it to track a
    trend during training, not as DiffROAR. The model runs in eval mode under :func:`torch.inference_mode` (every
    module's mode restored, parameters' gradients and BatchNorm statistics untouched) with the global RNG streams
    forked.

    Args:
        model: classifier mapping ``[B, C, H, W]`` to logits ``[B, K]``; batches are moved to its device.
        images: images ``[N, C, H, W]`` as the model sees them.
        labels: true classes ``[N]``.
        attributions: attributions of ``images``, same shape.
        levels: increasing fractions unmasked ``k`` in ``[0, 1]``.
        per: ``"coordinate"`` or ``"pixel"`` ranking.
        fill: ``"mean"`` (per-channel mean of ``images``), a number or a per-channel tensor ``[C]``.
        batch_size: images per forward pass.
        output_transform: maps the model output to logits.

    Returns:
        A :class:`DiffROARResult` with ``retrained=False`` and one "repeat".

    Example:
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
    check_images_and_labels(images, labels)
    _nonempty(images, "images")
    _check_attributions(attributions, images, "attributions")
    grid = _levels(levels)
    check_positive_int(batch_size, "batch_size")
    value = _fill_value(fill, images)
    device = model_device(model, images)
    accuracy = {keep: torch.zeros(len(grid), 1, dtype=torch.float64) for keep in ("top", "bottom")}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), evaluation_mode(model):
        for i, fraction in enumerate(grid):
            for keep, values in accuracy.items():
                masked = apply_unmasking(images, unmasking_masks(attributions, fraction, keep=keep, per=per), value)
                correct = sum(
                    int((_logits(model, x.to(device), output_transform).argmax(1) == y.to(device)).sum())
                    for x, y in zip(masked.split(batch_size), labels.split(batch_size))
                )
                values[i, 0] = correct / len(labels)
    return DiffROARResult(torch.tensor(grid, dtype=torch.float64), accuracy["top"], accuracy["bottom"], False, per)


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
            (:func:`~iaside_lightning.functional.sanity.unmasking.random_attributions` with ``seed``, the DiffROAR baseline)
            or a callable ``(model, images, labels) -> attributions`` applied per batch.
        batch_size: images per batch.
        seed: seed of ``"random"``.
        output_transform: maps the model output to logits (``"gradient"`` only).

    Returns:
        Attributions with the shape of ``images``, on its device, detached.

    Raises:
        TypeError: if ``images`` or ``labels`` have the wrong type.
        ValueError: if ``method`` is unknown or a callable returns the wrong shape.

    Example:
        >>> linear = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
        >>> grads = compute_attributions(linear, x, y, batch_size=2)
        >>> torch.allclose(grads.flatten(1), linear[1].weight[y])
        True
    """
    check_images_and_labels(images, labels)
    check_positive_int(batch_size, "batch_size")
    if isinstance(method, str) and method == "random":
        return random_attributions(images.shape, seed=seed, dtype=images.dtype, device=images.device)
    if isinstance(method, str) and method == "gradient":
        attribute: Callable[[Any, Tensor, Tensor], Tensor] = partial(input_gradient, output_transform=output_transform)
    elif callable(method):
        attribute = method
    else:
        raise ValueError(
            f"`method` must be 'gradient', 'random' or a callable (model, images, labels), got {method!r}."
        )
    device = model_device(model, images)
    chunks = []
    for x, y in zip(images.split(batch_size), labels.split(batch_size)):
        chunk = attribute(model, x.to(device), y.to(device))
        if not isinstance(chunk, Tensor) or chunk.shape != x.shape:
            got = tuple(chunk.shape) if isinstance(chunk, Tensor) else type(chunk).__name__
            raise ValueError(f"The attribution `method` must return a tensor of shape {tuple(x.shape)}, got {got}.")
        chunks.append(chunk.detach().to(images.device))
    return torch.cat(chunks) if chunks else torch.zeros_like(images)


class _BestMetric(Callback):
    """Keeps the best value of ``key`` over the validation epochs of one fit."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.best = -math.inf

    @override
    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.sanity_checking:
            return
        if self.key not in trainer.callback_metrics:
            raise ValueError(
                f"`metric` {self.key!r} was not logged in validation; the model logged "
                f"{sorted(trainer.callback_metrics)}. Pass the key of its validation accuracy as `metric`."
            )
        self.best = max(self.best, float(trainer.callback_metrics[self.key]))


def _best_metric_of_fit(
    model_factory: Callable[[], pl.LightningModule],
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    metric: str,
    trainer_kwargs: dict[str, Any],
    batch_size: int,
    seed: int,
) -> float:
    """Seed, build a fresh model, fit it on ``train`` validating on ``test``, return the best ``metric``."""
    pl.seed_everything(seed, verbose=False)
    model = model_factory()
    if not isinstance(model, pl.LightningModule):
        raise TypeError(f"`model_factory` must return a LightningModule, got {type(model).__name__}.")
    tracker = _BestMetric(metric)
    trainer = pl.Trainer(**{**trainer_kwargs, "callbacks": [*(trainer_kwargs.get("callbacks") or []), tracker]})
    generator = torch.Generator().manual_seed(seed)
    trainer.fit(
        model,
        DataLoader(TensorDataset(*train), batch_size=batch_size, shuffle=True, generator=generator),
        DataLoader(TensorDataset(*test), batch_size=batch_size),
    )
    if tracker.best == -math.inf:
        raise ValueError(
            f"No validation epoch ran, so `metric` {metric!r} was never seen; check `trainer_kwargs` "
            "(max_epochs, limit_val_batches, check_val_every_n_epoch)."
        )
    return tracker.best


@contextmanager
def _caller_random_state() -> Iterator[None]:
    """Restore the Python, NumPy, torch (and initialised CUDA) RNG states and Lightning's seed variables on exit."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    variables = {name: os.environ.get(name) for name in _SEED_VARIABLES}
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        for name, value in variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's info messages and its warnings about small in-memory dataloaders for the duration."""
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def _logits(
    model: Callable[[Tensor], Any], inputs: Tensor, output_transform: Optional[Callable[[Any], Tensor]]
) -> Tensor:
    output = model(inputs)
    return check_logits(output if output_transform is None else output_transform(output), inputs.shape[0])


def _pair(data: tuple[Tensor, Tensor], name: str) -> tuple[Tensor, Tensor]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"`{name}` must be a pair (images [N, C, H, W], labels [N]), got {type(data).__name__}.")
    try:
        check_images_and_labels(*data)
    except TypeError as err:
        raise TypeError(f"`{name}`: {err}") from err
    _nonempty(data[0], name)
    return data[0], data[1]


def _nonempty(images: Tensor, name: str) -> None:
    if images.shape[0] == 0:
        raise ValueError(f"`{name}` has no images; pass at least one.")


def _check_attributions(attributions: Tensor, images: Tensor, name: str) -> None:
    if not isinstance(attributions, Tensor) or attributions.shape != images.shape:
        got = tuple(attributions.shape) if isinstance(attributions, Tensor) else type(attributions).__name__
        raise ValueError(f"`{name}` must be a tensor with the shape of its images {tuple(images.shape)}, got {got}.")


def _levels(levels: Sequence[float]) -> list[float]:
    try:
        grid = [] if isinstance(levels, str) else [float(k) for k in levels]
    except (TypeError, ValueError):
        grid = []
    if not grid or not all(0 <= k <= 1 for k in grid) or any(a >= b for a, b in zip(grid, grid[1:])):
        raise ValueError(
            f"`levels` must be strictly increasing fractions unmasked in [0, 1], e.g. (0.1, 0.5), got {levels!r}."
        )
    return grid


def _fill_value(fill: Fill, images: Tensor) -> Union[float, Tensor]:
    """``"mean"`` becomes the per-channel mean of ``images``; numbers and tensors pass through."""
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"`fill` must be 'mean', a number or a per-channel tensor, got {fill!r}.")
        return images.mean(dim=(0, 2, 3))
    return fill
