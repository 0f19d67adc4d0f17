"""``DiffROARCallback``: DiffROAR of the trained model's input gradients at the end of fit, and a per-epoch proxy."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from typing_extensions import override

from iaside_lightning import loggers
from iaside_lightning.callbacks.batch import BatchUnpacker
from iaside_lightning.callbacks.log_prefix import check_log_prefix
from iaside_lightning.evaluation.retrained_diffroar import diffroar_with_options
from iaside_lightning.evaluation.retraining import check_model_factory
from iaside_lightning.functional.checks import check_positive_int
from iaside_lightning.functional.sanity.attributions import (
    AttributionMethod,
    check_attribution_method,
    compute_attributions,
)
from iaside_lightning.functional.sanity.diffroar_proxy import diffroar_proxy_with_options
from iaside_lightning.functional.sanity.diffroar_result import DiffROARResult
from iaside_lightning.functional.sanity.options import DEFAULT_LEVELS, DiffROAROptions, check_levels
from iaside_lightning.functional.sanity.unmasking import MaskFill, Per

__all__ = ["DiffROARCallback"]


class DiffROARCallback(Callback):
    """Run DiffROAR on the trained model when fit ends and, optionally, track a cheap proxy every few epochs.

    **At fit end** (when ``model_factory`` is given), the attributions of the trained model (input gradients by
    default) on the training and validation images rank their coordinates, and
    :func:`~iaside_lightning.evaluation.diffroar` retrains ``2 * len(levels) * repeats`` fresh models from
    ``model_factory`` on the top-k and bottom-k unmasked data (this can take long: ``progress`` prints a line per
    fit). There is no default factory: rebuilding a module from its hyper-parameters, or deep-copying it and
    resetting its parameters, silently keeps trained weights in layers without ``reset_parameters``; pass e.g.
    ``model_factory=lambda: SmallCNNClassifier(in_channels=1, num_classes=2)``. The table (``k, top, bottom, diff,
    std``) goes to every logger as ``<name>.csv`` via :func:`~iaside_lightning.loggers.log_history` and the figure via
    :func:`~iaside_lightning.loggers.log_figure` under tag ``name``; the result is kept in :attr:`result`. The images
    are ``train``/``test`` when given, else read from the trainer's training and (first) validation dataloaders. The
    retraining runs on global rank zero only: use it after single-process fits (or call ``diffroar`` yourself).

    **Proxy** (``proxy_every_n_epochs``): on validation epochs whose ``(epoch + 1)`` is a multiple of it, the
    attributions of the current model on the first ``proxy_max_samples`` validation images of the epoch (first
    validation dataloader) rank their coordinates and :func:`~iaside_lightning.evaluation.diffroar_proxy` evaluates
    the model itself on the top-k and bottom-k unmasked images (NO retraining: a trend, not DiffROAR). It logs
    ``<name>_proxy/diff_k<k>`` through the LightningModule and the table ``<name>_proxy.csv`` (one row per epoch). The
    proxy never changes training: eval mode with every module's mode restored, parameters' gradients and BatchNorm
    statistics untouched, the global RNG streams forked. It is computed per process on that process's images.

    The DiffROAR options are checked once, at construction, into :attr:`options` (a
    :class:`~iaside_lightning.functional.sanity.options.DiffROAROptions`) and :attr:`proxy_options` (the same with
    ``proxy_levels``).

    Args:
        model_factory: returns a fresh, untrained LightningModule of the architecture under test that logs
            ``metric`` in validation; ``None`` skips the retraining at fit end (proxy only).
        attribution: ``"gradient"``, ``"random"`` (the baseline) or a callable ``(model, images, labels)``.
        levels: fractions unmasked ``k`` of the retrained DiffROAR.
        repeats: fits per level and side.
        per: rank ``"coordinate"`` values or whole ``"pixel"`` s.
        fill: ``"mean"`` (per-channel mean of the training images; of the sample for the proxy), a number or ``[C]``.
        metric: validation accuracy key the factory's models log.
        train: training ``(images, labels)`` for the retraining; default: the trainer's training dataloader.
        test: test ``(images, labels)``; default: the trainer's first validation dataloader.
        max_train_samples: training images used at most (``None``: all).
        max_test_samples: test images used at most (``None``: all).
        trainer_kwargs: arguments of the retraining Trainers (see :func:`~iaside_lightning.evaluation.diffroar`).
        batch_size: batch size of the retraining and of the attributions.
        seed: base seed of the retraining runs and of ``attribution="random"``.
        progress: print a line per retraining fit.
        proxy_every_n_epochs: run the proxy on every n-th validation epoch; ``None``: never.
        proxy_levels: fractions unmasked ``k`` of the proxy.
        proxy_max_samples: validation images per proxy evaluation.
        batch_keys: ``(image_key, label_key)`` for dict batches.
        batch_transform: callable mapping a batch to ``(images, labels)``; overrides ``batch_keys``.
        output_transform: maps the model output to logits.
        name: name of the table and figure tag; the proxy's keys start with ``<name>_proxy/``. Two callbacks in one
            Trainer need different names (the name keys their state in checkpoints).
        dataloader_idx: the validation dataloader the proxy reads and, without ``test``, the test images come from.

    Raises:
        TypeError: if ``model_factory`` is not callable or an option has the wrong type.
        ValueError: if there is nothing to do (no ``model_factory`` and no proxy) or an option is invalid.

    Example:
        >>> from iaside_lightning.models import SmallCNNClassifier
        >>> callback = DiffROARCallback(lambda: SmallCNNClassifier(in_channels=1, num_classes=2), repeats=3,
        ...                             trainer_kwargs={"max_epochs": 5}, proxy_every_n_epochs=1)
    """

    def __init__(
        self,
        model_factory: Optional[Callable[[], pl.LightningModule]] = None,
        *,
        attribution: AttributionMethod = "gradient",
        levels: Sequence[float] = DEFAULT_LEVELS,
        repeats: int = 2,
        per: Per = "coordinate",
        fill: MaskFill = "mean",
        metric: str = "val/acc",
        train: Optional[tuple[Tensor, Tensor]] = None,
        test: Optional[tuple[Tensor, Tensor]] = None,
        max_train_samples: Optional[int] = None,
        max_test_samples: Optional[int] = None,
        trainer_kwargs: Optional[Mapping[str, Any]] = None,
        batch_size: int = 128,
        seed: int = 0,
        progress: bool = True,
        proxy_every_n_epochs: Optional[int] = None,
        proxy_levels: Sequence[float] = (0.05, 0.1, 0.2),
        proxy_max_samples: int = 256,
        batch_keys: Optional[Sequence[str]] = None,
        batch_transform: Optional[Callable[[Any], tuple[Tensor, Tensor]]] = None,
        output_transform: Optional[Callable[[Any], Tensor]] = None,
        name: str = "diffroar",
        dataloader_idx: int = 0,
    ) -> None:
        if model_factory is None and proxy_every_n_epochs is None:
            raise ValueError(
                "DiffROARCallback has nothing to do: pass `model_factory` (retrained DiffROAR at fit end) and/or "
                "`proxy_every_n_epochs` (the per-epoch proxy)."
            )
        if model_factory is not None:
            check_model_factory(model_factory)
        check_attribution_method(attribution, "attribution")
        for value, argument in ((max_train_samples, "max_train_samples"), (max_test_samples, "max_test_samples"),
                                (proxy_every_n_epochs, "proxy_every_n_epochs")):
            if value is not None:
                check_positive_int(value, argument)
        check_positive_int(proxy_max_samples, "proxy_max_samples")
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string (table name and figure tag), got {name!r}.")
        check_log_prefix(name, "name")
        if isinstance(dataloader_idx, bool) or not isinstance(dataloader_idx, int) or dataloader_idx < 0:
            raise ValueError(f"`dataloader_idx` must be a non-negative integer, got {dataloader_idx!r}.")
        self.dataloader_idx = dataloader_idx
        self.model_factory = model_factory
        self.attribution = attribution
        self.options = DiffROAROptions(
            levels=levels, repeats=repeats, per=per, fill=fill, metric=metric, trainer_kwargs=trainer_kwargs,
            batch_size=batch_size, seed=seed, progress=progress,
        )  # fmt: skip
        self.proxy_options = replace(self.options, levels=check_levels(proxy_levels, "proxy_levels"))
        self.train, self.test = train, test
        self.max_train_samples, self.max_test_samples = max_train_samples, max_test_samples
        self.proxy_every_n_epochs = proxy_every_n_epochs
        self.proxy_max_samples = proxy_max_samples
        self.unpack = BatchUnpacker(batch_transform, batch_keys)
        self.output_transform = output_transform
        self.name = name
        self.result: Optional[DiffROARResult] = None
        self.proxy_history: list[dict[str, float]] = []
        self._proxy_batches: list[tuple[Tensor, Tensor]] = []
        self._proxy_count = 0
        self._proxy_active = False

    @override
    def on_validation_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        n = self.proxy_every_n_epochs
        self._proxy_active = n is not None and not trainer.sanity_checking and (trainer.current_epoch + 1) % n == 0
        self._proxy_batches, self._proxy_count = [], 0

    @override
    def on_validation_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._proxy_active or dataloader_idx != self.dataloader_idx or self._proxy_count >= self.proxy_max_samples:
            return
        images, labels = self.unpack(batch)
        take = self.proxy_max_samples - self._proxy_count
        self._proxy_batches.append((images[:take].detach().clone(), labels[:take].detach().clone()))
        self._proxy_count += len(self._proxy_batches[-1][1])

    @override
    def on_validation_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not self._proxy_active:
            return
        self._proxy_active = False
        if not self._proxy_batches:
            rank_zero_warn("DiffROARCallback saw no validation image this epoch; the proxy is skipped.")
            return
        images = torch.cat([images for images, _ in self._proxy_batches])
        labels = torch.cat([labels for _, labels in self._proxy_batches])
        self._proxy_batches = []
        options = self.proxy_options
        attributions = compute_attributions(
            pl_module, images, labels, self.attribution, batch_size=options.batch_size, seed=options.seed,
            output_transform=self.output_transform,
        )  # fmt: skip
        result = diffroar_proxy_with_options(pl_module, images, labels, attributions, options, self.output_transform)
        row: dict[str, float] = {"epoch": trainer.current_epoch, "step": loggers.logging_step(trainer)}
        for k, diff in zip(options.levels, result.diff_mean.tolist()):
            pl_module.log(f"{self.name}_proxy/diff_k{k:g}", diff, on_step=False, on_epoch=True, sync_dist=False)
            row[f"diff_k{k:g}"] = diff
        self.proxy_history = [r for r in self.proxy_history if r["epoch"] != row["epoch"]] + [row]
        if trainer.is_global_zero:
            loggers.log_history(trainer, f"{self.name}_proxy", self.proxy_history)

    @override
    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.model_factory is None or not trainer.is_global_zero:
            return
        train = self.train or self._gather(trainer.train_dataloader, self.max_train_samples, "training")
        test = self.test or self._gather(
            _nth(trainer.val_dataloaders, self.dataloader_idx), self.max_test_samples, "validation"
        )
        options = self.options
        attributions = [
            compute_attributions(
                pl_module, images, labels, self.attribution, batch_size=options.batch_size, seed=options.seed + i,
                output_transform=self.output_transform,
            )  # fmt: skip
            for i, (images, labels) in enumerate((train, test))
        ]
        self.result = diffroar_with_options(self.model_factory, train, test, *attributions, options)
        loggers.log_history(trainer, self.name, self.result.rows())
        fig, _ = self.result.plot()
        loggers.log_figure(trainer, self.name, fig, step=trainer.current_epoch)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"proxy_history": [dict(row) for row in self.proxy_history]}

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(name=self.name, dataloader_idx=self.dataloader_idx)

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.proxy_history = [dict(row) for row in state_dict.get("proxy_history", [])]

    def _gather(self, loader: Optional[Iterable[Any]], max_samples: Optional[int], kind: str) -> tuple[Tensor, Tensor]:
        """``(images, labels)`` on the CPU from ``loader`` (up to ``max_samples``), with the global RNG forked."""
        if loader is None:
            raise ValueError(
                f"DiffROARCallback found no {kind} dataloader at fit end; pass `train` and `test` tensors instead."
            )
        images, labels, count = [], [], 0
        with torch.random.fork_rng(devices=[]):
            for batch in loader:
                x, y = self.unpack(batch)
                take = len(y) if max_samples is None else min(len(y), max_samples - count)
                images.append(x[:take].detach().cpu())
                labels.append(y[:take].detach().cpu())
                count += take
                if max_samples is not None and count >= max_samples:
                    break
        return torch.cat(images), torch.cat(labels)


def _nth(loaders: Any, index: int) -> Any:
    """Validation dataloader ``index`` of several, or the only one (index 0)."""
    if isinstance(loaders, (list, tuple)):
        if index >= len(loaders):
            raise ValueError(f"`dataloader_idx`={index}, but the Trainer has {len(loaders)} validation dataloaders.")
        return loaders[index]
    if index != 0 and loaders is not None:
        raise ValueError(f"`dataloader_idx`={index}, but the Trainer has a single validation dataloader.")
    return loaders
