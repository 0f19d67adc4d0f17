"""The retraining harness: fit a fresh model from a factory on given tensors, seeded and quietly, and keep its best
validation metric; the caller's random state is put back afterwards."""

import logging
import math
import os
import random
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

__all__ = [
    "TRAINER_DEFAULTS",
    "best_validation_metric",
    "check_model_factory",
    "preserved_random_state",
    "quiet_lightning",
]

#: Trainer arguments of every retraining fit, under the caller's ``trainer_kwargs``.
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


def check_model_factory(model_factory: Callable[[], pl.LightningModule]) -> None:
    """Raise a clear error unless ``model_factory`` is callable (what it returns is checked at each fit).

    Example:
        >>> check_model_factory("SmallCNNClassifier")
        Traceback (most recent call last):
        ...
        TypeError: `model_factory` must be a callable returning a fresh LightningModule, got 'SmallCNNClassifier'.
    """
    if not callable(model_factory):
        raise TypeError(f"`model_factory` must be a callable returning a fresh LightningModule, got {model_factory!r}.")


def best_validation_metric(
    model_factory: Callable[[], pl.LightningModule],
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    metric: str,
    trainer_kwargs: Mapping[str, Any],
    batch_size: int,
    seed: int,
) -> float:
    """Seed everything with ``seed``, build a fresh model, fit it on ``train`` validating on ``test`` and return the
    best value of ``metric`` over the validation epochs.

    Args:
        model_factory: returns a fresh, untrained LightningModule that logs ``metric`` in validation.
        train: training ``(images, labels)``; shuffled with a generator seeded with ``seed``.
        test: validation ``(images, labels)``.
        metric: key of the logged validation metric.
        trainer_kwargs: :class:`~lightning.pytorch.Trainer` arguments over :data:`TRAINER_DEFAULTS`; ``callbacks``
            (a list) are added to the fit.
        batch_size: batch size of both dataloaders.
        seed: seed of :func:`lightning.pytorch.seed_everything` (model initialisation) and of the batch order.

    Returns:
        The best (largest) value of ``metric``.

    Raises:
        TypeError: if ``model_factory`` does not return a LightningModule.
        ValueError: if no validation epoch logged ``metric``.

    Example:
        >>> class Logistic(pl.LightningModule):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        ...     def training_step(self, batch, _):
        ...         return torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])
        ...     def validation_step(self, batch, _):
        ...         self.log("val/acc", (self.net(batch[0]).argmax(1) == batch[1]).float().mean())
        ...     def configure_optimizers(self):
        ...         return torch.optim.Adam(self.parameters(), lr=0.1)
        >>> labels = torch.arange(32) % 2
        >>> noise = torch.randn(32, 1, 2, 2, generator=torch.Generator().manual_seed(0))
        >>> images = noise + (4.0 * labels - 2).view(-1, 1, 1, 1)  # the label shifts every pixel
        >>> with preserved_random_state(), quiet_lightning():
        ...     best = best_validation_metric(Logistic, (images, labels), (images, labels), metric="val/acc",
        ...                                   trainer_kwargs={"max_epochs": 3}, batch_size=8, seed=0)
        >>> best > 0.9
        True
    """
    pl.seed_everything(seed, verbose=False)
    model = model_factory()
    if not isinstance(model, pl.LightningModule):
        raise TypeError(f"`model_factory` must return a LightningModule, got {type(model).__name__}.")
    tracker = _BestMetric(metric)
    options = {**TRAINER_DEFAULTS, **trainer_kwargs}
    trainer = pl.Trainer(**{**options, "callbacks": [*(options.get("callbacks") or []), tracker]})
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
def preserved_random_state() -> Iterator[None]:
    """Restore the Python, NumPy, torch (and initialised CUDA) RNG states and Lightning's seed variables on exit.

    Example:
        >>> state = torch.get_rng_state()
        >>> with preserved_random_state():
        ...     _ = pl.seed_everything(123, verbose=False)
        >>> torch.equal(state, torch.get_rng_state())
        True
    """
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
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's info messages and its warnings about small in-memory dataloaders for the duration.

    Example:
        >>> with quiet_lightning():
        ...     logging.getLogger("lightning.pytorch").isEnabledFor(logging.INFO)
        False
    """
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
